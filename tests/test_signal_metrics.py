"""Signal metrics: SNR, SI-SDR and BSS-eval SDR against direct formulas and torchmetrics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torchmetrics.functional.audio import signal_distortion_ratio
from torchmetrics.functional.image import peak_signal_noise_ratio

from arbench import MetricSpec
from arbench.plugin.registry import build_registry
from arbench_plugins.metrics.signal import MSE, PSNR, SISDR, SNR, BSSEvalSDR, bss_eval_sdr

# mir_eval and torchmetrics solve the same least-squares problem (project the
# estimate on 512 delays of the reference), by a dense solve and by a Toeplitz
# solve from FFT autocorrelations, with no regularisation (torchmetrics'
# load_diag=None). In float64 they differ only by rounding amplified by the
# conditioning of the 512x512 Gram matrix: measured at most 1.2e-10 dB for SDRs of
# 20-40 dB and 2e-6 dB at 80 dB (signals of 600-8000 samples). 1e-6 dB leaves four
# orders of magnitude for other BLAS builds at the SDRs tested here.
SDR_TOLERANCE_DB = 1e-6


def numpy_snr(x: np.ndarray, x_hat: np.ndarray) -> float:
    return 10 * np.log10(np.sum(x**2) / np.sum((x - x_hat) ** 2))


def numpy_si_sdr(x: np.ndarray, x_hat: np.ndarray) -> float:
    x, x_hat = x - x.mean(), x_hat - x_hat.mean()
    target = (x_hat @ x) / (x @ x) * x
    return 10 * np.log10(np.sum(target**2) / np.sum((target - x_hat) ** 2))


def per_example(formula, reference: np.ndarray, estimate: np.ndarray) -> float:
    """Mean of `formula` over examples, each flattened to one signal."""
    pairs = zip(reference, estimate, strict=True)
    return float(np.mean([formula(r.ravel(), e.ravel()) for r, e in pairs]))


@pytest.fixture
def signals() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((4, 2, 50)) + 0.3
    estimate = 0.8 * reference + 0.3 * rng.standard_normal(reference.shape) - 0.1
    return reference, estimate


def test_snr_is_the_direct_formula_per_example_averaged(signals) -> None:
    reference, estimate = signals
    expected = per_example(numpy_snr, reference, estimate)
    got = SNR()(torch.from_numpy(estimate).float(), torch.from_numpy(reference).float())
    assert got == pytest.approx(expected, abs=1e-4)


def test_si_sdr_is_the_direct_formula_and_scale_invariant(signals) -> None:
    reference, estimate = signals
    expected = per_example(numpy_si_sdr, reference, estimate)
    metric = SISDR()
    got = metric(torch.from_numpy(estimate), torch.from_numpy(reference))
    assert got == pytest.approx(expected, abs=1e-9)
    rescaled = metric(torch.from_numpy(37.5 * estimate), torch.from_numpy(reference))
    assert rescaled == pytest.approx(got, abs=1e-9)
    assert SNR()(torch.from_numpy(37.5 * estimate), torch.from_numpy(reference)) < got


def test_psnr_agrees_with_torchmetrics_per_image() -> None:
    generator = torch.Generator().manual_seed(0)
    reference = torch.rand(5, 1, 8, 8, generator=generator) * 2 - 1
    estimate = (reference + 0.2 * torch.randn(reference.shape, generator=generator)).clamp(-1, 1)
    expected = peak_signal_noise_ratio(estimate.double(), reference.double(), data_range=2.0,
                                       reduction="elementwise_mean", dim=(1, 2, 3))
    assert PSNR()(estimate, reference) == pytest.approx(float(expected), abs=1e-5)
    squared = ((estimate - reference).double() ** 2).mean()
    assert MSE()(estimate, reference) == pytest.approx(float(squared), rel=1e-12)
    # a range of 1 (data in [0, 1]) lowers every PSNR by 20 log10(2)
    assert PSNR(data_range=1.0)(estimate, reference) == pytest.approx(
        float(expected) - 20 * np.log10(2), abs=1e-5)


def test_metrics_reject_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="differ"):
        SNR()(torch.zeros(2, 3), torch.ones(2, 4))


@pytest.mark.parametrize("noise", [0.01, 0.03, 0.1])
def test_bss_eval_sdr_agrees_with_torchmetrics_sdr(noise: float) -> None:
    rng = np.random.default_rng(1)
    t = np.arange(2000)
    reference = np.sin(0.03 * t) + 0.5 * rng.standard_normal(t.size)
    distorted = reference + noise * rng.standard_normal(t.size)
    estimate = 0.9 * np.convolve(distorted, [1.0, 0.1], mode="same")  # small filter + gain
    ours = bss_eval_sdr(reference[None], estimate[None])
    theirs = signal_distortion_ratio(
        torch.from_numpy(estimate), torch.from_numpy(reference), filter_length=512
    )
    assert ours.shape == (1,)
    assert 15 < ours[0] < 45
    assert ours[0] == pytest.approx(theirs.item(), abs=SDR_TOLERANCE_DB)


def test_bss_eval_sdr_scores_each_named_source_alone_and_silently() -> None:
    rng = np.random.default_rng(2)
    reference = rng.standard_normal((2, 1000))
    estimate = reference + 0.2 * rng.standard_normal((2, 1000)) + 0.3 * reference[::-1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # mir_eval's deprecation warning is silenced
        ours = bss_eval_sdr(reference, estimate)
    theirs = signal_distortion_ratio(torch.from_numpy(estimate), torch.from_numpy(reference))
    np.testing.assert_allclose(ours, theirs.numpy(), atol=SDR_TOLERANCE_DB)


def test_bss_eval_metric_averages_examples_and_sources() -> None:
    rng = np.random.default_rng(3)
    reference = rng.standard_normal((2, 2, 600))
    estimate = reference + 0.1 * rng.standard_normal(reference.shape)
    expected = np.mean([bss_eval_sdr(r, e) for r, e in zip(reference, estimate, strict=True)])
    got = BSSEvalSDR()(torch.from_numpy(estimate).float(), torch.from_numpy(reference).float())
    assert got == pytest.approx(expected, abs=1e-3)


def test_bss_eval_sdr_rejects_silent_reference_and_short_signals() -> None:
    reference = np.ones((2, 600))
    reference[1] = 0.0
    with pytest.raises(ValueError, match="all-zero reference: source"):
        bss_eval_sdr(reference, np.ones((2, 600)))
    with pytest.raises(ValueError, match="at least 512 samples"):
        bss_eval_sdr(np.ones((1, 64)), np.ones((1, 64)))


def test_signal_metrics_are_registered_higher_is_better_in_db() -> None:
    registry = build_registry()
    for name, cls in (("snr_db", SNR), ("si_sdr_db", SISDR), ("sdr_db", BSSEvalSDR),
                      ("psnr_db", PSNR)):
        spec = registry.get(MetricSpec, name)
        assert (spec.direction, spec.unit) == ("higher", "dB")
        assert spec.load() is cls
