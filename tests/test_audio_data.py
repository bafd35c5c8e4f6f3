"""The embedded audio (piano, voice, pianovoice), the synthetic tones, and wavdir over files
written here."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from conftest import entry_point

from arbench import DatasetSpec
from arbench.plugin.registry import build_registry
from arbench_plugins.datasets.audio import DATA_DIR, Piano, PianoVoice, Voice
from arbench_plugins.datasets.tones import Tones, piano_note
from arbench_plugins.datasets.wavdir import WavDir

SMALL = {"clip_length": 2048, "n_train": 16, "n_test": 4}


def continuous(levels: torch.Tensor) -> np.ndarray:
    """Level k stands for -1 + 2k/255."""
    return -1 + 2 * levels.numpy() / 255


def test_registered_as_audio_datasets():
    registry = build_registry([entry_point("builtin-datasets", "arbench_plugins.datasets")])
    expected = {"piano": Piano, "voice": Voice, "pianovoice": PianoVoice, "tones": Tones,
                "wavdir": WavDir}
    for name, cls in expected.items():
        spec = registry.get(DatasetSpec, name)
        assert spec.data_modality() == "audio" and spec.load() is cls


@pytest.mark.parametrize("cls", [Piano, Voice])
def test_single_source_clips(cls):
    data = cls(**SMALL)
    train, test = data.load("train"), data.load("test")
    assert train.shape == (16, 2048) and test.shape == (4, 2048)
    assert data.shape == (2048,) and data.sample_rate == 8000 and data.num_levels == 256
    assert train.dtype == torch.long and int(train.min()) >= 0 and int(train.max()) <= 255
    peaks = np.abs(continuous(train)).max(axis=1)
    assert np.all(np.abs(peaks - 0.45) <= 1 / 255)
    assert torch.equal(train, cls(**SMALL).load("train"))  # same clips on every load
    assert not torch.equal(train, cls(**SMALL, seed=1).load("train"))  # another order
    assert torch.equal(train[:8], cls(**{**SMALL, "n_train": 8}).load("train"))
    validation = data.load("validation")  # clips of their own, for tuning
    assert validation.shape == (32, 2048)
    assert not any(torch.equal(v, x) for v in validation for x in (*train, *test))
    with pytest.raises(ValueError, match="splits"):
        data.load("valid")
    with pytest.raises(ValueError, match="clips of 2048 samples, not 5000: lower n_test"):
        cls(**{**SMALL, "n_test": 5000}).load("test")


def test_embedded_audio_matches_its_manifest():
    """Every shipped file is the one the recipe rendered, and the licences are stated."""
    manifest = json.loads((DATA_DIR / "manifest.json").read_text())
    listed = {entry["file"]: entry["sha256"] for entry in manifest["files"]}
    on_disk = {str(path.relative_to(DATA_DIR)) for path in DATA_DIR.glob("*/*/*.flac")}
    assert set(listed) == on_disk and len(on_disk) == 60
    for name, sha in listed.items():
        assert hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest() == sha, name
    assert manifest["sample_rate"] == 8000
    assert {"piano SoundFont", "speech synthesiser"} <= set(manifest["licences"])
    assert "tinysoundfont" in manifest["versions"] and "espeakng-loader" in manifest["versions"]


@pytest.mark.parametrize("source", ["piano", "voice"])
def test_tones_are_the_synthetic_sources(source):
    data = Tones(source=source, **SMALL)
    train, test = data.load("train"), data.load("test")
    assert train.shape == (16, 2048) and data.sample_rate == 8000
    assert torch.equal(train, Tones(source=source, **SMALL).load("train"))
    assert not torch.equal(train[:4], test)  # train and test come from different seeds
    assert torch.equal(train[:8], Tones(source=source, **{**SMALL, "n_train": 8}).load("train"))
    with pytest.raises(ValueError, match="source"):
        Tones(source="drums")


def test_piano_note_is_harmonic_with_stretched_partials():
    f0, stretch, rate = 220.0, 3e-4, 8000
    note = piano_note(f0, 8192, rate, inharmonicity=stretch)
    power = np.abs(np.fft.rfft(note * np.hanning(len(note)))) ** 2
    freqs = np.fft.rfftfreq(len(note), 1 / rate)
    n = np.arange(1, 18)
    partials = n * f0 * np.sqrt(1 + stretch * n**2)
    near_partial = np.min(np.abs(freqs[:, None] - partials), axis=1) < 5
    assert power[near_partial].sum() > 0.98 * power.sum()  # white noise: about 0.05
    # Partial 8 sits at 8 f0 sqrt(1 + 64 B), about 17 Hz above 8 f0.
    band = np.abs(freqs - 8 * f0) < 40
    assert abs(freqs[band][np.argmax(power[band])] - partials[7]) < 2


def onset_sharpness(clips: np.ndarray, frame: int = 32) -> np.ndarray:
    """Per clip, the largest log10 rise of energy between consecutive 4 ms frames."""
    energy = (clips.reshape(len(clips), -1, frame) ** 2).sum(axis=2)
    energy = energy + 0.01 * energy.max(axis=1, keepdims=True)
    return np.log10(energy[:, 1:] / energy[:, :-1]).max(axis=1)


def longest_inner_silence(clip: np.ndarray) -> int:
    """Samples in the longest silent stretch with sound on both sides."""
    sounding = np.flatnonzero(np.abs(clip) >= 1.5 / 255)  # silence is the two levels nearest 0
    return int(np.diff(sounding).max()) - 1 if len(sounding) > 1 else 0


def test_tone_piano_onsets_are_sharper_and_only_voice_pauses():
    params = {"clip_length": 2048, "n_train": 32, "n_test": 1}
    piano = continuous(Tones(source="piano", **params).load("train"))
    voice = continuous(Tones(source="voice", **params).load("train"))
    assert np.median(onset_sharpness(piano)) > np.median(onset_sharpness(voice)) + 0.5
    assert max(map(longest_inner_silence, piano)) < 80  # a struck note rings to the end
    assert sum(longest_inner_silence(clip) >= 80 for clip in voice) >= 8  # pauses of 10 ms+


def test_pianovoice_stacks_piano_and_voice():
    pair = PianoVoice(**SMALL)
    assert pair.sources == ("piano", "voice") and pair.shape == (2, 2048)
    for split in ("train", "test"):
        clips = pair.load(split)
        assert torch.equal(clips[:, 0], Piano(**SMALL).load(split))
        assert torch.equal(clips[:, 1], Voice(**SMALL).load(split))
    piano = pair.source("piano")
    assert isinstance(piano, Piano) and piano.name == "piano" and piano.params == pair.params
    assert pair.source("voice").name == "voice"
    with pytest.raises(ValueError, match="sources"):
        pair.source("drums")


def write_sine(path: Path, seconds: float, rate: int = 16000, hz: float = 440.0,
               channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * hz * t)
    soundfile.write(path, np.stack([wave] * channels, axis=1), rate)


def test_wavdir_single_source(tmp_path):
    write_sine(tmp_path / "a.wav", 1.0)  # 8000 samples at 8 kHz: 31 clips of 256
    write_sine(tmp_path / "b.FLAC", 0.5, channels=2)  # 4000 samples: 15 clips
    write_sine(tmp_path / "quiet.wav", 1.0, hz=0.0)  # silent: all dropped
    (tmp_path / "notes.txt").write_text("not audio")
    data = WavDir(data_dir=str(tmp_path), clip_length=256)
    assert data.sources == () and data.shape == (256,) and data.sample_rate == 8000
    train, validation, test = data.load("train"), data.load("validation"), data.load("test")
    # 46 clips: round(0.2 * 46) = 9 for test, round(0.1 * 46) = 5 for validation
    assert (len(train), len(validation), len(test)) == (32, 5, 9)
    assert train.dtype == torch.long and int(train.min()) >= 0 and int(train.max()) <= 255
    assert np.all(np.abs(np.abs(continuous(train)).max(axis=1) - 0.45) <= 1 / 255)
    spectrum = np.abs(np.fft.rfft(continuous(train), axis=1)).mean(axis=0)
    assert abs(np.fft.rfftfreq(256, 1 / 8000)[np.argmax(spectrum)] - 440) < 8000 / 256
    assert torch.equal(test, WavDir(data_dir=tmp_path, clip_length=256).load("test"))
    assert len(WavDir(data_dir=tmp_path, clip_length=256, max_clips=20).load("train")) == 14


def test_wavdir_multi_source(tmp_path):
    write_sine(tmp_path / "a" / "x.wav", 1.0)  # 31 clips of 256
    write_sine(tmp_path / "b" / "deeper" / "y.flac", 0.5, hz=300.0)  # 15 clips
    (tmp_path / "empty").mkdir()
    data = WavDir(data_dir=tmp_path, clip_length=256)
    assert data.sources == ("a", "b") and data.shape == (2, 256)
    train, test = data.load("train"), data.load("test")
    # N = 15: 3 for test, 2 for validation
    assert train.shape == (10, 2, 256) and test.shape == (3, 2, 256)
    a, b = data.source("a"), data.source("b")
    assert (a.name, b.name, a.shape, a.sources) == ("wavdir-a", "wavdir-b", (256,), ())
    assert torch.equal(b.load("test"), test[:, 1]) and torch.equal(b.load("train"), train[:, 1])
    assert torch.equal(a.load("test")[:3], test[:, 0])  # a's test split holds the pairs' test
    with pytest.raises(ValueError, match="sources"):
        data.source("empty")


def test_wavdir_errors_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="--data-dir DIR or --set wavdir.data_dir=DIR"):
        WavDir()
    with pytest.raises(FileNotFoundError, match="not an existing folder"):
        WavDir(data_dir=tmp_path / "missing")
    with pytest.raises(ValueError, match=r"test_fraction=1.5: 1.5 is not a float > 0 and < 1"):
        WavDir(data_dir=tmp_path, test_fraction=1.5)
    with pytest.raises(ValueError, match="must be < 1 to leave clips for train, not 0.6 \\+ 0.5"):
        WavDir(data_dir=tmp_path, test_fraction=0.6, validation_fraction=0.5)
    (tmp_path / "readme.txt").write_text("no audio here")
    with pytest.raises(FileNotFoundError, match=r"no audio files \(\.wav, \.flac"):
        WavDir(data_dir=tmp_path)
    write_sine(tmp_path / "short.wav", 0.04)  # 320 samples at 8 kHz: one clip of 256
    with pytest.raises(ValueError, match="only 1 usable clip.*add audio or lower clip_length"):
        WavDir(data_dir=tmp_path, clip_length=256).load("train")
    write_sine(tmp_path / "sub" / "x.wav", 0.04)
    with pytest.raises(ValueError, match="both directly inside and in subfolders"):
        WavDir(data_dir=tmp_path)


@pytest.mark.parametrize("data", [Piano(clip_length=512, n_test=64),
                                  Voice(clip_length=512, n_test=64),
                                  Tones(source="voice", clip_length=512, n_test=64)])
def test_short_clips_are_never_silent(data):
    """A pause scaled for 256 ms clips once silenced a whole 64 ms voice clip (no SNR)."""
    clips = data.load("test")
    assert bool(((clips.max(dim=1).values - clips.min(dim=1).values) > 20).all())
