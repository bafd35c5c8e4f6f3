"""The user's own recordings: WAV/FLAC files under a folder, cut into clips.

Lets the audio tasks run on real audio in the representation of the embedded
datasets (`arbench_plugins.datasets.audio`): mono mixdown, resampled to
`sample_rate` with scipy's polyphase filter, non-overlapping clips of
`clip_length` samples, near-silent clips (peak < 1e-3) dropped, each clip
scaled to `peak` (0.45) and quantised to 256 levels.

The PnF originals' format is ``sample_rate=22050 clip_length=10240 peak=1.0``
with ``quantization=mulaw`` (super-resolution, inpainting: level k is the
mu-law code k, as nnmnkwii's ``mulaw_quantize``; `decode` expands values back
to the waveform, so SNR is measured on audio, as there) or ``linear``
(separation, where the mixture must be the sum of the sources).

The layout of `data_dir` decides the kind of dataset:

* audio files directly in it: one source, examples ``(clip_length,)``;
* subfolders holding audio (at any depth): one source per subfolder, sorted by
  name, examples ``(S, clip_length)`` pairing clip i of every source (N is the
  smallest source's count; the pairing is arbitrary, as in synthetic mixtures).
  Note that a nested single-source corpus (speaker/chapter/*.flac) is read this way too.

Per source, files are read in a seeded random order until `max_clips` clips,
the clips are shuffled with the same seed, the first
``max(1, round(test_fraction * N))`` form the test split, the next
``round(validation_fraction * N)`` the validation split, and the rest train. A source read alone
(`source(name)`) splits the same shuffled clips, so its test split contains
every test clip of that source in the multi-source dataset: a prior trained on
a source never sees a test mixture's parts. Clips are read once per process.
"""

from __future__ import annotations

import math
import warnings
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from arbench import Dataset, Param, data_fingerprint_of
from arbench_plugins.datasets.audio import NUM_LEVELS, file_clips, quantize

AUDIO_EXTENSIONS = (".wav", ".flac")


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def _audio_files(folder: Path) -> list[Path]:
    """Audio files under `folder` at any depth, sorted, skipping hidden files and folders."""
    return sorted(
        path for path in folder.rglob("*")
        if path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file() and _visible(path, folder)
    )


def mulaw_codes(x: np.ndarray, peak: float, mu: int = NUM_LEVELS - 1) -> np.ndarray:
    """Each clip scaled to `peak`, mu-law companded and floored to codes 0..mu."""
    x = x * (peak / np.maximum(np.abs(x).max(axis=-1, keepdims=True), 1e-12))
    companded = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    result: np.ndarray = np.clip(np.floor((companded + 1) / 2 * mu), 0, mu).astype(np.int64)
    return result


def mulaw_expand(y: torch.Tensor, mu: int = NUM_LEVELS - 1) -> torch.Tensor:
    """Companded values -> the waveform; values past [-1, 1] (an estimate may overshoot)
    are clipped first, as the original clips its output."""
    y = y.clamp(-1, 1)
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu


@cache
def _source_clips(
    folder: Path, sample_rate: int, clip_length: int, seed: int, max_clips: int,
    quantization: str, peak: float, fingerprint: str,
) -> np.ndarray:
    """Up to `max_clips` quantised clips of one source folder, in seeded random order
    (`fingerprint`, of the folder's files, tells changed files apart)."""
    files = _audio_files(folder)
    rng = np.random.default_rng(seed)
    clips, total, unusable = [np.zeros((0, clip_length))], 0, []
    for index in rng.permutation(len(files)):
        if total >= max_clips:
            break
        try:
            clips.append(file_clips(files[index], sample_rate, clip_length))
        except ValueError as error:  # unreadable, or NaN samples: the other files still count
            unusable.append(str(error))
            continue
        total += len(clips[-1])
    if unusable:
        message = (f"wavdir: {len(unusable)} of the {len(files)} audio file(s) under {folder} "
                   f"cannot be used and are left out; first: {unusable[0]}")
        if len(unusable) == len(files):
            raise ValueError(message.replace(" and are left out", ""))
        warnings.warn(message, UserWarning, stacklevel=2)
    kept = np.concatenate(clips)[:max_clips]
    encode = mulaw_codes if quantization == "mulaw" else quantize
    return encode(kept[rng.permutation(len(kept))], peak)


def _checked_root(data_dir: str | Path | None) -> Path:
    if data_dir is None:
        raise ValueError(
            "wavdir needs a folder of audio files: pass --data-dir DIR or --set wavdir.data_dir=DIR"
        )
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"wavdir: data_dir {root} is not an existing folder; pass --data-dir DIR or "
            f"--set wavdir.data_dir=DIR with a folder of audio files"
        )
    if not _audio_files(root):
        raise FileNotFoundError(
            f"wavdir: no audio files ({', '.join(AUDIO_EXTENSIONS)}, searched recursively) "
            f"under {root}; add some or point data_dir at another folder"
        )
    return root


