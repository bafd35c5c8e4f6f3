"""FID's reference statistics: the feature mean and covariance of a split, cached on disk.

Computing them means running the feature network over the whole split, so they are
kept under ``$ARBENCH_CACHE/fid-reference`` (default ``~/.cache/arbench``), keyed by
dataset, split, the extractor's name and weights, and a hash of the data; a corrupt
or mismatching file is recomputed and replaced, and one that cannot be written is
only a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from arbench import Dataset, ImageFeatures

CACHE_ENV = "ARBENCH_CACHE"
CACHE_FORMAT = 1  # bump when the statistics or their key change meaning
REFERENCE_SPLIT = "test"


@dataclass
class FeatureStatistics:
    """Mean ``(F,)`` and unbiased covariance ``(F, F)`` in float64, of `n` examples."""

    mean: np.ndarray
    cov: np.ndarray
    n: int


def extract(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
            batch_size: int) -> torch.Tensor:
    """``fn`` over `x` in batches without gradients, as float64."""
    with torch.no_grad():
        return torch.cat([fn(chunk).double() for chunk in x.split(batch_size)])


def feature_statistics(features: torch.Tensor) -> FeatureStatistics:
    """The mean and covariance of `features`: what FID compares."""
    values = features.detach().double().cpu().numpy()
    if len(values) < 2:
        raise ValueError("feature statistics need at least 2 examples")
    return FeatureStatistics(values.mean(axis=0), np.cov(values, rowvar=False), len(values))


def cache_root() -> Path:
    """``$ARBENCH_CACHE``, default ``~/.cache/arbench``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "arbench")


def compute_reference_statistics(dataset: Dataset, extractor: ImageFeatures, data: torch.Tensor,
                                 device: torch.device, batch_size: int) -> FeatureStatistics:
    """The test split's feature statistics, computed (the cache's miss)."""
    values = dataset.continuous(data.to(device))
    return feature_statistics(extract(extractor.features, values, batch_size))


def _cache_key(dataset: Dataset, extractor: ImageFeatures, split: str,
               data: torch.Tensor) -> dict[str, Any]:
    digest = hashlib.sha256(f"{data.dtype} {tuple(data.shape)} ".encode())
    digest.update(data.detach().cpu().contiguous().numpy().tobytes())
    return {"format": CACHE_FORMAT, "dataset": dataset.name, "split": split,
            "extractor": extractor.name, "extractor_sha256": extractor.sha256,
            "data_sha256": digest.hexdigest()}


def reference_cache_path(key: dict[str, Any], root: Path | None = None) -> Path:
    """Where the reference statistics of `key` (dataset, extractor weights, split) are
    cached."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"{key['dataset'] or 'unnamed'}-{key['split']}-"
                                           f"{key['extractor']}")
    return (root or cache_root()) / "fid-reference" / f"{stem}-{digest}.npz"


def _read_cache(path: Path, key: dict[str, Any], num_features: int) -> FeatureStatistics | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            stats = FeatureStatistics(stored["mean"], stored["cov"], int(stored["n"]))
            stored_key = json.loads(str(stored["key"]))
        valid = (stored_key == key and stats.mean.shape == (num_features,)
                 and stats.cov.shape == (num_features, num_features) and stats.n >= 2
                 and np.isfinite(stats.mean).all() and np.isfinite(stats.cov).all())
    except Exception:  # truncated, not a zip, missing arrays, bad JSON...
        valid = False
    if not valid:
        warnings.warn(f"FID reference cache {path} is unreadable or stale; recomputing it",
                      stacklevel=3)
        return None
    return stats


def _write_cache(path: Path, key: dict[str, Any], stats: FeatureStatistics) -> None:
    """Write atomically (temp file + rename); a cache that cannot be written is only a warning."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            np.savez(handle, mean=stats.mean, cov=stats.cov, n=np.int64(stats.n),
                     key=np.str_(json.dumps(key, sort_keys=True)))
        os.chmod(handle.name, 0o644)  # NamedTemporaryFile creates 0600
        os.replace(handle.name, path)
    except OSError as error:
        warnings.warn(f"could not write FID reference cache {path}: {error}", stacklevel=3)
        if "handle" in locals():
            Path(handle.name).unlink(missing_ok=True)


def reference_statistics(dataset: Dataset, extractor: ImageFeatures, device: torch.device,
                         split: str = REFERENCE_SPLIT, batch_size: int = 512,
                         cache: Path | None = None) -> FeatureStatistics:
    """Feature mean and covariance of `split`, cached under ``cache_root()/fid-reference``.

    Keyed by dataset name, split, extractor name, extractor sha256 and a hash of
    the split's data; a corrupt or mismatching file is recomputed and replaced.
    """
    data = dataset.load(split)
    if not extractor.sha256:
        return compute_reference_statistics(dataset, extractor, data, device, batch_size)
    key = _cache_key(dataset, extractor, split, data)
    path = reference_cache_path(key, cache)
    stats = _read_cache(path, key, extractor.num_features)
    if stats is None:
        stats = compute_reference_statistics(dataset, extractor, data, device, batch_size)
        _write_cache(path, key, stats)
    return stats
