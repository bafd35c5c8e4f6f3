"""A cell's saved samples (``artifacts/KEY/samples.pt``), written by a task and read by
reporters as untrusted files.

A run folder can be copied from anywhere, so the file is loaded with
``weights_only=True`` (no code runs) and then checked for the shape a task writes;
anything else (a pickle with code in it, a truncated file, other content) is a
`DamagedArtifact` naming the file, so a report can leave that cell's panel out and
make the rest.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arbench.errors import StoreError
from arbench.results.store import atomic_write

if TYPE_CHECKING:
    import torch

SAMPLES_FILE = "samples.pt"


class DamagedArtifact(StoreError):
    """A saved artifact that cannot be read as arbench wrote it; the message names it."""


@dataclass(frozen=True)
class Samples:
    """What a reporter needs to draw a cell's samples without loading its dataset."""

    modality: str
    shape: tuple[int, ...]  # one example's shape (sources first for a multi-source dataset)
    sources: tuple[str, ...]
    sample_rate: int | None
    tensors: Mapping[str, torch.Tensor]  # by name, examples first, float on the CPU

    def write(self, path: Path) -> Path:
        """Save as a plain dict of tensors and builtins, whole or not at all."""
        import torch

        meta = {"modality": self.modality, "shape": list(self.shape),
                "sources": list(self.sources), "sample_rate": self.sample_rate}
        saved = {"meta": meta, "tensors": dict(self.tensors)}
        return atomic_write(path, lambda target: torch.save(saved, target))


def read_samples(path: Path) -> Samples:
    """The samples saved at `path`; a `DamagedArtifact` for anything a task did not write."""
    import torch

    try:
        with warnings.catch_warnings():  # torch warns of a pickle protocol it then refuses
            warnings.simplefilter("ignore")
            saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - an untrusted file fails in many ways
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DamagedArtifact(f"{path}: not a samples file arbench wrote ({reason[:200]}); "
                              "delete it, or rerun its cell with `arbench run ... --force`"
                              ) from None
    try:
        return _checked(saved)
    except (KeyError, TypeError, ValueError) as error:
        raise DamagedArtifact(f"{path}: its content is not what a task saves ({error}); "
                              "delete it, or rerun its cell with `arbench run ... --force`"
                              ) from None


def _checked(saved: Any) -> Samples:
    """`saved` as `Samples`, or a ValueError/TypeError/KeyError saying what is wrong."""
    import torch

    if not isinstance(saved, dict) or not isinstance(saved.get("meta"), dict):
        raise TypeError("expected a dict with 'meta' and 'tensors'")
    meta, tensors = saved["meta"], saved["tensors"]
    rate = meta.get("sample_rate")
    if not isinstance(meta["modality"], str) or not (
            rate is None or (isinstance(rate, int) and rate > 0)):
        raise TypeError("meta.modality must be a string and meta.sample_rate a positive "
                        "int or None")
    shape = tuple(int(size) for size in meta["shape"])
    sources = tuple(str(source) for source in meta.get("sources") or ())
    if not isinstance(tensors, dict) or not tensors:
        raise TypeError("'tensors' must be a non-empty dict of tensors")
    for name, tensor in tensors.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise TypeError(f"tensors[{name!r}] is not a named tensor")
        if tensor.ndim == 0 or tensor.numel() == 0 or not tensor.is_floating_point():
            raise ValueError(f"tensors[{name!r}] of shape {tuple(tensor.shape)} and "
                             f"{tensor.dtype} is not float examples-first")
    return Samples(meta["modality"], shape, sources, rate, tensors)
