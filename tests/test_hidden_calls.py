"""Ways a sampler could hide network calls from arbench's count, and what arbench does about
each (issue 44 lists eight; the rest are still open there)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import torch

from arbench import SampleOutput, Sampler
from arbench.errors import ContractViolation
from arbench.run.checks import CheckedSampler
from arbench.run.cost import CostMeter
from arbench.run.enumerable import TableData, TableModel

DIMS, LEVELS, EXTRA = 4, 3, 10


def _checked(sampler: Sampler) -> CheckedSampler:
    return CheckedSampler(sampler, "attack", CostMeter("attack", "cpu", set(), 1), warm="w")


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
    sampler = _checked(SideThread())
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
    _checked(inner).sample(target, TableData(target), 8, None, torch.Generator().manual_seed(3))
    warm_up, scored = inner.first
    assert scored == float(torch.rand(1, generator=torch.Generator().manual_seed(3)))
    assert warm_up != scored
