"""The recipe that renders the embedded piano and speech (`arbench_plugins.datasets.audio`).

    pip install "arbench[render-audio]"   # music21, pretty_midi, tinysoundfont, espeakng-loader
    python -m arbench_plugins.datasets.render_audio

Everything comes from the package registry; nothing is downloaded while rendering:

* piano: scores of the music21 corpus (Bach chorales, Haydn, Mozart and Beethoven
  movements), each at a seeded tempo and transposition, played on General MIDI
  program 0 (acoustic grand piano) of the TimGM6mb SoundFont that pretty_midi
  ships, by the TinySoundFont synthesiser at 16 kHz, mixed to mono;
* speech: English sentences of Python's own documentation (``pydoc_data``),
  spoken by eSpeak NG (the library and voice data of espeakng-loader) in one of
  8 English accents x 33 voice variants (male, female, character) at a seeded rate and
  pitch, at 22.05 kHz.

Both are resampled to 8 kHz with scipy's polyphase filter and written as 16-bit
FLAC, one folder per source and split; scores and sentences never cross splits.
The output is deterministic given the package versions, which the manifest
records with every file's sha256 and the licences.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import re
import shutil
from fractions import Fraction
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).with_name("audio_data")
RATE = 8000
SECONDS = 8.0  # per file
FILES = {"train": 18, "validation": 6, "test": 6}
SPLIT_SEEDS = {"train": 0, "validation": 1, "test": 2}
PIANO_RATE = 16000
COMPOSERS = ("bach", "haydn", "mozart", "beethoven")
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd", "en-us-nyc")
# Variants with breath noise (f2, f3, f5, Alicia, caleb) are left out: eSpeak seeds that
# noise from the clock, so their renders differ from run to run.
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f4", "adam", "Alex",
            "Andrea", "Andy", "Annie", "antonio", "aunty", "belinda", "benjamin", "boris",
            "david", "ed", "edward", "iven", "john", "linda", "max", "paul", "quincy", "robert",
            "shelby", "steph", "travis")
LICENCES = {
    "piano scores": "music21 corpus: public-domain works; music21 is BSD-3-Clause",
    "piano SoundFont": "TimGM6mb.sf2 by Tim Brechbill, shipped with pretty_midi: GPL-2.0",
    "synthesiser": "TinySoundFont (tinysoundfont package): MIT",
    "speech text": "Python documentation (pydoc_data.topics): PSF License / BSD-0 for code",
    "speech synthesiser": "eSpeak NG and its voice data (espeakng-loader): GPL-3.0-or-later",
}


def _resample(audio: np.ndarray, rate: int) -> np.ndarray:
    from scipy.signal import resample_poly

    ratio = Fraction(RATE, rate)
    result: np.ndarray = resample_poly(audio, ratio.numerator, ratio.denominator)
    return result


def _score_events(path: Path, rng: np.random.Generator) -> list[tuple[float, int, int]]:
    """(seconds, key, velocity; 0 = off) of the first SECONDS of a score, seeded tempo and key."""
    from music21 import converter

    seconds_per_quarter = 60.0 / rng.uniform(70, 120)
    shift = int(rng.integers(-5, 6))
    events = []
    for note in converter.parse(str(path)).flatten().notes:
        start = float(note.offset) * seconds_per_quarter
        if start >= SECONDS:
            continue
        stop = start + max(float(note.duration.quarterLength), 0.25) * seconds_per_quarter
        velocity = int(rng.integers(50, 110))
        for pitch in note.pitches:
            key = min(max(pitch.midi + shift, 21), 108)
            events += [(start, key, velocity), (stop, key, 0)]
    return sorted(events, key=lambda event: (event[0], event[2] > 0))


def _piano(path: Path, rng: np.random.Generator, soundfont: str) -> np.ndarray:
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=PIANO_RATE)
    synth.program_select(0, synth.sfload(soundfont), 0, 0)
    chunks, now = [], 0
    for seconds, key, velocity in _score_events(path, rng):
        sample = int(round(seconds * PIANO_RATE))
        if sample > now:
            chunks.append(np.frombuffer(synth.generate(sample - now), dtype=np.float32))
            now = sample
        synth.noteon(0, key, velocity) if velocity else synth.noteoff(0, key)
    total = int((SECONDS + 1.0) * PIANO_RATE)  # let the last notes ring
    chunks.append(np.frombuffer(synth.generate(max(total - now, 0)), dtype=np.float32))
    stereo = np.concatenate(chunks).reshape(-1, 2).astype(np.float64)
    return _resample(stereo.mean(axis=1)[: int(SECONDS * PIANO_RATE)], PIANO_RATE)


class _ESpeak:
    """eSpeak NG through ctypes, speaking synchronously into a buffer."""

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        self.samples: list[np.ndarray] = []
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short),
                                         ctypes.c_int, ctypes.c_void_p)
        self.callback = callback_type(self._collect)  # kept alive as long as self
        data = espeakng_loader.get_data_path().encode()
        self.rate = self.lib.espeak_Initialize(2, 0, data, 0)  # AUDIO_OUTPUT_SYNCHRONOUS
        if self.rate <= 0:
            raise RuntimeError("eSpeak NG failed to initialise")
        self.lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, wav: Any, count: int, _events: Any) -> int:
        if count > 0:
            self.samples.append(np.ctypeslib.as_array(wav, (count,)).copy())
        return 0

    def say(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"eSpeak NG has no voice {voice!r}")
        self.lib.espeak_SetParameter(1, rate, 0)  # espeakRATE, words per minute
        self.lib.espeak_SetParameter(3, pitch, 0)  # espeakPITCH, 0..100
        self.samples = []
        encoded = text.encode()
        self.lib.espeak_Synth(encoded, len(encoded) + 1, 0, 0, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        return np.concatenate(self.samples or [np.zeros(0, np.int16)]) / 32768.0


def _sentences() -> list[str]:
    """Plain English sentences of 40-160 characters from Python's help topics."""
    from pydoc_data.topics import topics

    found = []
    for name in sorted(topics):
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(topics[name].split())):
            if 40 <= len(sentence) <= 160 and re.fullmatch(r"[A-Z][A-Za-z ,;'-]+\.", sentence):
                found.append(sentence)
    return found