class WavDir(Dataset):
    """Clips of the audio under `data_dir`, levels 0..255; one source or one per subfolder."""

    name = "wavdir"
    modality = "audio"
    num_levels = NUM_LEVELS

    class Params(Dataset.Params):
        data_dir: str | None = Param(None, "folder of audio files (or one subfolder per "
                                     "source)")
        sample_rate: int = Param(8000, "rate clips are resampled to, in Hz", ge=1)
        clip_length: int = Param(2048, "samples per clip", ge=2)
        test_fraction: float = Param(0.2, "fraction of files held out for test", gt=0, lt=1)
        validation_fraction: float = Param(0.1, "fraction of files held out for validation",
                                           ge=0, lt=1)
        seed: int = Param(0, "seed of the split by file", ge=0)
        max_clips: int = Param(2000, "clips kept per split", ge=1)
        quantization: Literal["linear", "mulaw"] = Param(
            "linear", "levels equally spaced in amplitude, or mu-law codes (the PnF originals' "
            "super-resolution format)")
        peak: float = Param(0.45, "each clip is scaled to this peak before quantising", gt=0, le=1)

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        # each fraction's range is declared; together they must leave clips for train
        if self.params.test_fraction + self.params.validation_fraction >= 1:
            raise ValueError(f"wavdir: test_fraction + validation_fraction must be < 1 to "
                             f"leave clips for train, not {self.params.test_fraction} + "
                             f"{self.params.validation_fraction}")
        self.root = _checked_root(self.params.data_dir)
        self.sample_rate = self.params.sample_rate
        self.sources = self._find_sources()
        clip_length = self.params.clip_length
        self.shape = (len(self.sources), clip_length) if self.sources else (clip_length,)
        if self.sources and self.params.quantization == "mulaw":
            raise ValueError("wavdir: mu-law codes do not add, so a mixture of mu-law sources "
                             "is no constraint; separate with quantization=linear (as the PnF "
                             "originals do)")

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return mulaw_expand(x) if self.params.quantization == "mulaw" else x

    def _find_sources(self) -> tuple[str, ...]:
        """Names of the subfolders holding audio; () when the audio lies directly in root."""
        entries = [entry for entry in sorted(self.root.iterdir()) if _visible(entry, self.root)]
        sources = tuple(entry.name for entry in entries if entry.is_dir() and _audio_files(entry))
        if sources and any(
            entry.is_file() and entry.suffix.lower() in AUDIO_EXTENSIONS for entry in entries
        ):
            raise ValueError(
                f"wavdir: {self.root} has audio files both directly inside and in subfolders "
                f"{list(sources)}; put all of them in source subfolders (one per source) or "
                f"all directly in the folder (one source)"
            )
        return sources

    def load(self, split: str) -> torch.Tensor:
        self.check_split(split)
        p = self.params
        folders = [self.root / source for source in self.sources] or [self.root]
        per_source = [
            _source_clips(folder, self.sample_rate, p.clip_length, p.seed, p.max_clips,
                          p.quantization, p.peak, data_fingerprint_of(self, folder))
            for folder in folders
        ]
        counts = [len(clips) for clips in per_source]
        n = min(counts)
        n_test = max(1, round(p.test_fraction * n))
        n_validation = round(p.validation_fraction * n)
        if split == "validation" and n_validation < 1:
            raise ValueError(f"wavdir: validation_fraction={p.validation_fraction} of {n} "
                             f"clips leaves no validation clip; raise it")
        if n - n_test - n_validation < 1:
            raise ValueError(
                f"wavdir: {folders[counts.index(n)]} gives only {n} usable clip(s) of "
                f"{p.clip_length} samples at {self.sample_rate} Hz (near-silent clips dropped); "
                f"a split with test_fraction={p.test_fraction} and validation_fraction="
                f"{p.validation_fraction} needs at least one train clip: add audio or "
                f"lower clip_length"
            )
        clips = np.stack([c[:n] for c in per_source], axis=1) if self.sources else per_source[0]
        bounds = {"test": (0, n_test), "validation": (n_test, n_test + n_validation),
                  "train": (n_test + n_validation, n)}[split]
        return torch.tensor(clips[bounds[0]:bounds[1]])

    def source(self, name: str) -> Dataset:
        if name not in self.sources:
            raise ValueError(f"{self.name} has sources {list(self.sources)}, not '{name}'")
        single = _SourceFolder(**{**self.params.model_dump(), "data_dir": str(self.root / name)})
        single.name = f"wavdir-{name}"
        return single


class _SourceFolder(WavDir):
    """One source of a multi-source WavDir: all audio under its folder, whatever the nesting."""

    def _find_sources(self) -> tuple[str, ...]:
        return ()
