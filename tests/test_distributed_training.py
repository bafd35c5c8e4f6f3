"""Training in several processes: torchrun with gloo on the CPU trains the weights one
process trains with the same batch size, a killed multi-process run resumes, and only
torchrun's variables make a process a rank that does not write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import run_cli, run_process
from test_image_files import write_cifar

from arbench.training.checkpoints import partial_path

TRAIN = ["train", "pixelcnn++", "--dataset", "cifar10", "--data-dir", "cifar", "--device",
         "cpu", "--set", "preset=tiny", "--set", "epochs=3", "--set", "ema=0.9",
         "--set", "batch_size=13"]


def _rank_process(out, rank: int) -> int:
    """The pid of the torchrun worker of `rank` training into `out` (from /proc)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command, environ = (proc / "cmdline").read_bytes(), (proc / "environ").read_bytes()
        except OSError:
            continue
        if str(out).encode() in command and f"\0RANK={rank}\0".encode() in b"\0" + environ:
            return int(proc.name)
    raise AssertionError(f"no worker of rank {rank} trains into {out}")


def weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.mark.slow
def test_two_processes_train_the_one_process_weights_and_a_killed_run_resumes(tmp_path):
    write_cifar(tmp_path / "cifar")
    one = run_cli([*TRAIN, "--out", "one.pt"], cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    # 2 processes, each computing its rows of every 13-row batch (7 and 6), and of the
    # 1-row batch that ends each epoch of 27 training images (rank 1 has none: it joins at
    # weight 0); killed after their first epoch
    out = tmp_path / "two.pt"  # its absolute path names the launcher and both workers
    killed = subprocess.Popen([sys.executable, "-m", "arbench", *TRAIN, "--out", str(out),
                               "--nproc", "2"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    while not partial_path(out).exists() and killed.poll() is None:
        time.sleep(0.01)
    os.kill(_rank_process(out, 1), signal.SIGKILL)  # torchrun then ends the other worker
    said = killed.communicate()[1]
    assert not out.exists(), "the run finished before it could be killed"
    assert killed.returncode == 1 and "distributed training stopped (torchrun exited" in said
    assert "run the same command again: training resumes from the last" in said
    resumed = run_process([*TRAIN, "--out", str(out), "--nproc", "2"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("resuming from epoch") == 1, resumed.stderr  # rank 0 prints
    single, double = weights(tmp_path / "one.pt"), weights(tmp_path / "two.pt")
    assert single.keys() == double.keys()
    for key in single:  # Adam's steps amplify the sum-order differences of the reduction
        torch.testing.assert_close(double[key], single[key], rtol=0, atol=5e-5)


def test_only_torchruns_rank_variables_make_a_process_a_non_writer(monkeypatch):
    from arbench.training import distributed

    monkeypatch.setenv("RANK", "1")  # set by some other launcher, no torchrun
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.rank() == 0 and distributed.is_main()
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun's second process, before its group
    assert distributed.rank() == 1 and not distributed.is_main()
