"""The exactness certificates: each sampler that claims the model's distribution, and a
deliberately broken variant of each, tested against a model small enough to enumerate.

The model is a random table model (`arbench_plugins.models.table`): 4 values of 3
levels, 81 sequences whose probabilities are computed exactly; the speculative
sampler's n-gram draft is fitted on sequences of another random table model. Each row
draws N samples and runs Pearson's chi-square test against N p(x) (`arbench.run.exactness`),
verdict at alpha = 1e-3: a claim passes when p >= alpha, a broken variant must fail.
tests/test_exactness.py asserts every verdict.

    python benchmarks/exactness.py [--samples 20000] [--seed 0]
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from tabulate import tabulate

from arbench.run.exactness import Certificate, certify, joint_probabilities
from arbench_plugins.models.table.model import TableData, TableModel
from arbench_plugins.samplers.ancestral import Ancestral
from arbench_plugins.samplers.jacobi import Jacobi
from arbench_plugins.samplers.speculative import Rule, Speculative
from arbench_plugins.samplers.speculative_jacobi import SpeculativeJacobi

DIMS, LEVELS, ALPHA = 4, 3, 1e-3
TARGET = TableModel(DIMS, LEVELS, seed=1)
DATA = TableData(TableModel(DIMS, LEVELS, seed=2))  # what the n-gram draft is fitted on


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
        output = super().sample(model, dataset, 1, None, generator)
        return type(output)(samples=drawn.view(n, DIMS), nfe=DIMS)


def broken(sampler: type, rule: type[Rule], **params: Any) -> Any:
    return type(f"Broken{sampler.__name__}", (sampler,), {"rule": rule})(**params)


CLAIMED: dict[str, tuple[Any, int | None]] = {  # name: (sampler, budget)
    "ancestral": (Ancestral(), None), "jacobi": (Jacobi(), None),
    "speculative (n-gram draft, k 3)": (Speculative(k=3, draft_order=2), None),
    "speculative-jacobi": (SpeculativeJacobi(), None),
    "speculative-jacobi, window 1": (SpeculativeJacobi(window=1), None),
}
BROKEN: dict[str, tuple[Any, int | None]] = {
    "ancestral ignoring the history": (HistoryBlind(), None),
    "jacobi stopped after one call": (Jacobi(), 1),
    "speculative accepting every draft": (broken(Speculative, AcceptEveryDraft, k=3), None),
    "speculative without the residual": (broken(Speculative, NoResidual, k=3), None),
    "speculative-jacobi accepting every draft": (broken(SpeculativeJacobi, AcceptEveryDraft),
                                                 None),
    "speculative-jacobi without the residual": (broken(SpeculativeJacobi, NoResidual), None),
}


def draw(sampler: Any, samples: int, budget: int | None = None, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    samples_drawn: torch.Tensor = sampler.sample(TARGET, DATA, samples, budget,
                                                 generator).samples
    return samples_drawn


def certificate(sampler: Any, budget: int | None, samples: int, seed: int = 0) -> Certificate:
    return certify(draw(sampler, samples, budget, seed),
                   joint_probabilities(TARGET, DIMS, LEVELS), LEVELS, ALPHA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for broken_ones, table in ((False, CLAIMED), (True, BROKEN)):
        for name, (sampler, budget) in table.items():
            result = certificate(sampler, budget, args.samples, args.seed)
            verdict = "pass" if result.passed else "fail"
            expected = verdict == ("fail" if broken_ones else "pass")
            claim = "broken" if broken_ones else type(sampler).exactness
            rows.append([name, claim, f"{result.statistic:,.1f}", str(result.bins - 1),
                         f"{result.p_value:.3g}", verdict + ("" if expected else " (!)")])
    print(f"chi-square against the exact distribution of {DIMS} values of {LEVELS} levels, "
          f"{args.samples} samples each, alpha {ALPHA:g}")
    print(tabulate(rows, headers=["sampler", "claims", "chi-square", "dof", "p", "verdict"],
                   tablefmt="github", disable_numparse=True))


if __name__ == "__main__":
    main()
