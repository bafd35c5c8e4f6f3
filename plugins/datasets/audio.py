"""Embedded audio: rendered piano and synthesised speech clips, alone and as a pair.

The PnF audio tasks (super-resolution, source separation, inpainting) need two
sources that differ the way piano and voice do, offline and identical on every
machine. Both are recordings shipped in ``audio_data/``, rendered once by
`arbench_plugins.datasets.render_audio` from pip-installable parts (its
docstring and ``audio_data/manifest.json`` give the recipe, the versions and
the licences):

* piano: music21-corpus scores (Bach, Haydn, Mozart, Beethoven) played on the
  TimGM6mb acoustic grand piano by the TinySoundFont synthesiser;
* voice: English sentences spoken by eSpeak NG in many accents and voices.

Each source has 8 s files per split (18 train, 6 validation, 6 test; scores and
sentences never cross splits) at 8000 Hz. A split's clips are the
non-overlapping, non-silent `clip_length` windows of its files in a seeded
order; each clip is scaled to peak 0.45, so the sum of the two sources stays
inside [-1, 1], and quantised to 256 levels: ``level = round((x + 1) / 2 * 255)``
clipped to 0..255, level k standing for ``-1 + 2 k / 255`` (models use
``torch.linspace(-1, 1, 256)``). The synthetic sources of earlier versions are
the `tones` dataset.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from arbench import Dataset, Param

SAMPLE_RATE = 8000
PEAK = 0.45
NUM_LEVELS = 256
SILENCE_PEAK = 1e-3
DATA_DIR = Path(__file__).with_name("audio_data")


def quantize(x: np.ndarray, peak: float = PEAK) -> np.ndarray:
    """Scale each clip (last axis) to `peak` and quantise it to int64 levels 0..255."""
    x = x * (peak / np.maximum(np.abs(x).max(axis=-1, keepdims=True), 1e-12))
    levels = np.round((x + 1) / 2 * (NUM_LEVELS - 1))
    return np.clip(levels, 0, NUM_LEVELS - 1).astype(np.int64)


def file_clips(path: Path, sample_rate: int, clip_length: int) -> np.ndarray:
    """The non-silent clips ``(k, clip_length)`` of one audio file, mono, at `sample_rate`."""
    import soundfile
    from scipy.signal import resample_poly

    try:
        audio, rate = soundfile.read(path, dtype="float64", always_2d=True)
    except soundfile.LibsndfileError as error:
        raise ValueError(f"cannot read {path}: {error}") from error
    if not np.isfinite(audio).all():  # a float WAV can hold them; no level means NaN
        raise ValueError(f"{path} holds {int((~np.isfinite(audio)).sum())} NaN or infinite "
                         "sample(s); repair or remove the file")
    mono = audio.mean(axis=1)
    if rate != sample_rate:
        ratio = Fraction(sample_rate, rate).limit_denominator(1000)
        mono = resample_poly(mono, ratio.numerator, ratio.denominator)
    count = len(mono) // clip_length
    clips = mono[: count * clip_length].reshape(count, clip_length)
    result: np.ndarray = clips[np.abs(clips).max(axis=1) >= SILENCE_PEAK]
    return result


@cache
def _recorded_clips(source: str, split: str, clip_length: int, seed: int) -> torch.Tensor:
    """Every clip of one source's split, quantised, in the order of `seed`."""
    files = sorted((DATA_DIR / source / split).glob("*.flac"))
    if not files:
        raise FileNotFoundError(
            f"the embedded {source} audio is missing from {DATA_DIR / source / split}; "
            f"reinstall arbench or render it: python -m arbench_plugins.datasets.render_audio")
    clips = np.concatenate([file_clips(path, SAMPLE_RATE, clip_length) for path in files])
    order = np.random.default_rng(seed).permutation(len(clips))
    return torch.from_numpy(quantize(clips[order]))


class _Recorded(Dataset):
    """Clips ``(N, clip_length)`` of one embedded source, levels 0..255 at 8 kHz."""

    modality = "audio"
    num_levels = NUM_LEVELS
    sample_rate = SAMPLE_RATE
    _source: ClassVar[str]

    class Params(Dataset.Params):
        clip_length: int = Param(2048, "samples per clip", ge=2)
        n_train: int = Param(480, "train clips", ge=1)
        n_validation: int = Param(32, "validation clips", ge=1)
        n_test: int = Param(32, "test clips", ge=1)
        seed: int = Param(0, "seed of the order clips are drawn in", ge=0)

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.shape = (self.params.clip_length,)

    def _split(self, source: str, split: str) -> torch.Tensor:
        self.check_split(split)
        p = self.params
        clips = _recorded_clips(source, split, p.clip_length, p.seed)
        wanted = {"train": p.n_train, "validation": p.n_validation, "test": p.n_test}[split]
        if wanted > len(clips):
            raise ValueError(
                f"the embedded {source} {split} split has {len(clips)} clips of "
                f"{p.clip_length} samples, not {wanted}: lower n_{split} or clip_length")
        return clips[:wanted]

    def load(self, split: str) -> torch.Tensor:
        return self._split(self._source, split).clone()


class Piano(_Recorded):
    """Piano: classical scores rendered by a sampled-instrument synthesiser."""

    name = "piano"
    _source = "piano"


class Voice(_Recorded):
    """Speech: English sentences from eSpeak NG in many voices."""

    name = "voice"
    _source = "voice"


class PianoVoice(_Recorded):
    """Clip i of piano and clip i of voice stacked on axis 1: ``(N, 2, clip_length)``."""

    name = "pianovoice"
    sources = ("piano", "voice")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.shape = (len(self.sources), self.params.clip_length)

    def load(self, split: str) -> torch.Tensor:
        return torch.stack([self._split(source, split) for source in self.sources], dim=1)

    def source(self, name: str) -> Dataset:
        if name not in self.sources:
            raise ValueError(f"pianovoice has sources {list(self.sources)}, not '{name}'")
        single = {"piano": Piano, "voice": Voice}[name](**self.params.model_dump())
        single.name = name
        return single
