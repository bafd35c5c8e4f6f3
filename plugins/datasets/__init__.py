"""Built-in datasets."""

from arbench import DatasetSpec, hookimpl


@hookimpl
def arbench_datasets() -> list[DatasetSpec]:
    """The built-in datasets: the embedded defaults (digits, text, audio, 2-D points) and
    readers of the user's files."""
    return [
        DatasetSpec(
            name="digits",
            factory="arbench_plugins.datasets.digits:Digits",
            description="scikit-learn's 8x8 handwritten digits, 17 grey levels, fixed split",
        ),
        DatasetSpec(
            name="digits-low",
            factory="arbench_plugins.datasets.digits:DigitsLow",
            description="the digits 0-4 of the digits split (a separation source)",
        ),
        DatasetSpec(
            name="digits-high",
            factory="arbench_plugins.datasets.digits:DigitsHigh",
            description="the digits 5-9 of the digits split (a separation source)",
        ),
        DatasetSpec(
            name="digit-groups",
            factory="arbench_plugins.datasets.digits:DigitGroups",
            description="pairs of a 0-4 and a 5-9 digit, two sources for separation",
        ),
        DatasetSpec(
            name="cifar10-machines",
            factory="arbench_plugins.datasets.class_groups:Cifar10Machines",
            description="your CIFAR-10's airplanes, cars, ships and trucks (a separation "
                        "source)",
        ),
        DatasetSpec(
            name="cifar10-animals",
            factory="arbench_plugins.datasets.class_groups:Cifar10Animals",
            description="your CIFAR-10's six animal classes (a separation source)",
        ),
        DatasetSpec(
            name="cifar10-groups",
            factory="arbench_plugins.datasets.class_groups:Cifar10Groups",
            description="pairs of a CIFAR-10 machine and animal, two sources for separation "
                        "(PnF's image separation)",
        ),
        DatasetSpec(
            name="piano",
            factory="arbench_plugins.datasets.audio:Piano",
            description="piano: classical scores rendered by a SoundFont synthesiser, 8 kHz",
        ),
        DatasetSpec(
            name="voice",
            factory="arbench_plugins.datasets.audio:Voice",
            description="speech: English sentences from eSpeak NG in many voices, 8 kHz",
        ),
        DatasetSpec(
            name="pianovoice",
            factory="arbench_plugins.datasets.audio:PianoVoice",
            description="piano and voice clips paired as two sources, for separation",
        ),
        DatasetSpec(
            name="tones",
            factory="arbench_plugins.datasets.tones:Tones",
            description="synthetic piano-like or voice-like tones (source=piano|voice), for tests",
        ),
        DatasetSpec(
            name="wavdir",
            factory="arbench_plugins.datasets.wavdir:WavDir",
            description="your WAV/FLAC files (--data-dir); one source per subfolder if any",
        ),
        DatasetSpec(
            name="cifar10",
            factory="arbench_plugins.datasets.images:Cifar10",
            description="your CIFAR-10 python batches (--data-dir): 32x32 RGB, 256 levels, "
                        "45k/5k/10k split, class labels",
        ),
        DatasetSpec(
            name="mnist",
            factory="arbench_plugins.datasets.images:Mnist",
            description="your MNIST idx files (--data-dir): 28x28 grey, 256 levels, "
                        "54k/6k/10k split, class labels",
        ),
        DatasetSpec(
            name="imagefolder",
            factory="arbench_plugins.datasets.images:ImageFolder",
            description="your PNG/JPEG files (--data-dir, e.g. CelebA): centre crop, resize, "
                        "split fixed by file name",
        ),
        DatasetSpec(
            name="text",
            factory="arbench_plugins.datasets.text:Text",
            description="Python's help texts in the text8 alphabet, 64-character chunks",
        ),
        DatasetSpec(
            name="text8",
            factory="arbench_plugins.datasets.text:Text8",
            description="your text8 file (--data-dir), 90M/5M/5M split, 250-character chunks",
        ),
        DatasetSpec(
            name="prompts",
            factory="arbench_plugins.datasets.prompts:Prompts",
            description="your Spec-Bench question file (--data-file): prompts to continue, "
                        "a cell per category and all",
        ),
        DatasetSpec(
            name="rings",
            factory="arbench_plugins.datasets.points:Rings",
            description="2-D: one ring, radius N(1, 0.01^2), uniform angle; true density known",
        ),
        DatasetSpec(
            name="olympics",
            factory="arbench_plugins.datasets.points:Olympics",
            description="2-D: five such rings in the Olympic layout; true density known",
        ),
        DatasetSpec(
            name="checkerboard",
            factory="arbench_plugins.datasets.points:Checkerboard",
            description="2-D: uniform on the 8 dark squares of a 4x4 board on [-2, 2]^2",
        ),
    ]
