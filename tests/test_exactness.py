"""Exactness certificates (benchmarks/exactness.py): every sampler that claims the model's
distribution passes a chi-square test against a model small enough to enumerate, and a
deliberately broken variant of each fails it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from arbench import SamplerSpec
from arbench.plugin.registry import registry

SAMPLES = 10_000  # the benchmark draws 20,000; the broken variants fail by far at both
spec = importlib.util.spec_from_file_location(
    "exactness_benchmark", Path(__file__).parents[1] / "benchmarks" / "exactness.py")
assert spec is not None and spec.loader is not None
bench = importlib.util.module_from_spec(spec)
sys.modules["exactness_benchmark"] = bench
spec.loader.exec_module(bench)


@pytest.mark.parametrize("name", sorted(bench.CLAIMED))
def test_each_sampler_claiming_the_models_distribution_passes(name):
    certificate = bench.certificate(*bench.CLAIMED[name], SAMPLES)
    assert certificate.passed, certificate


@pytest.mark.parametrize("name", sorted(bench.BROKEN))
def test_each_broken_variant_fails(name):
    certificate = bench.certificate(*bench.BROKEN[name], SAMPLES)
    assert not certificate.passed, certificate


def test_exact_samplers_give_the_ancestral_samples_and_every_claim_is_certified():
    jacobi, ancestral = bench.CLAIMED["jacobi"][0], bench.CLAIMED["ancestral"][0]
    torch.testing.assert_close(bench.draw(jacobi, SAMPLES), bench.draw(ancestral, SAMPLES),
                               rtol=0, atol=0)
    claims = {spec.name: spec.load().exactness for spec in registry().all(SamplerSpec)}
    claimed = {name for name, claim in claims.items() if claim != "approximate"}
    certified = {name.split(" ")[0].rstrip(",") for name in bench.CLAIMED}
    assert claimed <= certified, "a registered sampler claims exactness without a certificate"
    assert claims["ancestral"] == claims["jacobi"] == "exact"
    assert {type(sampler).exactness for sampler, _ in bench.CLAIMED.values()} == {
        "exact", "distribution"}


@pytest.mark.parametrize("name", ["jacobi", "speculative (n-gram draft, k 3)",
                                  "speculative-jacobi"])
def test_observed_positions_are_kept_and_the_rest_follow_the_models_conditionals(name):
    """Value 1 observed at level 2: the others follow prod over i != 1 of p(x_i | x_<i),
    the model's conditionals with the observation in their history (what Jacobi and
    ancestral sampling with fixed values draw)."""
    from arbench.plugin.conditions import Observed
    from arbench.run.exactness import all_sequences, certify

    levels, dims = bench.LEVELS, bench.DIMS
    sequences = all_sequences(dims, levels)
    log_p = bench.TARGET.logits(sequences).double().log_softmax(-1).gather(
        2, sequences[..., None])[..., 0]
    conditional = torch.where(sequences[:, 1] == 2, (log_p.sum(1) - log_p[:, 1]).exp(), 0.0)
    mask = torch.zeros(SAMPLES, dims, dtype=torch.bool)
    mask[:, 1] = True
    values = bench.DATA.continuous(torch.full((SAMPLES, dims), 2))
    sampler, _ = bench.CLAIMED[name]
    drawn = sampler.sample(bench.TARGET, bench.DATA, SAMPLES, None,
                           torch.Generator().manual_seed(0), Observed(mask, values)).samples
    levels_drawn = torch.bucketize(drawn, torch.linspace(-1, 1, levels)[:-1] + 1 / (levels - 1))
    assert (levels_drawn[:, 1] == 2).all()
    certificate = certify(levels_drawn, conditional / conditional.sum(), levels)
    assert certificate.passed, certificate
