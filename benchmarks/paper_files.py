"""What the paper-scale benchmarks share: tiny data in the real formats, Inception weights,
and running the `arbench` command."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch


def arbench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "arbench", *args], cwd=cwd, text=True,
                            capture_output=True)
    if result.returncode not in (0, 1, 3):  # 1: compare found a regression; 3: cells failed
        sys.exit(f"arbench {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def fake_data(work: Path, cifar: Path | None) -> None:
    """data/cifar10, data/mnist and data/celeba in the real formats (random values)."""
    rng = np.random.default_rng(0)
    target = work / "data" / "cifar10"
    if cifar is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(cifar.resolve())
    else:
        target.mkdir(parents=True)
        for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
            batch = {b"labels": rng.integers(0, 10, 32).tolist(),
                     b"data": rng.integers(0, 256, (32, 3072), dtype=np.uint8)}
            (target / name).write_bytes(pickle.dumps(batch, protocol=2))
    mnist = work / "data" / "mnist"
    mnist.mkdir(parents=True)
    for stem, count in (("train", 64), ("t10k", 16)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        for kind, array, magic in (("images", images, 3), ("labels", labels, 1)):
            header = bytes([0, 0, 8, magic]) + b"".join(int(s).to_bytes(4, "big")
                                                        for s in array.shape)
            (mnist / f"{stem}-{kind}-idx{magic}-ubyte").write_bytes(header + array.tobytes())
    from PIL import Image

    celeba = work / "data" / "celeba"
    celeba.mkdir(parents=True)
    for k in range(80):
        Image.fromarray(rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)).save(
            celeba / f"{k:06d}.png")


def inception_weights(work: Path) -> Path:
    if os.environ.get("ARBENCH_INCEPTION_WEIGHTS"):
        return Path(os.environ["ARBENCH_INCEPTION_WEIGHTS"])
    from arbench_plugins.metrics.inception_net import FIDInceptionV3

    torch.manual_seed(0)
    net = FIDInceptionV3()
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = work / "inception-random.pth"
    torch.save(net.state_dict(), path)
    return path
