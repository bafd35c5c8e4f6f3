"""A bank of networks, one per noise level: the PnF originals' scheme.

Jayaram & Thickstun fine-tune one copy of the model per noise level and anneal
by loading the next copy. arbench's own noise-conditioned models
(`smoothing.NoiseConditionedAR`) put every level in one network instead; a
`LevelBank` runs the originals' scheme, so their released weights run as
published: PnF's schedule is the bank's own levels (`noise_levels`) and each
Langevin step uses the network of its level.

On disk a bank is a folder::

    bank.json        {"family", "levels": [{"sigma", "file"}, ...], "data", "source"}
    level-00.pt      an arbench checkpoint (config + state dict) with its
    level-00.json    sha256 sidecar, which records the released file it came from

largest sigma first, sigma in data units ([-1, 1]). For a multi-source
dataset, ``checkpoint=DIR`` holds one bank folder per source. `arbench import`
writes banks (see docs/pnf-released-weights.md).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch

from arbench import (
    CheckpointError,
    Dataset,
    Model,
    atomic_write,
    level_values,
    load_for,
    recorded_sha256,
    save_checkpoint,
)
from arbench_plugins.models.pnf.noise_conditioned import PerSourcePriors, discrete_levels, quantize

BANK_INDEX = "bank.json"


class LevelNetwork(Protocol):
    """One level's network as the bank uses it."""

    def smoothed_log_prob(self, x: torch.Tensor, sigma: float) -> torch.Tensor: ...


def write_bank(out: Path, family: str, members: Sequence[tuple[float, dict[str, Any],
               dict[str, torch.Tensor], dict[str, Any]]], info: dict[str, Any]) -> Path:
    """Write ``(sigma, config, state_dict, metadata)`` members as a bank folder; the index
    is written last, so a bank without one is an interrupted import."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    levels = []
    for index, (sigma, config, state, metadata) in enumerate(sorted(members,
                                                                    key=lambda m: -m[0])):
        name = f"level-{index:02d}.pt"
        save_checkpoint(out / name, config, state, {"sigma": sigma, **metadata})
        levels.append({"sigma": sigma, "file": name})
    record = {"family": family, "levels": levels, **info}
    return atomic_write(out / BANK_INDEX, lambda path: path.write_text(
        json.dumps(record, indent=2, sort_keys=True) + "\n")).parent


def read_index(folder: Path) -> dict[str, Any]:
    """A bank's index, or a CheckpointError that says how to make one."""
    index = Path(folder) / BANK_INDEX
    if not index.exists():
        raise CheckpointError(f"{folder} is not a level bank (no {BANK_INDEX}); write one with "
                              "`arbench import MODEL RELEASED_DIR --out BANK`")
    try:
        record: dict[str, Any] = json.loads(index.read_text())
        [float(level["sigma"]) for level in record["levels"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{index} is not a valid bank index ({error}); import the "
                              "bank again") from None
    return record


class LevelBank(Model):
    """Networks per noise level behind the noise-conditioned interface.

    `smoothed_log_prob(x, sigma)` uses the network whose level is nearest to
    sigma in log scale: PnF calls it at the bank's own levels, so each step uses
    the network trained for it. Subclasses build a level's network from its
    checkpoint (`network`) and say which data format the bank expects (`check_data`).
    """

    provides = frozenset({"noise-conditioned", "noise-levels"})

    def __init__(self, members: Sequence[tuple[float, LevelNetwork]], dataset: Dataset,
                 **params: Any) -> None:
        super().__init__(**params)
        self.members = sorted(members, key=lambda member: -member[0])
        self.levels = level_values(discrete_levels(dataset))
        self.shape = tuple(dataset.shape)

    def noise_levels(self) -> list[float]:
        return [sigma for sigma, _ in self.members]

    def network(self, sigma: float) -> LevelNetwork:
        """The network of the level nearest to `sigma` (log scale)."""
        return min(self.members, key=lambda m: abs(math.log(m[0] / sigma)))[1]

    def smoothed_log_prob(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return self.network(sigma).smoothed_log_prob(x, sigma)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        return quantize(x, self.levels.to(x.device))

    # -- loading ---------------------------------------------------------------------------

    net_class: ClassVar[type[torch.nn.Module]]  # a level's network, built from its config

    @classmethod
    def level_network(cls, net: torch.nn.Module, dataset: Dataset) -> LevelNetwork:
        """The bank's view of one level's loaded network."""
        raise NotImplementedError

    @classmethod
    def build_network(cls, state: dict[str, Any], dataset: Dataset,
                      device: torch.device) -> LevelNetwork:
        """One level's network from its verified checkpoint."""
        net = cls.net_class(**state["config"])
        net.load_state_dict(state["state_dict"])
        return cls.level_network(net.to(device).eval(), dataset)

    @classmethod
    def check_data(cls, record: dict[str, Any], dataset: Dataset) -> None:
        """Refuse a dataset in another format than the one the bank was trained on."""

    @classmethod
    def fits(cls, trained: tuple[int, ...], shape: tuple[int, ...]) -> bool:
        """Whether a level's network trained on examples of shape `trained` runs on `shape`."""
        return trained == shape

    @classmethod
    def load(cls, dataset: Dataset, device: torch.device, *, family: str,
             checkpoint: Path | None, **params: Any) -> Model:
        if checkpoint is None:
            raise CheckpointError(f"{family} ships no weights: import the released ones "
                                  f"(`arbench import {family} DIR --out BANK`) and pass "
                                  f"--set {family}.checkpoint=BANK")
        if dataset.sources:
            banks = {name: cls._load_bank(checkpoint / name, dataset.source(name), device,
                                          family, params) for name in dataset.sources}
            return PerSourcePriors(banks, **params)
        return cls._load_bank(checkpoint, dataset, device, family, params)

    @classmethod
    def _load_bank(cls, folder: Path, dataset: Dataset, device: torch.device, family: str,
                   params: dict[str, Any]) -> LevelBank:
        record = read_index(folder)
        if record.get("family") != family:
            raise CheckpointError(f"{folder} is a bank of {record.get('family')!r}, not of "
                                  f"{family!r}; run it as that model")
        cls.check_data(record, dataset)
        members = [(float(level["sigma"]),
                    cls.build_network(load_for(folder / level["file"], dataset, device,
                                               cls.fits), dataset, device))
                   for level in record["levels"]]
        return cls(members, dataset, **params)

    @classmethod
    def checkpoint_sha256(cls, path: Path | None, dataset_name: str, /, *, family: str,
                          **params: Any) -> str:
        """A hash of every index under the bank folder and of its levels' sha256s."""
        if path is None or not path.is_dir():
            return ""
        digest = hashlib.sha256()
        for index in sorted(path.rglob(BANK_INDEX)):
            digest.update(index.read_bytes())
            for level in read_index(index.parent)["levels"]:
                digest.update(recorded_sha256(index.parent / level["file"]).encode())
        return digest.hexdigest()

    @classmethod
    def train(cls, dataset: Dataset, out: Path, seed: int = 0, *, family: str,
              **options: Any) -> Path:
        raise ValueError(f"{family} runs released weights; import them with `arbench "
                         f"import {family} DIR --out BANK` (train arbench's own "
                         "noise-conditioned models with `arbench train wavenet` or "
                         "`arbench train pixelcnn++`)")
