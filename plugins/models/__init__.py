"""Built-in models."""

from arbench import ModelSpec, hookimpl

POINTS = ("rings", "olympics", "checkerboard")
FILE_IMAGES = frozenset({"cifar10", "mnist", "imagefolder"})
CIFAR10_GROUPS = frozenset({"cifar10-groups", "cifar10-machines", "cifar10-animals"})


@hookimpl
def arbench_models() -> list[ModelSpec]:
    """The built-in model families and the datasets each has checkpoints for."""
    return [
        ModelSpec(
            name="pixelcnn",
            factory="arbench_plugins.models.pixelcnn.model:PixelCNN",
            description="Masked-convolution PixelCNN with a categorical output per pixel",
            datasets=frozenset({"digits"}),
        ),
        ModelSpec(
            name="wavenet",
            factory="arbench_plugins.models.wavenet.model:WaveNet",
            description="Dilated causal-conv WaveNet conditioned on the noise level (PnF audio)",
            datasets=frozenset({"piano", "voice", "pianovoice", "tones", "wavdir"}),
        ),
        ModelSpec(
            name="pixelcnn-smooth",
            factory="arbench_plugins.models.pixelcnn.noise_conditioned:NoiseConditionedPixelCNN",
            description="PixelCNN on noisy continuous pixels, conditioned on the noise level (PnF)",
            datasets=frozenset({"digits", "digits-low", "digits-high", "digit-groups"}),
        ),
        ModelSpec(
            name="pixelcnn++",
            factory="arbench_plugins.models.pixelcnnpp.model:PixelCNNPP",
            description="PixelCNN++ (discretized logistic mixture over RGB) conditioned on "
                        "the noise level: exact bits/dim at sigma 0, PnF's prior above",
            datasets=FILE_IMAGES | CIFAR10_GROUPS,
        ),
        ModelSpec(
            name="pnf-wavenet",
            factory="arbench_plugins.models.wavenet.released:PnFWaveNet",
            description="The PnF authors' released WaveNets, one per noise level "
                        "(`arbench import pnf-wavenet DIR --out BANK`)",
            datasets=frozenset({"wavdir"}),
            ships_weights=False,
        ),
        ModelSpec(
            name="pnf-pixelcnn++",
            factory="arbench_plugins.models.pixelcnnpp.released:PnFPixelCNNPP",
            description="The PnF authors' released CIFAR-10 PixelCNN++s, one per noise level "
                        "(`arbench import pnf-pixelcnn++ DIR --out BANK`)",
            datasets=frozenset({"cifar10"}),
            ships_weights=False,
        ),
        ModelSpec(
            name="transformer",
            factory="arbench_plugins.models.transformer.model:Transformer",
            description="Causal decoder-only transformer with a key/value cache over any "
                        "discrete raster data",
            datasets=frozenset({"digits", "text", "text8"}),
        ),
        ModelSpec(
            name="oa-ardm",
            factory="arbench_plugins.models.ardm.model:ARDM",
            description="Order-agnostic ARDM: a transformer over positions with a mask input",
            datasets=frozenset({"digits", "text", "text8"}) | FILE_IMAGES,
        ),
        ModelSpec(
            name="upscale-ardm",
            factory="arbench_plugins.models.ardm.model:UpscaleARDM",
            description="Upscale ARDM: stages of base-2 digits, each conditioned on the coarser",
            datasets=frozenset({"digits"}) | FILE_IMAGES,
        ),
        ModelSpec(
            name="digits-classifier",
            factory="arbench_plugins.models.classifier.model:DigitsClassifier",
            description="Small CNN digit classifier: the feature space of digits FID and IS",
            datasets=frozenset({"digits"}),
        ),
        ModelSpec(
            name="ordered-vqvae",
            factory="arbench_plugins.models.vqvae.model:OrderedVQVAE",
            description="VQ-VAE, one code per latent channel, trained with random truncation; "
                        "transformer prior",
            datasets=frozenset({"digits"}) | FILE_IMAGES,
        ),
        ModelSpec(
            name="vqvae",
            factory="arbench_plugins.models.vqvae.model:UnorderedVQVAE",
            description="The unordered control: the same VQ-VAE and prior, trained with all codes",
            datasets=frozenset({"digits"}) | FILE_IMAGES,
        ),
        ModelSpec(
            name="made-mol",
            factory="arbench_plugins.models.made.model:MADEMoL",
            description="MADE with a mixture of logistics per dimension, fitted to the clean "
                        "points; 3 and 6 mixtures swept by default",
            datasets=frozenset(POINTS),
            sweep={"mixtures": (3, 6)},
        ),
        ModelSpec(
            name="smoothed-made-mol",
            factory="arbench_plugins.models.made.model:SmoothedMADEMoL",
            description="Distribution smoothing: p(x~) on noised points and p(x | x~), one "
                        "MADE-MoL over [x~, x] (3 mixtures, sigma 0.2)",
            datasets=frozenset(POINTS),
        ),
        ModelSpec(
            name="smoothed-pixelcnn",
            factory="arbench_plugins.models.pixelcnn.smoothed_pair:SmoothedPixelCNN",
            description="Distribution smoothing on digits: a PixelCNN on smoothed digits "
                        "(sigma 0.3) and a reverse PixelCNN p(x | x~)",
            datasets=frozenset({"digits"}),
        ),
        ModelSpec(
            name="smoothed-pixelcnn++",
            factory="arbench_plugins.models.pixelcnnpp.smoothed_pair:SmoothedPixelCNNPP",
            description="Distribution smoothing on CIFAR-10-like images: PixelCNN++ p(x~) "
                        "(sigma 0.3) and p(x | x~)",
            datasets=FILE_IMAGES,
        ),
        ModelSpec(
            name="true-density",
            factory="arbench_plugins.models.made.model:TrueDensity",
            description="The dataset's closed-form density: the NLL floor, scored, never trained",
            datasets=frozenset(POINTS),
            reference=True,
        ),
    ]
