"""A user's own audio folder runs end to end: train a WaveNet on it, then PnF super-resolution."""

from __future__ import annotations

import json

import numpy as np
import soundfile
from conftest import run_cli


def test_train_and_superres_on_a_wav_folder(tmp_path):
    data = tmp_path / "audio"
    data.mkdir()
    t = np.arange(16000 * 2) / 16000
    for i, freq in enumerate((220.0, 330.0, 440.0)):
        soundfile.write(data / f"tone{i}.wav", 0.5 * np.sin(2 * np.pi * freq * t), 16000)
    ckpt = tmp_path / "my-wavenet.pt"
    train = run_cli(["train", "wavenet", "--dataset", "wavdir", "--data-dir", str(data),
                     "--out", str(ckpt), "--set", "epochs=1", "--set", "channels=8",
                     "--set", "skip_channels=8", "--set", "layers=3", "--set", "stacks=1",
                     "--set", "crop=256", "--set", "val_max=2"], cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    assert json.loads(ckpt.with_suffix(".json").read_text())["sha256"]
    run = run_cli(["run", "--task", "superres", "--sampler", "pnf", "--dataset", "wavdir",
                   "--data-dir", str(data), "--set", f"wavenet.checkpoint={ckpt}",
                   "--sweep", "superres.ratio=4", "--set", "superres.n_examples=1",
                   "--set", "pnf.levels=2", "--budget", "4", "--name", "mine"], cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    records = [json.loads(p.read_text()) for p in (tmp_path / "results/mine/cells").glob("*")]
    assert {r["sampler"]: r["status"] for r in records} == {"pnf": "ok", "spline": "ok"}
    pnf = next(r for r in records if r["sampler"] == "pnf")
    assert pnf["nfe"] == 4 and "snr_db" in pnf["metrics"]
