"""Model-free baselines: the reference rows of PnF's conditional-generation tables.

They use no network (0 NFE) and no randomness, so any model-based sampler has
to beat them to justify its cost: cubic-spline interpolation for
super-resolution and inpainting, the unseparated mixture for separation
(whose SI-SDR is the input SI-SDR that SI-SDR improvements are measured from),
and the noisy observation itself for denoising.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.interpolate import CubicSpline, griddata

from arbench import (
    Condition,
    Dataset,
    Incompatible,
    Mixture,
    Model,
    Noisy,
    Observed,
    SampleOutput,
    Sampler,
)


def _check_batch(n: int, batch: int) -> None:
    if n != batch:
        raise ValueError(
            f"a deterministic baseline gives one estimate per condition: n={n}, "
            f"but the condition holds {batch} examples"
        )


def _spline_1d(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Cubic spline through the observed positions of one signal, extrapolated at the ends."""
    (known,) = np.nonzero(mask)
    result: np.ndarray = CubicSpline(known, values[known])(np.arange(mask.size))
    return result


def _spline_2d(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Separable splines on a rectilinear observed grid, otherwise scattered cubic interpolation.

    A rectilinear grid (every observed row shares the same observed columns, as in
    x[::r, ::r]) allows tensor-product splines, exact for cubics in each axis.
    Anything else (a missing centre patch) goes to Clough-Tocher cubic
    interpolation on the observed points; positions outside their convex hull,
    where it gives NaN, take the nearest observed value.
    """
    observed_rows, observed_cols = mask.any(axis=1), mask.any(axis=0)
    if np.array_equal(mask, np.outer(observed_rows, observed_cols)):
        (rows,), (cols,) = np.nonzero(observed_rows), np.nonzero(observed_cols)
        if min(rows.size, cols.size) < 2:
            raise Incompatible("spline needs at least 2 observed rows and columns")
        height, width = mask.shape
        along_rows = CubicSpline(cols, values[np.ix_(rows, cols)], axis=1)(np.arange(width))
        result: np.ndarray = CubicSpline(rows, along_rows, axis=0)(np.arange(height))
        return result
    known = np.argwhere(mask)
    missing = np.argwhere(~mask)
    filled = griddata(known, values[mask], missing, method="cubic")
    nan = np.isnan(filled)
    if nan.any():
        filled[nan] = griddata(known, values[mask], missing[nan], method="nearest")
    out = values.copy()
    out[~mask] = filled
    return out


def _spline_channels(mask: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Each channel ``(C, H, W)`` of an image interpolated as its own 2-D image."""
    return np.stack([_spline_2d(m, v) for m, v in zip(mask, value, strict=True)])


class Spline(Sampler):
    """Cubic-spline interpolation of the unobserved entries of an `Observed` condition.

    Singleton axes are ignored, so ``(B, T)``, ``(B, 1, T)`` and ``(B, 1, H, W)``
    all work: one remaining axis is a 1-D signal, two are an image, three the channels
    of an image (RGB), each interpolated on its own.
    """

    def sample(
        self,
        model: Model | None,
        dataset: Dataset,
        n: int,
        budget: int | None,
        generator: torch.Generator,
        condition: Condition | None = None,
    ) -> SampleOutput:
        if not isinstance(condition, Observed):
            raise Incompatible(
                f"spline interpolates observed values; got condition {type(condition).__name__}"
            )
        _check_batch(n, condition.values.shape[0])
        values = condition.values.detach().cpu().double().numpy()
        masks = condition.mask.detach().cpu().numpy().astype(bool)
        example_shape = tuple(size for size in values.shape[1:] if size > 1)
        if len(example_shape) not in (1, 2, 3):
            raise Incompatible(f"spline handles 1-D signals and (multi-channel) 2-D images, "
                               f"not {values.shape[1:]}")
        interpolate = {1: _spline_1d, 2: _spline_2d, 3: _spline_channels}[len(example_shape)]
        estimates = []
        for mask, value in zip(masks, values, strict=True):
            mask, value = mask.reshape(example_shape), value.reshape(example_shape)
            if mask.sum() < 2:
                raise Incompatible("spline needs at least 2 observed values per example")
            estimates.append(np.where(mask, value, interpolate(mask, value)))
        samples = torch.from_numpy(np.stack(estimates).reshape(values.shape))
        dtype = torch.promote_types(condition.values.dtype, torch.float32)
        samples = samples.to(device=condition.values.device, dtype=dtype)
        return SampleOutput(samples=samples, nfe=0)


class MixtureBaseline(Sampler):
    """Every source estimate is the mixture itself: separation's do-nothing reference."""

    def sample(
        self,
        model: Model | None,
        dataset: Dataset,
        n: int,
        budget: int | None,
        generator: torch.Generator,
        condition: Condition | None = None,
    ) -> SampleOutput:
        if not isinstance(condition, Mixture):
            raise Incompatible(
                f"the mixture baseline needs a Mixture condition; got {type(condition).__name__}"
            )
        if not dataset.sources:
            raise Incompatible(f"dataset {dataset.name or type(dataset).__name__} has no sources")
        mixture = condition.mixture
        _check_batch(n, mixture.shape[0])
        samples = mixture.unsqueeze(1).expand(-1, len(dataset.sources), *mixture.shape[1:])
        return SampleOutput(samples=samples.clone(), nfe=0)


class NoisyInput(Sampler):
    """The estimate is the noisy observation itself: denoising's do-nothing reference."""

    def sample(
        self,
        model: Model | None,
        dataset: Dataset,
        n: int,
        budget: int | None,
        generator: torch.Generator,
        condition: Condition | None = None,
    ) -> SampleOutput:
        if not isinstance(condition, Noisy):
            raise Incompatible(
                f"the noisy-input baseline needs a Noisy condition; got {type(condition).__name__}"
            )
        _check_batch(n, condition.values.shape[0])
        return SampleOutput(samples=condition.values.clone(), nfe=0)
