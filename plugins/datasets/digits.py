"""scikit-learn's 8x8 handwritten digits (1797 images, grey levels 0..16).

The data ship inside scikit-learn, so nothing is downloaded. The split is a
fixed stratified 80/20 shuffle (seed 0), the same on every machine.
"""

from __future__ import annotations

from functools import cache

import torch

from arbench.contracts import Dataset


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
    return {
        "train": images[train_idx], "test": images[test_idx],
        "train_labels": labels[train_idx], "test_labels": labels[test_idx],
    }


class Digits(Dataset):
    """Images ``(N, 1, 8, 8)`` with integer values in 0..16."""

    name = "digits"
    modality = "image"
    shape = (1, 8, 8)
    num_levels = 17

    def load(self, split: str) -> torch.Tensor:
        if split not in ("train", "test"):
            raise ValueError(f"digits has splits 'train' and 'test', not '{split}'")
        return _splits()[split].clone()

    def labels(self, split: str) -> torch.Tensor:
        """Class labels 0..9, used by class-group separation and the FID classifier."""
        self.load(split)  # validates the split name
        return _splits()[f"{split}_labels"].clone()
