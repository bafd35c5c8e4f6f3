"""`arbench certify` on a third party's samplers, found through the registry: a correct
speculative sampler passes, one that redraws from p on rejection (the common bug) fails
with exit 1, certificates are stored by code hash, and no edit to arbench is needed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import make_dist, run_cli

SAMPLERS = '''
import torch
from arbench import (CausalLogits, Incompatible, SampleOutput, Sampler, SamplerSpec, hookimpl,
                     require)


class OneAhead(Sampler):
    """Speculative sampling with a uniform draft, one value per target call: accept the
    draft with min(1, p / q), else draw from the residual max(0, p - q)."""

    exactness = "distribution"
    redraw_from_p = False

    def sample(self, model, dataset, n, budget, generator, condition=None):
        if condition is not None:
            raise Incompatible("one-ahead samples unconditionally")
        target = require(model, CausalLogits, "one-ahead")
        levels = dataset.num_levels
        x = torch.zeros(n, dataset.dims, dtype=torch.long)
        q = torch.full((n, levels), 1.0 / levels, dtype=torch.float64)
        for i in range(dataset.dims):
            p = target.logits(x)[:, i].double().softmax(-1)
            draft = torch.multinomial(q, 1, generator=generator)[:, 0]
            keep = torch.rand(n, generator=generator, dtype=torch.float64) < (
                p.gather(1, draft[:, None])[:, 0] / q[:, 0])
            residual = p if self.redraw_from_p else (p - q).clamp(min=0)
            redrawn = torch.multinomial(residual, 1, generator=generator)[:, 0]
            x[:, i] = torch.where(keep, draft, redrawn)
        return SampleOutput(samples=x, nfe=dataset.dims)


class RedrawFromP(OneAhead):
    redraw_from_p = True


@hookimpl
def arbench_samplers():
    needs = frozenset({"causal-logits"})
    return [SamplerSpec(name="one-ahead", factory=OneAhead, requires=needs,
                        serves=frozenset({"unconditional"}), description="correct"),
            SamplerSpec(name="redraw-from-p", factory=RedrawFromP, requires=needs,
                        serves=frozenset({"unconditional"}), description="the common bug")]
'''


@pytest.fixture(scope="module")
def third_party(tmp_path_factory):
    root = tmp_path_factory.mktemp("third_party")
    return make_dist(root / "site", "my-speculative", {"my_speculative": SAMPLERS},
                     {"my-speculative": "my_speculative"})


def test_certify_passes_the_correct_sampler_and_fails_the_buggy_one(third_party, tmp_path):
    good = run_cli(["certify", "one-ahead", "--samples", "5000"], cwd=tmp_path,
                   extra_path=[third_party])
    assert good.returncode == 0, good.stdout + good.stderr
    assert "| one-ahead | distribution | table " in good.stdout.replace("  ", "")
    bad = run_cli(["certify", "one-ahead", "redraw-from-p", "--samples", "5000"], cwd=tmp_path,
                  extra_path=[third_party])
    assert bad.returncode == 1, bad.stdout + bad.stderr
    rows = [line for line in bad.stdout.splitlines() if "redraw-from-p" in line]
    assert rows and all("FAIL" in row or "n/a" in row for row in rows)
    stored = sorted((tmp_path / "results/certificates").glob("*.json"))
    assert [path.name.rsplit("-", 1)[0] for path in stored] == ["one-ahead", "redraw-from-p"]
    record = json.loads(stored[1].read_text())
    assert record["claim"] == "distribution" and record["verdicts"][0]["passed"] is False


def test_certify_refuses_what_it_cannot_certify(third_party, tmp_path):
    approximate = run_cli(["certify", "pnf"], cwd=tmp_path, extra_path=[third_party])
    assert approximate.returncode == 2 and "claims no exactness" in approximate.stderr
    few = run_cli(["certify", "one-ahead", "--samples", "10"], cwd=tmp_path,
                  extra_path=[third_party])
    assert few.returncode == 2 and "at least 100" in few.stderr


def test_arbenchs_exactness_tests_pass_with_the_package_installed(third_party, tmp_path):
    """The package's claims are the package's to certify: arbench's own check of its
    built-in claims ignores them."""
    import test_exactness
    from conftest import _plugins_on_path

    with _plugins_on_path([third_party]):
        from arbench.plugin.registry import registry
        from arbench.plugin.specs import SamplerSpec

        assert "redraw-from-p" in registry().names(SamplerSpec.kind)
        test_exactness.test_jacobi_gives_the_ancestral_samples_and_every_builtin_claim_is_certified()


def _record(key: str, sampler: str, claim: str, code: str) -> Any:
    from arbench.results.record import Record

    return Record.model_validate({
        "key": key, "status": "ok", "task": "unconditional", "dataset": "d", "seed": 0,
        "nfe": 1, "sampler": sampler, "model": "m", "params": {}, "swept": {},
        "exactness": claim, "code": {f"sampler:{sampler}": code},
        "metrics": {"x": {"value": 1.0, "direction": "lower", "unit": ""}},
        "sampler_timings_s": [1.0]})


def _certificate(folder: Any, sampler: str, code: str, p: float) -> None:
    from arbench.results.certificate import CertificateRecord, Verdict, write_certificate

    write_certificate(folder, CertificateRecord(
        sampler=sampler, claim="distribution", code=code, alpha=1e-3, seed=0,
        arbench_version="test", created="now", verdicts=[
            Verdict(model="table", samples=100, statistic=1.0, dof=1, p_value=p,
                    passed=p >= 1e-3)]))


def test_tables_show_each_claim_with_the_verdict_on_the_code_that_made_the_record(tmp_path):
    from arbench.report.build import build_report

    run = tmp_path / "results" / "run"
    _certificate(tmp_path / "results", "good", "c1", 0.52)
    _certificate(tmp_path / "results", "bad", "c2", 0.0)
    _certificate(tmp_path / "results", "changed", "old", 0.9)  # not the code of its record
    records = [_record("a", "good", "distribution", "c1"),
               _record("b", "bad", "distribution", "c2"),
               _record("c", "changed", "exact", "new"), _record("d", "pnf", "approximate", "x")]
    table = next(t for t in build_report(records, run_dirs=[run]).tables
                 if t.task.endswith("cost")).frame
    shown = dict(zip(table["sampler"], table["exactness"], strict=True))
    assert shown == {"good": "distribution (certified, p 0.52)",
                     "bad": "distribution (FAILED, p 0)", "changed": "exact (not certified)",
                     "pnf": "approximate"}
    assert "no certificate of that code" in next(
        t for t in build_report(records, run_dirs=[run]).tables if t.task.endswith("cost")).note


def test_a_run_warns_once_per_sampler_whose_claim_has_no_current_certificate(tmp_path):
    from conftest import plan_cells

    from arbench.api.running import uncertified_claims
    from arbench.run.grid import GridSpec

    grid = GridSpec(tasks=["unconditional"], samplers=["ancestral", "jacobi", "pnf"],
                    datasets=["digits"], models=["pixelcnn-smooth"], seeds=[0, 1],
                    budgets=[None, 64], baselines=False)
    cells = plan_cells([grid])
    found = uncertified_claims(cells, tmp_path)
    assert list(found) == ["ancestral", "jacobi"]  # once each; pnf claims nothing
    assert "arbench certify ancestral --results-dir" in found["ancestral"]
    code = next(c.inputs.code["sampler:jacobi"] for c in cells if c.sampler == "jacobi")
    _certificate(tmp_path, "jacobi", code, 0.4)
    assert list(uncertified_claims(cells, tmp_path)) == ["ancestral"]
