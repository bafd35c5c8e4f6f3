"""Two-source datasets for separation: mixtures of images from two disjoint class groups.

PnF separates image mixtures whose sources come from two groups of classes, with one
prior for both. `pair_up` makes the pairs the same way for every such dataset: each
group shuffled with its own fixed seed, example i of one paired with example i of the
other (unrelated images), N the smaller group's size.

- `cifar10-groups`: a CIFAR-10 machine (airplane, automobile, ship, truck: classes
  0, 1, 8, 9; source `cifar10-machines`) and an animal (classes 2-7;
  `cifar10-animals`), ``(N, 2, 3, 32, 32)``, read from your CIFAR-10 files.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from arbench import Dataset
from arbench_plugins.datasets.images import Cifar10

MACHINES = (0, 1, 8, 9)
ANIMALS = (2, 3, 4, 5, 6, 7)


def pair_up(groups: list[torch.Tensor]) -> torch.Tensor:
    """Example i of each shuffled group, stacked on axis 1: ``(N, len(groups), ...)``."""
    n = min(len(group) for group in groups)
    shuffled = [group[torch.randperm(len(group), generator=torch.Generator().manual_seed(seed))]
                for seed, group in enumerate(groups)]
    return torch.stack([group[:n] for group in shuffled], dim=1)


class _Cifar10Classes(Cifar10):
    """The CIFAR-10 images of `classes`, in every split."""

    classes: ClassVar[tuple[int, ...]]

    def _splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        kept = {}
        for split, (images, labels) in super()._splits().items():
            keep = torch.isin(labels, torch.tensor(self.classes))
            kept[split] = (images[keep], labels[keep])
        return kept


class Cifar10Machines(_Cifar10Classes):
    classes = MACHINES


class Cifar10Animals(_Cifar10Classes):
    classes = ANIMALS


class Cifar10Groups(Dataset):
    """Pairs (a machine, an animal) from your CIFAR-10 files, ``(N, 2, 3, 32, 32)``."""

    modality: ClassVar[str] = "image"
    shape = (2, 3, 32, 32)
    num_levels = 256
    sources = ("cifar10-machines", "cifar10-animals")
    Params = Cifar10.Params
    params: Cifar10.Params
    _classes: ClassVar[dict[str, type[Cifar10]]] = {"cifar10-machines": Cifar10Machines,
                                                     "cifar10-animals": Cifar10Animals}

    def source(self, name: str) -> Dataset:
        if name not in self._classes:
            raise KeyError(f"cifar10-groups has sources {self.sources}, not '{name}'")
        dataset = self._classes[name](**self.params.model_dump())
        dataset.name = name
        return dataset

    def load(self, split: str) -> torch.Tensor:
        self.check_split(split)
        return pair_up([self.source(name).load(split) for name in self.sources])