def _speech(speaker: _ESpeak, sentences: list[str], rng: np.random.Generator
            ) -> tuple[np.ndarray, dict[str, Any]]:
    voice = f"{ACCENTS[rng.integers(len(ACCENTS))]}+{VARIANTS[rng.integers(len(VARIANTS))]}"
    rate, pitch = int(rng.integers(130, 200)), int(rng.integers(25, 75))
    parts, total = [], 0
    for index in rng.permutation(len(sentences)):
        spoken = _resample(speaker.say(sentences[index], voice, rate, pitch), speaker.rate)
        parts.append(spoken)
        total += len(spoken)
        if total >= SECONDS * RATE:
            break
    return np.concatenate(parts)[: int(SECONDS * RATE)], {"voice": voice, "rate": rate,
                                                          "pitch": pitch}


def _write(audio: np.ndarray, out: Path, name: str) -> dict[str, Any]:
    import soundfile

    path = out / name
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = 0.9 * audio / max(np.abs(audio).max(), 1e-9)
    soundfile.write(path, audio, RATE, subtype="PCM_16", format="FLAC")
    return {"file": name, "sha256": hashlib.sha256(path.read_bytes())
            .hexdigest(), "seconds": len(audio) / RATE}


def render(out: Path = OUT) -> dict[str, Any]:
    """Render every split of both sources under `out` and write its manifest."""
    import pretty_midi
    from music21 import corpus

    shutil.rmtree(out / "piano", ignore_errors=True)
    shutil.rmtree(out / "voice", ignore_errors=True)
    soundfont = str(Path(pretty_midi.__file__).with_name("TimGM6mb.sf2"))
    scores = [path for composer in COMPOSERS
              for path in sorted(corpus.getComposer(composer), key=str)[:12]]
    sentences = _sentences()
    speaker = _ESpeak()
    files = []
    for split, count in FILES.items():
        rng = np.random.default_rng([0, SPLIT_SEEDS[split]])
        # splits take disjoint scores and sentences: every third for validation and test
        mine = [s for i, s in enumerate(scores) if _split_of(i) == split]
        said = [s for i, s in enumerate(sentences) if _split_of(i) == split]
        for index in range(count):
            path = mine[rng.integers(len(mine))] if index >= len(mine) else mine[index]
            piano = _piano(Path(path), rng, soundfont)
            files.append(_write(piano, out, f"piano/{split}/{index:02d}.flac"))
            files[-1]["score"] = "/".join(Path(path).parts[-2:])
            speech, settings = _speech(speaker, said, rng)
            files.append({**_write(speech, out, f"voice/{split}/{index:02d}.flac"), **settings})
            print(f"rendered {split} {index + 1}/{count}", flush=True)
    versions = {name: metadata.version(name) for name in
                ("music21", "pretty_midi", "tinysoundfont", "espeakng-loader", "scipy",
                 "soundfile", "numpy")}
    manifest = {"sample_rate": RATE, "versions": versions, "licences": LICENCES,
                "recipe": "python -m arbench_plugins.datasets.render_audio", "files": files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _split_of(index: int) -> str:
    return {1: "validation", 2: "test"}.get(index % 6, "train")


if __name__ == "__main__":
    render()
