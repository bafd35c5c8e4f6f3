"""Ways a sampler could hide network calls from arbench's count, and what arbench does about
each (the eight of issue 44): every one ends in a contract violation or a correct count."""

from __future__ import annotations

import copy
import dataclasses
import threading
from typing import Any, ClassVar

import pytest
import torch
from conftest import checked

from arbench import SampleOutput, Sampler
from arbench.errors import ContractViolation
from arbench.run.enumerable import TableData, TableModel

DIMS, LEVELS, EXTRA = 4, 3, 10


class SideThread(Sampler):
    """Draws honestly in its loop while a thread beside it makes EXTRA calls per value;
    reports the loop's calls only."""

    def sample(self, model: Any, dataset: Any, n: int, budget: int | None,
               generator: torch.Generator, condition: Any = None) -> SampleOutput:
        x = torch.zeros(n, DIMS, dtype=torch.long)
        side = threading.Thread(target=lambda: [model.logits(x) for _ in range(EXTRA * DIMS)])
        side.start()
        for i in range(DIMS):
            probs = model.logits(x)[:, i].softmax(-1)
            x[:, i] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        side.join()
        return SampleOutput(samples=x, nfe=DIMS)


def test_calls_from_a_thread_beside_the_loop_are_all_counted():
    target = TableModel(DIMS, LEVELS, seed=1)
    sampler = checked(SideThread())
    with pytest.raises(ContractViolation, match=f"reported nfe={DIMS} but made "
                                                f"{DIMS * (EXTRA + 1)} network calls"):
        sampler.sample(target, TableData(target), 8, None, torch.Generator().manual_seed(0))


class RandomNumbers(Sampler):
    """Keeps the first random number of each call's generator."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.first: list[float] = []

    def sample(self, model: Any, dataset: Any, n: int, budget: int | None,
               generator: torch.Generator, condition: Any = None) -> SampleOutput:
        self.first.append(float(torch.rand(1, generator=generator)))
        return SampleOutput(samples=torch.zeros(n, DIMS, dtype=torch.long), nfe=0)


def test_the_warm_up_draws_other_random_numbers_than_the_scored_call():
    """What the untimed warm-up draws could not be served as the scored call's samples."""
    target, inner = TableModel(DIMS, LEVELS, seed=1), RandomNumbers()
    checked(inner).sample(target, TableData(target), 8, None, torch.Generator().manual_seed(3))
    warm_up, scored, timed_replay = inner.first
    first = float(torch.rand(1, generator=torch.Generator().manual_seed(3)))
    assert scored == timed_replay == first
    assert warm_up != scored


# --- a model with a real network: what the FLOP count (arbench.run.flops) sees ------------

HIDDEN = 16
FLOPS_PER_PASS = 2 * 2 * DIMS * LEVELS * HIDDEN  # two linear layers, 2 FLOPs per product


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Linear(DIMS * LEVELS, HIDDEN)
        self.head = torch.nn.Linear(HIDDEN, DIMS * LEVELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        one_hot = torch.nn.functional.one_hot(x.long(), LEVELS).float().flatten(1)
        return self.head(torch.tanh(self.embed(one_hot))).view(-1, DIMS, LEVELS)


class NetModel(TableModel):
    """A table model's shape with a network behind `logits` and a cache that recomputes
    the history of the rows it is given (so it can be run on more rows than it was made
    for, as a key/value cache can)."""

    def __init__(self, cached: bool = True) -> None:
        super().__init__(DIMS, LEVELS, seed=1)
        with torch.random.fork_rng():
            torch.manual_seed(1)
            self.net = Net()
        self.cached = cached

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(len(x), DIMS))

    def incremental(self, n: int) -> Any:
        return NetCache(self, n) if self.cached else None


class NetCache:
    def __init__(self, model: NetModel, n: int) -> None:
        self.model, self.history = model, torch.zeros(n, 0, dtype=torch.long)

    def logits(self, previous: torch.Tensor | None) -> torch.Tensor:
        if previous is not None:
            rows = self.history.expand(len(previous), -1)
            self.history = torch.cat([rows, previous[:, None].long()], 1)
        t = self.history.shape[1]
        padded = torch.nn.functional.pad(self.history, (0, DIMS - t))
        return self.model.net(padded)[:, min(t, DIMS - 1)]


class Hiding(Sampler):
    """Draws honestly, value by value, and reports those DIMS calls; `hide` runs the network
    EXTRA more times per value some way arbench's call count does not see."""

    def sample(self, model: Any, dataset: Any, n: int, budget: int | None,
               generator: torch.Generator, condition: Any = None) -> SampleOutput:
        x = torch.zeros(n, DIMS, dtype=torch.long)
        for i in range(DIMS):
            for _ in range(EXTRA):
                self.hide(model, x)
            probs = model.logits(x)[:, i].softmax(-1)
            x[:, i] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        return SampleOutput(samples=x, nfe=DIMS)

    def hide(self, model: Any, x: torch.Tensor) -> None:
        raise NotImplementedError


