"""`arbench certify` on a third party's samplers, found through the registry: a correct
speculative sampler passes, one that redraws from p on rejection (the common bug) fails
with exit 1, certificates are stored by code hash, and no edit to arbench is needed."""

from __future__ import annotations

import json

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
