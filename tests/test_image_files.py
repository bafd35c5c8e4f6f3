"""CIFAR-10, MNIST and image folders read from tiny files in exactly the real formats."""

from __future__ import annotations

import gzip
import math
import pickle
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from arbench.results.record import Record
from arbench_plugins.datasets.images import CIFAR_FILES, Cifar10, ImageFolder, Mnist, split_of

PER_BATCH = 6


def cifar_batch(seed: int) -> dict[bytes, object]:
    """A batch as the CIFAR-10 python version pickles it: bytes keys, uint8 (N, 3072) data
    in channel-major order, a list of int labels."""
    rng = np.random.default_rng(seed)
    return {b"batch_label": f"batch {seed}".encode(), b"labels": [int(v) for v in
            rng.integers(0, 10, PER_BATCH)], b"data": rng.integers(0, 256, (PER_BATCH, 3072),
            dtype=np.uint8), b"filenames": [f"img{i}.png".encode() for i in range(PER_BATCH)]}


def write_cifar(folder) -> dict[str, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    batches = {name: cifar_batch(i) for i, name in enumerate(CIFAR_FILES)}
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return batches


def test_cifar10_reads_the_python_batches_from_a_folder_or_the_tarball(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py")
    data = Cifar10(data_dir=str(tmp_path))
    test = data.load("test")
    assert test.shape == (PER_BATCH, 3, 32, 32) and test.dtype == torch.long
    expected = batches["test_batch"][b"data"].reshape(-1, 3, 32, 32)
    assert torch.equal(test, torch.as_tensor(expected, dtype=torch.long))  # R, G, B planes
    assert data.labels("test").tolist() == batches["test_batch"][b"labels"]
    train, val = data.load("train"), data.load("validation")
    assert len(train) + len(val) == 5 * PER_BATCH and len(val) == 3  # 10% held out
    every = torch.cat([train, val]).flatten(1).sort(0).values
    stacked = np.concatenate([batches[n][b"data"] for n in CIFAR_FILES[:-1]])
    assert torch.equal(every, torch.as_tensor(stacked, dtype=torch.long).sort(0).values)
    archive = tmp_path / "tar" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    assert torch.equal(Cifar10(data_dir=str(archive.parent)).load("test"), test)


def test_cifar10_errors_name_the_file_and_the_layout(tmp_path):
    with pytest.raises(ValueError, match="pass --data-dir"):
        Cifar10().load("test")
    write_cifar(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(ValueError, match=r"lacks \['data_batch_3'\]; expected the CIFAR-10"):
        Cifar10(data_dir=str(tmp_path)).load("train")
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps(cifar_batch(3), protocol=2)[:100])
    with pytest.raises(ValueError, match="data_batch_3 is not a CIFAR-10 python batch"):
        Cifar10(data_dir=str(tmp_path)).load("train")


def test_a_tampered_cifar_batch_cannot_run_code(tmp_path):
    write_cifar(tmp_path)

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Payload()}, protocol=2))
    with pytest.raises(ValueError, match=r"refused to load (__builtin__|builtins)\.print"):
        Cifar10(data_dir=str(tmp_path)).load("test")


def idx(array: np.ndarray) -> bytes:
    """The idx format: magic (0x0800 | dims for unsigned bytes), big-endian sizes, data."""
    magic = (0x08 << 8) | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder, gz: bool):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 20),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 5)}
    for name, array in arrays.items():
        raw = idx(array)
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(raw) if gz else raw)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_idx_files_gzipped_or_not(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz)
    data = Mnist(data_dir=str(tmp_path))
    assert torch.equal(data.load("test")[:, 0], torch.as_tensor(arrays["t10k-images-idx3-ubyte"]))
    assert data.labels("test").tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert (len(data.load("train")), len(data.load("validation"))) == (18, 2)
    assert data.shape == (1, 28, 28) and data.num_levels == 256


def test_mnist_errors_name_the_file(tmp_path):
    write_mnist(tmp_path, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="declares \\[5, 28, 28\\] values but holds"):
        Mnist(data_dir=str(tmp_path)).load("test")
    path.write_bytes(b"\x00\x00\x08\x01" + path.read_bytes()[4:])
    with pytest.raises(ValueError, match="not the idx magic number 2051"):
        Mnist(data_dir=str(tmp_path)).load("test")
    path.unlink()
    with pytest.raises(ValueError, match="has no t10k-images-idx3-ubyte"):
        Mnist(data_dir=str(tmp_path)).load("test")


def test_imagefolder_crops_resizes_and_splits_by_file_name(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"face{i:03d}.{'png' if i % 2 else 'jpg'}" for i in range(40)]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (60, 50, 3), dtype=np.uint8)).save(tmp_path / name)
    data = ImageFolder(data_dir=str(tmp_path), crop=40, size=16)
    sizes = {split: len(data.load(split)) for split in ("train", "validation", "test")}
    assert sum(sizes.values()) == 40
    assert sizes["test"] == sum(split_of(n) == "test" for n in names)
    assert data.load("train").shape[1:] == (3, 16, 16) == data.shape
    grey = ImageFolder(data_dir=str(tmp_path), size=8, channels=1)
    assert grey.load("test").shape[1:] == (1, 8, 8)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png is not a readable PNG or JPEG"):
        ImageFolder(data_dir=str(tmp_path), size=8).load("train")
    (tmp_path / "broken.png").unlink()
    with pytest.raises(ValueError, match="smaller than crop 100"):
        ImageFolder(data_dir=str(tmp_path), crop=100).load("train")


def test_an_image_dataset_loads_through_the_cli_data_dir(tmp_path):
    from conftest import run_cli

    write_cifar(tmp_path / "cifar")
    result = run_cli(["run", "--task", "inpainting", "--sampler", "spline", "--dataset",
                      "cifar10", "--data-dir", "cifar", "--set", "inpainting.n_examples=2",
                      "--name", "c"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (record,) = [Record.model_validate_json(p.read_bytes())
                 for p in (tmp_path / "results/c/cells").glob("*.json")]
    # the task read the images; spline fills each RGB channel's hidden patch on its own
    assert record.status == "ok", record.reason
    assert math.isfinite(record.metrics["snr_db/hidden"].value)  # noise images


def test_split_of_is_stable_and_roughly_ten_percent():
    names = [f"img{i}.jpg" for i in range(2000)]
    share = sum(split_of(n) == "test" for n in names) / len(names)
    assert 0.08 < share < 0.12 and split_of("a.png") == split_of("a.png")