class ForwardMethod(Hiding):
    def hide(self, model: Any, x: torch.Tensor) -> None:
        model.net.forward(x)


class ChildModules(Hiding):
    def hide(self, model: Any, x: torch.Tensor) -> None:
        one_hot = torch.nn.functional.one_hot(x, LEVELS).float().flatten(1)
        model.net.head(torch.tanh(model.net.embed(one_hot)))


class RebuiltNetwork(Hiding):
    def hide(self, model: Any, x: torch.Tensor) -> None:
        copy = Net()
        copy.load_state_dict(model.net.state_dict())
        copy(x)


class TracedNetwork(Hiding):
    def hide(self, model: Any, x: torch.Tensor) -> None:
        if not hasattr(self, "traced"):
            self.traced = torch.jit.trace(model.net, x)
        self.traced(x)


class EarlierModel(Hiding):
    """Keeps the model of the first cell it runs in and hides calls through it later."""

    kept: ClassVar[list[Any]] = []

    def hide(self, model: Any, x: torch.Tensor) -> None:
        if not self.kept:
            self.kept.append(model)
        elif self.kept[0] is not model:
            self.kept[0].logits(x)


HIDDEN_PASSES = [ForwardMethod, ChildModules, RebuiltNetwork, TracedNetwork]


class NetAttribute(Hiding):
    def hide(self, model: Any, x: torch.Tensor) -> None:
        model.net(x)


class NetAttributeByKeyword(Hiding):
    """As Hugging Face's ``generate`` calls a model: every argument by keyword."""

    def hide(self, model: Any, x: torch.Tensor) -> None:
        model.net(x=x)


class CopiedModel(Hiding):
    def hide(self, model: Any, x: torch.Tensor) -> None:
        copy.deepcopy(model).logits(x)


class CopiedNet(Hiding):
    def hide(self, model: Any, x: torch.Tensor) -> None:
        copy.deepcopy(model.net)(x)


class JoinedThread(Hiding):
    def hide(self, model: Any, x: torch.Tensor) -> None:
        thread = threading.Thread(target=model.logits, args=(x,))
        thread.start()
        thread.join()


class FunctionalCall(Hiding):
    def hide(self, model: Any, x: torch.Tensor) -> None:
        torch.func.functional_call(model.net, dict(model.net.named_parameters()), (x,))


class CompiledNetwork(Hiding):
    def hide(self, model: Any, x: torch.Tensor) -> None:
        if not hasattr(self, "compiled"):
            self.compiled = torch.compile(model.net, backend="eager", dynamic=True)
        self.compiled(x)


COUNTED_PASSES = [NetAttribute, NetAttributeByKeyword, CopiedModel, CopiedNet, JoinedThread,
                  FunctionalCall, CompiledNetwork]


@pytest.mark.parametrize("attack", COUNTED_PASSES, ids=lambda cls: cls.__name__)
def test_network_passes_the_call_count_sees_are_counted(attack):
    model = NetModel()
    with pytest.raises(ContractViolation, match=f"reported nfe={DIMS} but made "
                                                f"{DIMS * (EXTRA + 1)} network calls"):
        checked(attack()).sample(model, TableData(model), 8, None,
                                  torch.Generator().manual_seed(0))


@pytest.mark.parametrize("attack", HIDDEN_PASSES, ids=lambda cls: cls.__name__)
def test_network_passes_the_call_count_does_not_see_are_seen_in_flops(attack):
    model = NetModel()
    with pytest.raises(ContractViolation, match="FLOPs ran outside the model calls arbench "
                                                "counts"):
        checked(attack()).sample(model, TableData(model), 8, None,
                                  torch.Generator().manual_seed(0))


def test_a_model_kept_from_an_earlier_cell_is_compute_no_call_accounts_for():
    EarlierModel.kept.clear()
    first, second = NetModel(), NetModel()
    checked(EarlierModel()).sample(first, TableData(first), 8, None, torch.Generator())
    with pytest.raises(ContractViolation, match="outside the model calls arbench counts"):
        checked(EarlierModel()).sample(second, TableData(second), 8, None, torch.Generator())


class OneRowCache(Sampler):
    """Makes its cache for 1 row, then steps it on all n rows."""

    def sample(self, model: Any, dataset: Any, n: int, budget: int | None,
               generator: torch.Generator, condition: Any = None) -> SampleOutput:
        x = torch.zeros(n, DIMS, dtype=torch.long)
        cache = model.incremental(1)
        logits = cache.logits(None).expand(n, -1)
        for i in range(DIMS):
            x[:, i] = torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]
            if i + 1 < DIMS:
                logits = cache.logits(x[:, i])
        return SampleOutput(samples=x, nfe=DIMS)


