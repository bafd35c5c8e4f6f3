"""`tones`: synthetic piano-like and voice-like clips, synthesised with numpy from a seed.

The embedded audio before it was rendered from real scores and a speech
synthesiser (`arbench_plugins.datasets.audio`); kept for unit tests that need
audio with known structure and no files:

* ``source=piano``: 1-3 note events at random onsets (the first in the opening
  fifth of the clip), each a single note or a 2-3 note chord with f0 in MIDI
  40-76 (82-659 Hz). A note (`piano_note`) sums partials f_n = n f0 sqrt(1 + B n^2)
  with small inharmonicity B (5e-5 .. 3e-4) and amplitudes n^-p, starts with a
  0.5 ms attack and decays exponentially, partial n with time constant
  tau / (1 + 0.5 (n - 1)), so higher partials die first.
* ``source=voice``: a band-limited sawtooth (partials 1/k) whose pitch glides
  within 100-300 Hz, with 5-6 Hz vibrato, filtered by a cascade of three
  resonators whose centre frequencies glide between 2-3 vowel formant targets,
  with 0-2 pauses.

Clips are 8000 Hz, quantised as the embedded audio (`audio.quantize`). Clip i of
a split depends only on (seed, source, split, i): a smaller n_train gives a
prefix of a larger one, and train, validation and test never share a clip.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

import numpy as np
import torch

from arbench import Dataset, Param
from arbench_plugins.datasets.audio import NUM_LEVELS, SAMPLE_RATE, quantize

_MAX_PARTIALS = 24
_ATTACK_SAMPLES = 4  # 0.5 ms at 8 kHz
_CHORDS = ((0, 4, 7), (0, 3, 7), (0, 4), (0, 3), (0, 5), (0, 7))  # semitones above the root
# (F1, F2, F3) in Hz of /i/, /e/, /a/, /o/, /u/ (Peterson & Barney, adult male).
_VOWELS = np.array([
    [270, 2290, 3010], [530, 1840, 2480], [730, 1090, 2440], [570, 840, 2410], [300, 870, 2240],
])
_BANDWIDTHS = np.array([70.0, 100.0, 150.0])  # Hz, per formant
_SPLIT_IDS = {"train": 0, "test": 1, "validation": 2}
_SOURCE_IDS = {"piano": 0, "voice": 1}


def piano_note(
    f0: float,
    length: int,
    sample_rate: int = SAMPLE_RATE,
    *,
    inharmonicity: float = 1e-4,
    decay: float = 0.6,
    rolloff: float = 1.0,
    onset: int = 0,
) -> np.ndarray:
    """One unnormalised piano-like note, `length` samples, struck at sample `onset`.

    Partial n (up to 24, below 0.95 Nyquist) has frequency n f0 sqrt(1 + B n^2)
    with B = `inharmonicity`, amplitude n^-`rolloff` and decay time
    `decay` / (1 + 0.5 (n - 1)) seconds.
    """
    n = np.arange(1, _MAX_PARTIALS + 1)
    freqs = n * f0 * np.sqrt(1 + inharmonicity * n**2)
    n, freqs = n[freqs < 0.95 * sample_rate / 2], freqs[freqs < 0.95 * sample_rate / 2]
    t = np.arange(length - onset) / sample_rate
    taus = decay / (1 + 0.5 * (n - 1))
    partials = np.exp(-np.outer(1 / taus, t)) * np.sin(2 * np.pi * np.outer(freqs, t))
    attack = np.minimum(1.0, np.arange(1, len(t) + 1) / _ATTACK_SAMPLES)
    note = np.zeros(length)
    note[onset:] = (n.astype(float) ** -rolloff) @ partials * attack
    return note


def _piano_clip(rng: np.random.Generator, length: int) -> np.ndarray:
    clip = np.zeros(length)
    for event in range(rng.integers(1, 4)):
        onset = int(rng.uniform(0, 0.2 if event == 0 else 0.85) * length)
        chord = _CHORDS[rng.integers(len(_CHORDS))] if rng.random() < 0.35 else (0,)
        root = rng.integers(40, 77 - chord[-1])
        velocity = rng.uniform(0.3, 1.0)
        for interval in chord:
            f0 = 440.0 * 2 ** ((root + interval - 69) / 12)
            clip += velocity * piano_note(
                f0, length, inharmonicity=rng.uniform(5e-5, 3e-4), decay=rng.uniform(0.2, 1.0),
                rolloff=rng.uniform(0.8, 1.6), onset=onset,
            )
    return clip


def _ramp(t: np.ndarray, start: float, stop: float) -> np.ndarray:
    """Raised-cosine step from 0 at `start` to 1 at `stop`."""
    u = np.clip((t - start) / max(stop - start, 1e-9), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * u)


def _voice_parts(
    rng: np.random.Generator, length: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A gated glottal source (length,), formant tracks (3, length) and bandwidths (3,) in Hz."""
    t = np.arange(length) / SAMPLE_RATE
    duration = length / SAMPLE_RATE
    low, high = 12 * np.log2(100.0), 12 * np.log2(300.0)  # semitones above 1 Hz
    start = rng.uniform(low, high)
    end = np.clip(start + rng.uniform(-4, 4), low, high)
    glide = _ramp(t, *np.sort(rng.uniform(0, duration, 2)))
    depth, rate = rng.uniform(0.2, 0.5), rng.uniform(5, 6)
    vibrato = depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
    f0 = 2 ** ((start + (end - start) * glide + vibrato) / 12)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE + rng.uniform(0, 2 * np.pi)
    cutoff = 0.95 * SAMPLE_RATE / 2
    k = np.arange(1, int(cutoff / f0.min()) + 1)[:, None]
    gains = np.clip((cutoff - k * f0) / 200.0, 0.0, 1.0) / k  # partials fade out below Nyquist
    source = (gains * np.sin(k * phase)).sum(axis=0)

    n_pauses = rng.choice(3, p=[0.3, 0.5, 0.2])
    # Pauses and fades shrink with clips shorter than the default 256 ms, so that a pause
    # never silences a whole short clip (a silent reference has no SNR).
    shrink = min(1.0, duration / 0.256)
    for segment in range(n_pauses):  # pause j sits in the j-th of n equal stretches
        centre = (segment + rng.random()) * duration / n_pauses
        half, fade = shrink * rng.uniform(0.01, 0.025), shrink * rng.uniform(0.015, 0.03)
        inside = _ramp(t, centre - half - fade, centre - half) * (
            1 - _ramp(t, centre + half, centre + half + fade))
        source *= 1 - inside

    vowels = _VOWELS[rng.choice(len(_VOWELS), rng.integers(2, 4), replace=False)]
    log_tracks = np.repeat(np.log(vowels[0])[:, None], length, axis=1)
    for previous, vowel, centre in zip(
        vowels[:-1], vowels[1:], np.sort(rng.uniform(0, duration, len(vowels) - 1)), strict=True
    ):
        width = rng.uniform(0.03, 0.08)
        step = _ramp(t, centre - width / 2, centre + width / 2)
        log_tracks += np.log(vowel / previous)[:, None] * step
    tracks = np.exp(log_tracks) * rng.uniform(1.0, 1.2)  # shorter vocal tracts: higher formants
    return source, tracks, _BANDWIDTHS * rng.uniform(0.8, 1.2, 3)


