"""A user's own audio folder runs end to end: train a WaveNet on it, then PnF super-resolution."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
from conftest import run_cli

from arbench.results.record import Record

# A WaveNet small enough to train in a few seconds: these tests check plumbing, not quality.
TINY = ["--set", "epochs=1", "--set", "channels=8", "--set", "skip_channels=8", "--set",
        "layers=3", "--set", "stacks=1", "--set", "crop=256", "--set", "val_max=2"]


def test_train_and_superres_on_a_wav_folder(tmp_path):
    data = tmp_path / "audio"
    data.mkdir()
    t = np.arange(16000 * 2) / 16000
    for i, freq in enumerate((220.0, 330.0, 440.0)):
        soundfile.write(data / f"tone{i}.wav", 0.5 * np.sin(2 * np.pi * freq * t), 16000)
    ckpt = tmp_path / "my-wavenet.pt"
    train = run_cli(["train", "wavenet", "--dataset", "wavdir", "--data-dir", str(data),
                     "--out", str(ckpt), "--set", "preset=cpu-large", *TINY], cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    sidecar = json.loads(ckpt.with_suffix(".json").read_text())
    assert sidecar["sha256"] and sidecar["options"]["preset"] == "cpu-large"
    assert sidecar["options"]["max_seconds"] == 3600  # the preset's, under TINY's sizes
    assert sidecar["config"]["channels"] == 8
    assert "PnF" in train.stdout and "docs/audio.md" in train.stdout  # what the prior is for
    run = run_cli(["run", "--task", "superres", "--sampler", "pnf", "--dataset", "wavdir",
                   "--data-dir", str(data), "--set", f"wavenet.checkpoint={ckpt}",
                   "--sweep", "superres.ratio=4", "--set", "superres.n_examples=1",
                   "--set", "pnf.levels=2", "--budget", "4", "--name", "mine"], cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    records = [Record.model_validate_json(p.read_bytes())
               for p in (tmp_path / "results/mine/cells").glob("*")]
    assert {r.identity.sampler: r.status for r in records} == {"pnf": "ok", "spline": "ok"}
    pnf = next(r for r in records if r.identity.sampler == "pnf")
    assert pnf.cost.nfe == 4 and "snr_db" in pnf.metrics


@pytest.mark.slow
def test_separation_and_inpainting_on_a_folder_of_sources(tmp_path):
    t = np.arange(16000 * 2) / 16000
    ckpts = tmp_path / "priors"
    for source, freq in (("low", 150.0), ("high", 900.0)):
        folder = tmp_path / "audio" / source
        folder.mkdir(parents=True)
        for i in range(3):
            tone = 0.5 * np.sin(2 * np.pi * freq * (1 + 0.1 * i) * t)
            soundfile.write(folder / f"{source}{i}.flac", tone, 16000)
        train = run_cli(["train", "wavenet", "--dataset", "wavdir", "--data-dir", str(folder),
                         "--out", str(ckpts / f"{source}.pt"), *TINY], cwd=tmp_path)
        assert train.returncode == 0, train.stderr
    common = ["--sampler", "pnf", "--dataset", "wavdir", "--set", "pnf.levels=2", "--budget", "8"]
    separation = run_cli(["run", "--task", "separation", *common,
                          "--data-dir", str(tmp_path / "audio"), "--set",
                          f"wavenet.checkpoint={ckpts}", "--set", "separation.n_examples=1",
                          "--name", "sep"], cwd=tmp_path)
    assert separation.returncode == 0, separation.stderr
    records = [Record.model_validate_json(p.read_bytes())
               for p in (tmp_path / "results/sep/cells").glob("*")]
    assert {r.identity.sampler: r.status for r in records} == {"pnf": "ok", "mixture": "ok"}
    pnf = next(r for r in records if r.identity.sampler == "pnf")
    assert {"si_sdr_db/low", "si_sdr_db/high", "sdr_db"} <= set(pnf.metrics)
    inpainting = run_cli(["run", "--task", "inpainting", *common,
                          "--data-dir", str(tmp_path / "audio" / "low"),
                          "--set", f"wavenet.checkpoint={ckpts / 'low.pt'}",
                          "--set", "inpainting.n_examples=1", "--name", "inp"], cwd=tmp_path)
    assert inpainting.returncode == 0, inpainting.stderr
    assert '"status": "ok"' in next((tmp_path / "results/inp/cells").glob("*")).read_text()
