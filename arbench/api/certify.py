"""`arbench certify`: test every registered sampler's claim of exactness, third-party
ones included, and store each verdict keyed by the sampler's code hash."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from arbench import __version__
from arbench.errors import UsageError
from arbench.plugin.registry import registry
from arbench.plugin.specs import SamplerSpec
from arbench.results.agreement import CLAIMS
from arbench.results.certificate import ALPHA, SAMPLES, CertificateRecord, write_certificate


@dataclass(frozen=True)
class Certified:
    """The certificates `certify` made, and where it stored them."""

    records: list[CertificateRecord]
    paths: list[Path]

    @property
    def exit_code(self) -> int:
        """0: every claim passed; 1: one failed; 2: one could not run on any model."""
        if any(record.passed is False for record in self.records):
            return 1
        return 2 if any(record.passed is None for record in self.records) else 0


def claiming(names: Sequence[str] = ()) -> list[SamplerSpec]:
    """The registered samplers that claim exactness (`names`: these, each of which must)."""
    reg = registry()
    if not names:
        return [spec for spec in reg.all(SamplerSpec) if spec.load().exactness in CLAIMS]
    specs = [reg.get(SamplerSpec, name) for name in names]
    for spec in specs:
        if spec.load().exactness not in CLAIMS:
            raise UsageError(f"sampler '{spec.name}' claims no exactness (approximate): there is "
                             "nothing to certify; set `exactness` on its class to claim one")
    return specs


def certify(names: Sequence[str], results_dir: Path, *, samples: int = SAMPLES,
            alpha: float = ALPHA, seed: int = 0,
            on_record: Callable[[CertificateRecord], None] | None = None) -> Certified:
    """Certify the claiming samplers (all, or `names`) with their default parameters and
    store each certificate under `results_dir`/certificates."""
    from arbench.run.certify import certify_sampler  # torch: not for `arbench --help`
    from arbench.run.provenance import spec_hash

    if samples < 100:
        raise UsageError(f"--samples {samples} is too few for a chi-square over 81 sequences; "
                         "use at least 100 (the default is 20,000)")
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha must lie between 0 and 1, not {alpha}")
    records, paths = [], []
    for spec in claiming(names):
        cls = spec.load()
        record = CertificateRecord(
            sampler=spec.name, claim=cls.exactness, code=spec_hash(spec), alpha=alpha,
            seed=seed, arbench_version=__version__,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            verdicts=certify_sampler(cls(), samples, alpha, seed))
        records.append(record)
        paths.append(write_certificate(results_dir, record))
        if on_record is not None:
            on_record(record)
    return Certified(records, paths)
