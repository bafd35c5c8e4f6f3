"""scikit-learn's 8x8 handwritten digits (1797 images, grey levels 0..16).

The data ship inside scikit-learn, so nothing is downloaded. The split is a
fixed stratified 80/20 shuffle (seed 0), the same on every machine. The
validation split is a fixed stratified eighth of the train split (144 images),
for tuning samplers; the shipped digits checkpoints were trained on the whole
train split before it existed, so a sampler tuned there is tuned on images its
model has seen: a held-out check of the tuning, not of the model.
"""

from __future__ import annotations

from functools import cache

import torch

from arbench import Dataset
from arbench_plugins.datasets.class_groups import pair_up


@cache
def _splits() -> dict[str, torch.Tensor]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.long).unsqueeze(1)  # (N, 1, 8, 8)
    labels = torch.as_tensor(bunch.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(
        range(len(labels)), test_size=0.2, random_state=0, stratify=bunch.target
    )
    _, validation_idx = train_test_split(
        train_idx, test_size=1 / 8, random_state=0, stratify=bunch.target[train_idx])
    return {
        "train": images[train_idx], "validation": images[validation_idx],
        "test": images[test_idx], "train_labels": labels[train_idx],
        "validation_labels": labels[validation_idx], "test_labels": labels[test_idx],
    }


class Digits(Dataset):
    """Images ``(N, 1, 8, 8)`` with integer values in 0..16."""

    name = "digits"
    modality = "image"
    shape = (1, 8, 8)
    num_levels = 17

    def load(self, split: str) -> torch.Tensor:
        self.check_split(split)
        return _splits()[split].clone()

    def labels(self, split: str) -> torch.Tensor:
        """Class labels 0..9, used by class-group separation and the FID classifier."""
        self.load(split)  # validates the split name
        return _splits()[f"{split}_labels"].clone()


class _DigitClasses(Digits):
    """The digits of some classes only, from the same fixed split (a separation source)."""

    classes: tuple[int, ...] = ()

    def _keep(self, split: str) -> torch.Tensor:
        return torch.isin(_splits()[f"{split}_labels"], torch.tensor(self.classes))

    def load(self, split: str) -> torch.Tensor:
        return super().load(split)[self._keep(split)]

    def labels(self, split: str) -> torch.Tensor:
        return super().labels(split)[self._keep(split)]


class DigitsLow(_DigitClasses):
    """Digits 0-4: one source of the class-group separation task."""

    name = "digits-low"
    classes = (0, 1, 2, 3, 4)


class DigitsHigh(_DigitClasses):
    """Digits 5-9: the other source, disjoint in class from DigitsLow."""

    name = "digits-high"
    classes = (5, 6, 7, 8, 9)


class DigitGroups(Dataset):
    """Pairs (a 0-4 digit, a 5-9 digit) stacked on axis 1: ``(N, 2, 1, 8, 8)``.

    The pairs are made by `class_groups.pair_up`: the same on every machine, mixing
    unrelated images; N is the smaller group's size.
    """

    name = "digit-groups"
    modality = "image"
    shape = (2, 1, 8, 8)
    num_levels = 17
    sources = ("digits-low", "digits-high")
    _classes = {"digits-low": DigitsLow, "digits-high": DigitsHigh}

    def source(self, name: str) -> Dataset:
        if name not in self._classes:
            raise KeyError(f"digit-groups has sources {self.sources}, not '{name}'")
        dataset = self._classes[name]()
        dataset.name = name
        return dataset

    def load(self, split: str) -> torch.Tensor:
        return pair_up([self.source(name).load(split) for name in self.sources])
