"""Built-in metrics."""

from arbench import MetricSpec, hookimpl


@hookimpl
def arbench_metrics() -> list[MetricSpec]:
    """The built-in metrics, each with its direction and unit."""
    return [
        MetricSpec(
            name="nll_bpd",
            factory="arbench_plugins.metrics.likelihood:BitsPerDim",
            description="Negative log-likelihood of held-out data in bits per dimension",
            direction="lower",
            unit="bits/dim",
        ),
        MetricSpec(
            name="nll_bpb",
            factory="arbench_plugins.metrics.likelihood:BitsPerByte",
            description="Negative log-likelihood of held-out text in bits per UTF-8 byte "
                        "(compares across tokenizers)",
            direction="lower",
            unit="bits/byte",
        ),
        MetricSpec(
            name="nll_nats",
            factory="arbench_plugins.metrics.likelihood:NatsPerExample",
            description="Negative log-likelihood of held-out points in nats per example (2-D)",
            direction="lower",
            unit="nats",
        ),
        MetricSpec(
            name="sample_nll_bpd",
            factory="arbench_plugins.metrics.likelihood:BitsPerDim",
            description="Model NLL of the sampler's own samples in bits/dim (typicality)",
            direction="lower",
            unit="bits/dim",
        ),
        MetricSpec(
            name="snr_db",
            factory="arbench_plugins.metrics.signal:SNR",
            description="Signal-to-noise ratio 10 log10(|x|^2 / |x - x_hat|^2), as in PnF",
            direction="higher",
            unit="dB",
        ),
        MetricSpec(
            name="psnr_db",
            factory="arbench_plugins.metrics.signal:PSNR",
            description="Peak signal-to-noise ratio 10 log10(range^2 / MSE), range 2 on [-1, 1]",
            direction="higher",
            unit="dB",
        ),
        MetricSpec(
            name="mse",
            factory="arbench_plugins.metrics.signal:MSE",
            description="Mean squared error in data units ([-1, 1]; one of L levels = 2/(L-1))",
            direction="lower",
            unit="data units²",
        ),
        MetricSpec(
            name="si_sdr_db",
            factory="arbench_plugins.metrics.signal:SISDR",
            description="Scale-invariant SDR (Le Roux et al. 2019) of zero-mean signals",
            direction="higher",
            unit="dB",
        ),
        MetricSpec(
            name="sdr_db",
            factory="arbench_plugins.metrics.signal:BSSEvalSDR",
            description="Classic BSS-eval SDR (512-tap filter, mir_eval) of separated sources",
            direction="higher",
            unit="dB",
        ),
        MetricSpec(
            name="fid",
            factory="arbench_plugins.metrics.quality:FID",
            description="Frechet distance of samples to the test split, digits-classifier features",
            direction="lower",
            unit="digits-classifier",
        ),
        MetricSpec(
            name="inception_score",
            factory="arbench_plugins.metrics.quality:InceptionScore",
            description="Inception Score (one split) of the digits classifier's class posteriors",
            direction="higher",
            unit="digits-classifier",
        ),
        MetricSpec(
            name="fid_inception",
            factory="arbench_plugins.metrics.quality:InceptionFID",
            description="FID in the FID Inception-V3's pool3 features (pytorch-fid's weights "
                        "from a local file)",
            direction="lower",
            unit="inception-v3 pool3",
        ),
        MetricSpec(
            name="is_inception",
            factory="arbench_plugins.metrics.quality:InceptionInceptionScore",
            description="Inception Score (one split) in the FID Inception-V3's 1008 classes "
                        "(local weights)",
            direction="higher",
            unit="inception-v3",
        ),
    ]
