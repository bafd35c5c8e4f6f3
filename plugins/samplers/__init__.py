"""Built-in samplers."""

from arbench import SamplerSpec, hookimpl


@hookimpl
def arbench_samplers() -> list[SamplerSpec]:
    """The built-in samplers, what each needs of a model and which tasks it serves."""
    return [
        SamplerSpec(
            name="ancestral",
            factory="arbench_plugins.samplers.ancestral:Ancestral",
            description="Exact sequential sampling in the model's order: D network calls",
            requires=frozenset({"causal-conditionals"}),
            serves=frozenset({"density", "unconditional", "continuation"}),
        ),
        SamplerSpec(
            name="jacobi",
            factory="arbench_plugins.samplers.jacobi:Jacobi",
            description="Jacobi fixed-point decoding: ancestral's exact samples, every "
                        "position per call, at most D calls",
            requires=frozenset({"causal-logits"}),
            serves=frozenset({"density", "unconditional", "superres", "inpainting"}),
        ),
        SamplerSpec(
            name="speculative",
            factory="arbench_plugins.samplers.speculative:Speculative",
            description="Speculative sampling: a draft proposes k values, one call verifies "
                        "them; the model's distribution exactly",
            requires=frozenset({"causal-logits"}),
            serves=frozenset({"density", "unconditional", "superres", "inpainting",
                              "continuation"}),
        ),
        SamplerSpec(
            name="speculative-jacobi",
            factory="arbench_plugins.samplers.speculative_jacobi:SpeculativeJacobi",
            description="Speculative Jacobi decoding: Jacobi iterates accepted by the "
                        "speculative rule, no draft; the model's distribution exactly",
            requires=frozenset({"causal-logits"}),
            serves=frozenset({"density", "unconditional", "superres", "inpainting"}),
        ),
        SamplerSpec(
            name="hf-generate",
            factory="arbench_plugins.samplers.hf_generate:HFGenerate",
            description="Hugging Face's generate, plain sampling (the field's reference "
                        "implementation); claims the model's distribution",
            requires=frozenset({"transformers-generate"}),
            serves=frozenset({"density", "unconditional", "continuation"}),
        ),
        SamplerSpec(
            name="hf-assisted",
            factory="arbench_plugins.samplers.hf_generate:HFAssisted",
            description="Hugging Face's assisted generation with a draft folder, exactly k "
                        "tokens per call; claims the model's distribution",
            requires=frozenset({"transformers-generate"}),
            serves=frozenset({"density", "unconditional", "continuation"}),
        ),
        SamplerSpec(
            name="hf-prompt-lookup",
            factory="arbench_plugins.samplers.hf_generate:HFPromptLookup",
            description="Hugging Face's prompt-lookup decoding (n-gram drafts from the text "
                        "so far); claims the model's distribution",
            requires=frozenset({"transformers-generate"}),
            serves=frozenset({"density", "unconditional", "continuation"}),
        ),
        SamplerSpec(
            name="pnf",
            factory="arbench_plugins.samplers.pnf:PnF",
            description="Annealed Langevin dynamics on the smoothed model, all positions at once",
            requires=frozenset({"noise-conditioned"}),
            serves=frozenset({"superres", "inpainting", "separation", "unconditional"}),
        ),
        SamplerSpec(
            name="spline",
            factory="arbench_plugins.samplers.baselines:Spline",
            description="Cubic-spline interpolation of the observed values: no model, 0 NFE",
            requires=frozenset(),
            serves=frozenset({"superres", "inpainting"}),
        ),
        SamplerSpec(
            name="mixture",
            factory="arbench_plugins.samplers.baselines:MixtureBaseline",
            description="Every source estimate is the mixture (input SI-SDR reference): 0 NFE",
            requires=frozenset(),
            serves=frozenset({"separation"}),
        ),
        SamplerSpec(
            name="noisy-input",
            factory="arbench_plugins.samplers.baselines:NoisyInput",
            description="The noisy observation as the estimate (input PSNR reference): 0 NFE",
            requires=frozenset(),
            serves=frozenset({"denoising"}),
        ),
        SamplerSpec(
            name="ardm",
            factory="arbench_plugins.samplers.ardm:ARDMSampler",
            description="Order-agnostic ARDM: any order; N network calls split by DP or naively",
            requires=frozenset({"order-agnostic"}),
            serves=frozenset({"density", "inpainting", "superres", "unconditional"}),
            sweep={"policy": ("dp", "naive")},
        ),
        SamplerSpec(
            name="ardm-upscale",
            factory="arbench_plugins.samplers.ardm:ARDMSampler",
            description="Upscale ARDM: stages of coarse-to-fine digits, the budget split over them",
            requires=frozenset({"upscale-stages"}),
            serves=frozenset({"density", "inpainting", "superres", "unconditional"}),
            sweep={"policy": ("dp", "naive")},
        ),
        SamplerSpec(
            name="anytime",
            factory="arbench_plugins.samplers.anytime:Anytime",
            description="Anytime sampling: the first k codes from the prior (k calls), rest zeroed",
            requires=frozenset({"ordered-codes"}),
            serves=frozenset({"unconditional", "reconstruction"}),
        ),
        SamplerSpec(
            name="smoothing-single-step",
            factory="arbench_plugins.samplers.distribution_smoothing:SingleStep",
            description="x~ from p(x~), then x~ + sigma^2 grad log p(x~): D + 1 calls",
            requires=frozenset({"smoothed-pair"}),
            serves=frozenset({"unconditional", "denoising"}),
        ),
        SamplerSpec(
            name="smoothing-two-step",
            factory="arbench_plugins.samplers.distribution_smoothing:TwoStep",
            description="x~ from p(x~), then x from p(x | x~): 2D calls; NLL by the ELBO",
            requires=frozenset({"smoothed-pair"}),
            serves=frozenset({"density", "unconditional", "denoising"}),
        ),
    ]
