"""Exactness certificates (`arbench certify`, `arbench.run.certify`): every built-in sampler
that claims the model's distribution passes the chi-square test on each enumerable model
(uncached, window cache, a value observed), and a deliberately broken variant of each
fails it, on the cached path too."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from arbench import SamplerSpec
from arbench.plugin.registry import registry
from arbench.run.certify import DIMS, LEVELS, certify_sampler, enumerables
from arbench.run.provenance import factory_module
from arbench_plugins.samplers.ancestral import Ancestral
from arbench_plugins.samplers.jacobi import Jacobi
from arbench_plugins.samplers.speculative import Rule, Speculative
from arbench_plugins.samplers.speculative_jacobi import SpeculativeJacobi

SAMPLES = 10_000  # `arbench certify` draws 20,000; the broken variants fail by far at both
HF_CLAIMED = {"hf-generate", "hf-assisted", "hf-prompt-lookup"}


class AcceptEveryDraft(Rule):
    @staticmethod
    def accept(p_value: torch.Tensor, q_value: torch.Tensor,
               uniform: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(uniform, dtype=torch.bool)


class NoResidual(Rule):
    @staticmethod
    def residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return p


class HistoryBlind(Ancestral):
    """Every value from the model's conditional given zeros before it."""

    def sample(self, model: Any, dataset: Any, n: int, budget: int | None,
               generator: torch.Generator, condition: Any = None) -> Any:
        logits = model.logits(torch.zeros(n, DIMS, dtype=torch.long))
        drawn = torch.multinomial(logits.softmax(-1).view(-1, LEVELS), 1, generator=generator)
        return type(super().sample(model, dataset, 1, None, generator))(
            samples=drawn.view(n, DIMS), nfe=DIMS)


def broken(sampler: type, rule: type[Rule], **params: Any) -> Any:
    return type(f"Broken{sampler.__name__}", (sampler,), {"rule": rule})(**params)


CLAIMED: dict[str, Any] = {
    "ancestral": Ancestral(), "jacobi": Jacobi(), "speculative": Speculative(k=3),
    "speculative-jacobi": SpeculativeJacobi(),
    "speculative-jacobi, window 1": SpeculativeJacobi(window=1),
}
BROKEN: dict[str, tuple[Any, int | None]] = {  # name: (sampler, budget)
    "ancestral ignoring the history": (HistoryBlind(), None),
    "jacobi stopped after one call": (Jacobi(), 1),
    "speculative accepting every draft": (broken(Speculative, AcceptEveryDraft, k=3), None),
    "speculative without the residual": (broken(Speculative, NoResidual, k=3), None),
    "speculative-jacobi accepting every draft": (broken(SpeculativeJacobi, AcceptEveryDraft),
                                                 None),
    "speculative-jacobi without the residual": (broken(SpeculativeJacobi, NoResidual), None),
}


@pytest.mark.parametrize("name", sorted(CLAIMED))
def test_each_sampler_claiming_the_models_distribution_passes_on_every_model(name):
    verdicts = certify_sampler(CLAIMED[name], SAMPLES)
    assert all(v.passed for v in verdicts if v.passed is not None), verdicts
    ran = {v.model for v in verdicts if v.passed is not None}
    assert {"table", "table, window cache"} <= ran
    assert name == "ancestral" or "table, value 1 observed" in ran  # ancestral: unconditional


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_each_broken_variant_fails_on_the_uncached_and_the_cached_model(name):
    sampler, budget = BROKEN[name]
    verdicts = {v.model: v for v in certify_sampler(sampler, SAMPLES, budget=budget)}
    assert verdicts["table"].passed is False, verdicts
    assert verdicts["table, window cache"].passed is False, verdicts


def test_speculative_verifies_through_the_window_cache_on_the_cached_model(monkeypatch):
    """The cached model's certificate covers the window path: speculative sampling calls
    `window` there and never the full `logits` of the target."""
    from arbench.run.enumerable import TableCache, WindowTableModel

    windows, full = [], []
    window = TableCache.window
    monkeypatch.setattr(TableCache, "window", lambda self, *a: windows.append(1) or window(
        self, *a))
    logits = WindowTableModel.logits
    monkeypatch.setattr(WindowTableModel, "logits", lambda self, x: full.append(
        len(x)) or logits(self, x))
    case = next(c for c in enumerables() if c.name == "table, window cache")
    Speculative(k=3).sample(case.model, case.data, 50, None, torch.Generator().manual_seed(0))
    assert windows and len(full) == len(windows)  # each full pass is the window's own


def test_a_cache_misused_on_the_window_path_fails():
    """Verifying from one position too late reads the history the cache computed before
    the last resampled value: the certificate on the cached model fails."""
    from arbench_plugins.samplers import speculative

    class LateWindow(Speculative):
        def sample(self, *args: Any, **kwargs: Any) -> Any:
            original = speculative._State.verify

            def verify(state: Any, *a: Any) -> None:
                cache = state.cache
                if cache is not None:
                    state.cache = type("Late", (), {"window": lambda _, x, starts, width:
                                                    cache.window(x, starts + 1, width)})()
                try:
                    original(state, *a)
                finally:
                    state.cache = cache

            speculative._State.verify = verify
            try:
                return super().sample(*args, **kwargs)
            finally:
                speculative._State.verify = original

    verdicts = {v.model: v for v in certify_sampler(LateWindow(k=3), SAMPLES)}
    assert verdicts["table"].passed and verdicts["table, window cache"].passed is False


def test_jacobi_gives_the_ancestral_samples_and_every_builtin_claim_is_certified():
    case = enumerables()[0]

    def draw(sampler: Any) -> torch.Tensor:
        return sampler.sample(case.model, case.data, SAMPLES, None,
                              torch.Generator().manual_seed(0)).samples

    torch.testing.assert_close(draw(Jacobi()), draw(Ancestral()), rtol=0, atol=0)
    builtin = [spec for spec in registry().all(SamplerSpec)
               if factory_module(spec.factory).startswith("arbench_plugins.")]
    claimed = {spec.name for spec in builtin if spec.load().exactness != "approximate"}
    # Hugging Face's decoding runs on a transformers model only: tests/test_hf.py
    assert claimed == {name.split(",")[0] for name in CLAIMED} | HF_CLAIMED