def test_a_cache_is_charged_for_the_rows_it_computes():
    model, sampler = NetModel(), checked(OneRowCache())
    sampler.sample(model, TableData(model), 8, None, torch.Generator())
    assert sampler.meter.nfe == DIMS  # 1 row at the first step, then 8: ceil((1 + 3 * 8) / 8)


class ServesTheWarmUp(Sampler):
    """Draws every sample the scored call will need during arbench's warm-up, then serves
    them with no network call."""

    stored: ClassVar[list[torch.Tensor]] = []

    def sample(self, model: Any, dataset: Any, n: int, budget: int | None,
               generator: torch.Generator, condition: Any = None) -> SampleOutput:
        if self.stored:
            return SampleOutput(samples=self.stored.pop()[:n], nfe=0)
        x = torch.zeros(64, DIMS, dtype=torch.long)
        for i in range(DIMS):
            probs = model.logits(x)[:, i].softmax(-1)
            x[:, i] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        self.stored.append(x)
        return SampleOutput(samples=x[:n], nfe=DIMS)


class OwnsUpToTheWarmUp(ServesTheWarmUp):
    """Serves the warm-up's samples and reports the calls that drew them."""

    def sample(self, *args: Any, **kwargs: Any) -> SampleOutput:
        return dataclasses.replace(super().sample(*args, **kwargs), nfe=DIMS)


def test_samples_drawn_in_the_warm_up_are_charged_to_the_scored_call():
    ServesTheWarmUp.stored.clear()
    model = NetModel()
    with pytest.raises(ContractViolation, match="reported nfe=0 but made 4 network calls"):
        checked(ServesTheWarmUp(), warm="w").sample(model, TableData(model), 64, None,
                                                    torch.Generator())
    ServesTheWarmUp.stored.clear()
    owning_up = checked(OwnsUpToTheWarmUp(), warm="w")
    owning_up.sample(model, TableData(model), 64, None, torch.Generator())
    assert owning_up.meter.flops == DIMS * FLOPS_PER_PASS  # the warm-up's, per example


class LuckyCalls(Sampler):
    """Honest, with a number of calls that depends on its random numbers (as speculative
    sampling's): 2 or 3 full passes per call, reported."""

    def sample(self, model: Any, dataset: Any, n: int, budget: int | None,
               generator: torch.Generator, condition: Any = None) -> SampleOutput:
        calls = 2 + int(torch.randint(2, (1,), generator=generator))
        x = torch.zeros(n, DIMS, dtype=torch.long)
        for _ in range(calls):
            x = model.logits(x).argmax(-1)
        return SampleOutput(samples=x, nfe=calls)


def test_a_warm_up_that_needed_more_calls_by_chance_is_not_charged_at_batch_1():
    model = NetModel()
    seeds = {}  # the scored call's calls by seed: 2 for some, 3 for others
    for seed in range(8):
        sampler = checked(LuckyCalls(), warm=f"w{seed}")
        seeds[seed] = sampler.sample(model, TableData(model), 1, None,
                                     torch.Generator().manual_seed(seed)).nfe
        assert sampler.meter.nfe == seeds[seed]  # its own calls, whatever the warm-up drew
    assert set(seeds.values()) == {2, 3}


class Ancestral(Sampler):
    """Plain ancestral sampling: through the cache when the model has one."""

    def sample(self, model: Any, dataset: Any, n: int, budget: int | None,
               generator: torch.Generator, condition: Any = None) -> SampleOutput:
        x, cache = torch.zeros(n, DIMS, dtype=torch.long), model.incremental(n)
        for i in range(DIMS):
            logits = (cache.logits(x[:, i - 1] if i else None) if cache is not None
                      else model.logits(x)[:, i])
            x[:, i] = torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]
        return SampleOutput(samples=x, nfe=DIMS)


@pytest.mark.parametrize(("cached", "positions"), [(True, DIMS), (False, DIMS * DIMS)])
def test_calls_positions_and_flops_per_example_of_a_cached_and_an_uncached_model(
        cached, positions):
    """D calls either way (the latency axis); D positions through the cache, D * D
    without (the compute axis); the FLOPs of D passes of the network, in closed form."""
    model, sampler = NetModel(cached), checked(Ancestral())
    sampler.sample(model, TableData(model), 8, None, torch.Generator())
    record = sampler.meter.record()
    assert (record["nfe"], record["positions"]) == (DIMS, positions)
    assert record["flops"] == DIMS * FLOPS_PER_PASS