def _formant_cascade(source: np.ndarray, tracks: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    """Filter sources (N, T) through cascaded unit-DC-gain resonators, tracks (N, F, T) in Hz."""
    r = np.exp(-np.pi * bandwidths / SAMPLE_RATE)[:, :, None]
    a1 = 2 * r * np.cos(2 * np.pi * tracks / SAMPLE_RATE)
    a2 = np.broadcast_to(-(r**2), a1.shape)
    gain = 1 - a1 - a2
    a1, a2, gain = (np.ascontiguousarray(c.transpose(2, 1, 0)) for c in (a1, a2, gain))
    y1 = np.zeros(tracks.shape[:2][::-1])  # (F, N)
    y2 = np.zeros_like(y1)
    out = np.empty(source.shape[::-1])  # (T, N)
    for step, x in enumerate(source.T):
        for f in range(tracks.shape[1]):
            y = gain[step, f] * x + a1[step, f] * y1[f] + a2[step, f] * y2[f]
            y2[f] = y1[f]
            y1[f] = y
            x = y
        out[step] = x
    return out.T


@cache
def _clips(source: str, split: str, clip_length: int, n: int, seed: int) -> torch.Tensor:
    rngs = [np.random.default_rng([seed, _SOURCE_IDS[source], _SPLIT_IDS[split], i])
            for i in range(n)]
    if source == "piano":
        signals = np.stack([_piano_clip(rng, clip_length) for rng in rngs])
    else:
        voices = [_voice_parts(rng, clip_length) for rng in rngs]
        signals = _formant_cascade(*(np.stack(part) for part in zip(*voices, strict=True)))
    return torch.from_numpy(quantize(signals))


class Tones(Dataset):
    """Synthetic clips ``(N, clip_length)`` of one source, levels 0..255 at 8 kHz."""

    name = "tones"
    modality = "audio"
    num_levels = NUM_LEVELS
    sample_rate = SAMPLE_RATE
    class Params(Dataset.Params):
        source: Literal["piano", "voice"] = Param("piano", "which synthetic source")
        clip_length: int = Param(2048, "samples per clip", ge=2)
        n_train: int = Param(512, "train clips", ge=1)
        n_validation: int = Param(32, "validation clips", ge=1)
        n_test: int = Param(32, "test clips", ge=1)
        seed: int = Param(0, "seed of the synthesis", ge=0)

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.shape = (self.params.clip_length,)

    def load(self, split: str) -> torch.Tensor:
        self.check_split(split)
        p = self.params
        wanted = {"train": p.n_train, "validation": p.n_validation, "test": p.n_test}[split]
        return _clips(p.source, split, p.clip_length, wanted, p.seed).clone()
