"""One unit of work, as planned (`CellPlan`: names, budget, seed, typed parameters) and as
run (`Cell`: the plan with what it reads fingerprinted, and its key)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from arbench.results.identity import cell_label, identity, variant_label

Params = Mapping[str, Mapping[str, Any]]
"""Parameters by plugin name: ``{"pnf": {"delta": 0.5}}`` (JSON values, the ones given)."""


@dataclass(frozen=True)
class CellPlan:
    """What one cell runs: the grid's names, budget and seed, each plugin's parameters
    (validated, as given: a plugin's own defaults are not part of it), the swept ones
    (``{"superres": {"ratio": 8}}``, what reports read), the registered models the
    sampler loads itself (a draft) and, for a pair that cannot run, why it is skipped."""

    task: str
    dataset: str
    model: str | None
    sampler: str
    budget: int | None
    seed: int
    params: Params = field(default_factory=dict, hash=False, compare=False)
    swept: Params = field(default_factory=dict, hash=False, compare=False)
    helpers: Params = field(default_factory=dict, hash=False, compare=False)
    skip_reason: str | None = None

    @property
    def variant(self) -> str:
        """The swept parameters as a label, e.g. ``ratio=8``."""
        return variant_label(self.swept, self.task)

    def configuration(self) -> dict[str, Any]:
        """What the user chose for this cell: names, budget, seed and parameters."""
        return {"task": self.task, "dataset": self.dataset, "model": self.model,
                "sampler": self.sampler, "budget": self.budget, "seed": self.seed,
                "params": self.params}

    def label(self) -> str:
        """``task/dataset/model/sampler variant budget=B seed=S`` (`cell_label`), for
        progress lines."""
        return cell_label(self.task, self.dataset, self.model, self.sampler, self.variant,
                          self.budget, self.seed)


@dataclass(frozen=True)
class Inputs:
    """What a cell reads, fingerprinted when it is about to run (`arbench.run.provenance`):
    the checkpoints by sha256 (the model's, then each helper's), the files of a
    ``data_dir`` by name, size and time, the code of every plugin it uses and the
    versions of their packages."""

    checkpoint_sha256: str = ""
    data_fingerprint: str = ""
    code: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    versions: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Cell(CellPlan):
    """A planned cell with its inputs: what executors run and a record is made of. `key`
    identifies its configuration and the data and checkpoints it reads (not its code:
    `arbench compare` matches a changed sampler with its baseline by key, and the code
    hashes tell a stale record, `arbench.run.provenance.is_current`)."""

    inputs: Inputs = field(default_factory=Inputs)
    key: str = ""

    @classmethod
    def of(cls, plan: CellPlan, inputs: Inputs) -> Cell:
        """`plan` with its `inputs` and the key they give."""
        read = {"checkpoint_sha256": inputs.checkpoint_sha256}
        if inputs.data_fingerprint:
            read["data_fingerprint"] = inputs.data_fingerprint
        fields = {name: getattr(plan, name) for name in CellPlan.__dataclass_fields__}
        return cls(**fields, inputs=inputs, key=identity({**plan.configuration(), **read}))
