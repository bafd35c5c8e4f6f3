"""Signal-fidelity metrics in dB for super-resolution, inpainting, separation and
reconstruction.

Every metric takes ``estimate`` and ``reference`` of one shape ``(B, ...)``; its
`per_example` values (computed in float64, so that they do not depend on the
sampler's working precision) are kept in the record and their mean is the metric.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

from arbench import Metric, Param

BSS_EVAL_FILTER_LENGTH = 512  # mir_eval's bss_eval_sources hard-codes this


def _flat_pair(estimate: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Both as float64 ``(B, D)``: each example is scored as one signal."""
    if estimate.shape != reference.shape:
        raise ValueError(
            f"estimate {tuple(estimate.shape)} and reference {tuple(reference.shape)} differ"
        )
    n = reference.shape[0]
    return estimate.detach().double().reshape(n, -1), reference.detach().double().reshape(n, -1)


class SNR(Metric):
    """10 log10(|x|^2 / |x - x_hat|^2) per example, as PnF's original evaluation computes it.

    Unlike SI-SDR it is not shift-invariant: give it values centred on silence
    (PnF scores waveforms in [-1, 1]), or a DC offset inflates it. No epsilon is
    added, so a perfect estimate gives +inf and an all-zero reference -inf; the
    runner records a non-finite metric as a failed cell rather than reporting a
    number that only reflects an epsilon.
    """

    def per_example(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        x_hat, x = _flat_pair(estimate, reference)
        ratio = (x**2).sum(dim=1) / ((x - x_hat) ** 2).sum(dim=1)
        return 10 * torch.log10(ratio)


class PSNR(Metric):
    """10 log10(range^2 / mean squared error) per example, the image papers' PSNR.

    ``data_range`` is the span of valid values: 2 for arbench's data in [-1, 1]
    (see `arbench.plugin.contracts.level_values`). Each example gets its own PSNR and the
    batch mean is returned (torchmetrics' ``reduction="elementwise_mean"`` with a
    per-example ``dim``); a perfect estimate gives +inf, which the runner records as
    a failed cell rather than a number that only reflects an epsilon.
    """

    class Params(Metric.Params):
        data_range: float = Param(2.0, "peak-to-peak range of the data", gt=0)

    params: Params

    def per_example(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        x_hat, x = _flat_pair(estimate, reference)
        mse = ((x - x_hat) ** 2).mean(dim=1)
        return 10 * torch.log10(self.params.data_range ** 2 / mse)


class MSE(Metric):
    """Mean squared error in data units; per example over its values, so the metric (their
    mean over examples of one size) is the mean over every value of the batch."""

    def per_example(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        x_hat, x = _flat_pair(estimate, reference)
        return ((x - x_hat) ** 2).mean(dim=1)


class SISDR(Metric):
    """Scale-invariant SDR (Le Roux et al., "SDR - half-baked or well done?", 2019).

    The reference is rescaled by the least-squares factor <x_hat, x> / |x|^2 and
    SI-SDR = 10 log10(|a x|^2 / |a x - x_hat|^2), so rescaling the estimate changes
    nothing. Both signals are made zero-mean first (``zero_mean=True``): Le Roux et al.
    define SI-SDR on zero-mean signals for shift invariance, and asteroid's SI-SDR
    (the usual separation evaluation) does the same by default; torchmetrics'
    default is False, so it is set explicitly. PnF's released code does not ship an
    SI-SDR routine, so this follows the standard definition.
    """

    def per_example(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        x_hat, x = _flat_pair(estimate, reference)
        return scale_invariant_signal_distortion_ratio(x_hat, x, zero_mean=True)


def bss_eval_sdr(references: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """Per-source BSS-eval SDR (Vincent et al. 2006) of ``estimates (S, T)`` against ``references``.

    This is the classic SDR, not SI-SDR: the reference may pass through a
    time-invariant 512-tap filter before the residual is measured, which forgives
    some spectral distortion. mir_eval's ``bss_eval_sources`` is deprecated (0.8,
    removal planned for 0.9) and warns on every call; this function is the single
    place arbench calls it, so a replacement only has to change here.

    Estimate s is scored against reference s (no permutation search): the
    sources are named, so swapping them would hide an error. All-zero
    references or estimates are rejected, because SDR is undefined for them,
    and so are signals shorter than the filter: with more filter taps than
    samples the filter absorbs most of any error (white noise at 0 dB SNR scores
    about +6.5 dB on 64 samples), so the number would be meaningless.
    """
    from mir_eval.separation import bss_eval_sources

    references = np.asarray(references, dtype=np.float64)
    estimates = np.asarray(estimates, dtype=np.float64)
    if references.shape[-1] < BSS_EVAL_FILTER_LENGTH:
        raise ValueError(
            f"BSS-eval SDR needs at least {BSS_EVAL_FILTER_LENGTH} samples per source (its "
            f"distortion filter length); got {references.shape[-1]}"
        )
    for name, signals in (("reference", references), ("estimate", estimates)):
        silent = np.flatnonzero(~np.any(signals, axis=-1))
        if silent.size:
            raise ValueError(
                f"BSS-eval SDR is undefined for an all-zero {name}: source(s) {silent.tolist()}"
            )
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"mir_eval\.separation\.bss_eval_sources", category=FutureWarning
        )
        sdr: np.ndarray
        sdr, _, _, _ = bss_eval_sources(references, estimates, compute_permutation=False)
    return sdr


class BSSEvalSDR(Metric):
    """BSS-eval SDR of separation results ``(B, S, T)``: per example, its sources' mean.

    Reported for comparison with separation papers that quote bss_eval SDR;
    SI-SDR (`SISDR`) is the measure arbench's separation tables lead with.
    """

    def per_example(self, estimate: torch.Tensor, reference: torch.Tensor) -> np.ndarray:
        if estimate.shape != reference.shape or reference.dim() != 3:
            raise ValueError(
                f"BSS-eval SDR expects estimate and reference of one shape (B, S, T); got "
                f"{tuple(estimate.shape)} and {tuple(reference.shape)}"
            )
        est = estimate.detach().double().cpu().numpy()
        ref = reference.detach().double().cpu().numpy()
        return np.array([bss_eval_sdr(r, e).mean() for r, e in zip(ref, est, strict=True)])
