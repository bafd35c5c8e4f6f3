"""Certificate records: the verdict of `arbench certify` on one sampler's code.

A record is keyed by the sampler's code hash (`arbench.run.provenance.spec_hash`), the
same hash a result record keeps under ``provenance.code["sampler:NAME"]``: it is current
for exactly the records made by that code, and goes stale when the code changes. The
tables show a claim of exactness with the status its current certificate gives
(`claim_status`); a claim without one is never shown as certified.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from arbench.errors import StoreError
from arbench.results.agreement import CLAIMS
from arbench.results.record import Record
from arbench.results.store import atomic_write

CERTIFICATES = "certificates"  # the folder beside the run folders (results/, leaderboards/)
SAMPLES, ALPHA = 20_000, 1e-3  # what `arbench certify` draws per model, and its level


class Verdict(BaseModel):
    """One chi-square certificate on one enumerable model, or why it could not run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    samples: int
    statistic: float | None = None
    dof: int | None = None
    p_value: float | None = None
    passed: bool | None = None  # None: it could not run on this model (`reason`)
    reason: str | None = None


class CertificateRecord(BaseModel):
    """`sampler`'s claim tested on every enumerable model, at level `alpha`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = 1
    sampler: str
    claim: str
    code: str  # the sampler's code hash
    alpha: float
    seed: int
    arbench_version: str
    created: str
    verdicts: list[Verdict]

    @property
    def ran(self) -> list[Verdict]:
        """The verdicts of the models it could run on."""
        return [verdict for verdict in self.verdicts if verdict.passed is not None]

    @property
    def passed(self) -> bool | None:
        """True when every model it ran on passed; None when it ran on none."""
        return all(verdict.passed for verdict in self.ran) if self.ran else None

    @property
    def p_value(self) -> float | None:
        """The smallest p over the models it ran on (the one that decides)."""
        return min(v.p_value for v in self.ran if v.p_value is not None) if self.ran else None


def certificate_path(folder: Path, sampler: str, code: str) -> Path:
    """Where the certificate of `sampler` at code hash `code` lives under `folder`."""
    return Path(folder) / CERTIFICATES / f"{sampler}-{code}.json"


def write_certificate(folder: Path, record: CertificateRecord) -> Path:
    """Store `record` under `folder`/certificates, whole or not at all."""
    path = certificate_path(folder, record.sampler, record.code)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda temporary: temporary.write_text(
        record.model_dump_json(indent=2) + "\n"))


def current_certificate(folder: Path, sampler: str, code: str) -> CertificateRecord | None:
    """The certificate of `sampler` at code hash `code` under `folder`, if there is one."""
    path = certificate_path(folder, sampler, code)
    if not path.exists():
        return None
    try:
        return CertificateRecord.model_validate_json(path.read_text())
    except ValidationError as error:
        raise StoreError(f"{path} is not a valid certificate ({error.errors()[0]['msg']}); "
                         "delete it and run `arbench certify` again") from None


def claim_status(claim: str, certificate: CertificateRecord | None) -> str:
    """How a table shows a claim: ``distribution (certified, p 0.52)``, ``(FAILED, p 0)``
    or ``(not certified)``; an approximate sampler claims nothing to certify."""
    if claim not in CLAIMS:
        return claim
    if certificate is None or certificate.passed is None:
        return f"{claim} (not certified)"
    p = f"p {certificate.p_value:.2g}"
    return f"{claim} ({'certified' if certificate.passed else 'FAILED'}, {p})"


def certificate_for(folders: Iterable[Path], sampler: str, code: str | None
                    ) -> CertificateRecord | None:
    """The first certificate of `sampler` at code hash `code` in any of `folders`."""
    if code is None:
        return None
    found = (current_certificate(folder, sampler, code) for folder in folders)
    return next((record for record in found if record is not None), None)


def claim_labels(records: Iterable[Record], folders: Iterable[Path]) -> dict[str, str]:
    """Each record's claim as the tables show it (by key): with the verdict of the
    certificate, under `folders`, of the sampler code that made the record."""
    folders = list(folders)
    found: dict[tuple[str, str | None], CertificateRecord | None] = {}
    labels = {}
    for record in records:
        sampler = record.identity.sampler
        code = record.provenance.code.get(f"sampler:{sampler}")
        if (sampler, code) not in found:  # one read per sampler code, not per record
            found[sampler, code] = certificate_for(folders, sampler, code)
        claim = record.configuration.exactness
        labels[record.key] = claim_status(claim, found[sampler, code]) if claim else claim
    return labels
