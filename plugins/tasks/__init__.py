"""Built-in tasks."""

from arbench import TableLayout, TaskSpec, hookimpl


@hookimpl
def arbench_tasks() -> list[TaskSpec]:
    """The built-in tasks, their default datasets, baselines, reference samplers and table
    layouts."""
    return [
        TaskSpec(
            name="density",
            factory="arbench_plugins.tasks.density:Density",
            description="Test-set NLL in bits/dim under the sampler's generative process",
            modalities=frozenset({"image", "audio", "text", "points"}),
            default_datasets=("digits",),
            # NLL vs steps (ARDM's table): one column per NFE, best per column in bold
            table=TableLayout(rows=("dataset", "model", "sampler", "variant"), columns=("nfe",),
                              metrics=("nll_bpd",),
                              compete=("model", "sampler", "variant", "budget")),
            # 2-D points as the smoothing paper prints them: datasets x models, nats
            modality_tables={"points": TableLayout(
                rows=("dataset",), columns=("model", "variant"), metrics=("nll_nats",),
                compete=("model", "sampler", "variant", "budget", "nfe"),
                references=("true-density",))},
            figures=("density-plots",),
            reference="ancestral",
        ),
        TaskSpec(
            name="unconditional",
            factory="arbench_plugins.tasks.unconditional:Unconditional",
            description="Draw N samples; FID/IS on digits, NLL under the model, ms per sample",
            modalities=frozenset({"image", "audio", "text"}),
            default_datasets=("digits",),
            baselines=("ancestral",),
            table=TableLayout(rows=("dataset", "model", "sampler", "nfe")),
            reference="ancestral",
        ),
        TaskSpec(
            name="continuation",
            factory="arbench_plugins.tasks.continuation:Continuation",
            description="Continue each prompt by max_new_tokens at batch 1 (Spec-Bench); "
                        "NLL of the continuations, speed-up per category",
            modalities=frozenset({"text"}),
            default_datasets=("prompts",),
            baselines=("ancestral",),
            # a row per category of the prompts file (the dataset's variants) and all
            table=TableLayout(rows=("dataset", "variant", "model", "sampler")),
            reference="ancestral",
        ),
        TaskSpec(
            name="reconstruction",
            factory="arbench_plugins.tasks.reconstruction:Reconstruction",
            description="Decode test images from their first k codes (k = budget); MSE, PSNR",
            modalities=frozenset({"image"}),
            default_datasets=("digits",),
            # error vs code length, as the anytime paper plots it: one column per budget
            table=TableLayout(rows=("dataset", "model", "sampler", "metric"),
                              columns=("budget",), compete=("model", "sampler")),
        ),
        TaskSpec(
            name="superres",
            factory="arbench_plugins.tasks.superres:SuperResolution",
            description="Recover every sample from every r-th one; SNR and SI-SDR in dB",
            modalities=frozenset({"audio", "image"}),
            default_datasets=("piano", "voice"),
            baselines=("spline",),
            sweep={"audio": {"ratio": (4, 8, 16)}, "image": {"ratio": (2,)}},
            table=TableLayout(rows=("variant",), columns=("dataset", "sampler"),
                              metrics=("snr_db",)),
            reference="spline",
        ),
        TaskSpec(
            name="inpainting",
            factory="arbench_plugins.tasks.inpainting:Inpainting",
            description="Fill an audio gap or an image's centre patch; SNR of the hidden part",
            modalities=frozenset({"audio", "image"}),
            default_datasets=("piano", "digits"),
            baselines=("spline",),
            table=TableLayout(rows=("dataset",), columns=("sampler",), metrics=("snr_db/hidden",)),
            reference="spline",
        ),
        TaskSpec(
            name="separation",
            factory="arbench_plugins.tasks.separation:Separation",
            description="Split a mixture into its sources; SI-SDR per source and BSS-eval SDR",
            modalities=frozenset({"audio", "image"}),
            default_datasets=("pianovoice", "digit-groups"),
            baselines=("mixture",),
            table=TableLayout(rows=("dataset", "sampler", "nfe")),
            reference="mixture",
        ),
        TaskSpec(
            name="denoising",
            factory="arbench_plugins.tasks.denoising:Denoising",
            description="Recover test images from x + sigma * noise (sigma 0.3); PSNR in dB",
            modalities=frozenset({"image"}),
            default_datasets=("digits",),
            baselines=("noisy-input",),
            table=TableLayout(rows=("dataset", "model", "sampler", "nfe")),
            reference="noisy-input",
        ),
    ]
