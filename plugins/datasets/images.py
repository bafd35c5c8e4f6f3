"""The standard image data sets, read from the files users download; never downloaded here.

- `cifar10`: the CIFAR-10 python batches (``data_batch_1`` .. ``data_batch_5``,
  ``test_batch``), in ``data_dir`` itself, in its ``cifar-10-batches-py/``, or in the
  ``cifar-10-python.tar.gz`` that holds them. 50,000 train / 10,000 test images
  ``(3, 32, 32)``, 256 levels; class labels kept (`labels`).
- `mnist`: the four idx files (``train-images-idx3-ubyte`` and so on, gzipped or not).
  60,000 / 10,000 images ``(1, 28, 28)``, 256 levels, labels kept.
- `imagefolder`: every PNG or JPEG under ``data_dir`` (CelebA, say), centre-cropped to
  `crop` and resized to `size` as the originals preprocess (distribution smoothing on
  CelebA: crop 140, size 32), in RGB or grey. The split is fixed by file name: a hash of
  each name sends it to test (10%), validation (10%) or train, so adding files never
  moves the others.

For CIFAR-10 and MNIST the validation split is a fixed `val_fraction` of the train
files (seed 0) and train is the rest: tune on validation, report on test. The CIFAR
batches are pickles, read with an unpickler that builds only numpy arrays and plain
containers, so a tampered file cannot run code. A missing, truncated or foreign file
is a `ValueError` naming the file and the layout expected.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from arbench import Dataset, Param, data_fingerprint_of, holdout

CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
CIFAR_LAYOUT = ("the CIFAR-10 python version: data_batch_1..data_batch_5 and test_batch "
                "(in DIR, DIR/cifar-10-batches-py/, or DIR/cifar-10-python.tar.gz)")
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
MNIST_LAYOUT = ("the four MNIST idx files train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each may end in .gz)")
IDX_MAGIC = {3: 2051, 1: 2049}  # images (3 dims), labels (1 dim): unsigned bytes
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DATA_DIR = Param(None, "folder holding the data set's files")
VAL_FRACTION = Param(0.1, "fraction of the train files held out as validation", gt=0, lt=1)


class _FileImages(Dataset):
    """Images ``(N, *shape)`` with levels 0..255 read once per process; `labels` too."""

    modality: ClassVar[str] = "image"
    num_levels = 256

    def _splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def load(self, split: str) -> torch.Tensor:
        self.check_split(split)
        return self._splits()[split][0].clone()

    def labels(self, split: str) -> torch.Tensor:
        """Class labels of `split`, in the order of `load`."""
        self.check_split(split)
        return self._splits()[split][1].clone()


def _folder(data_dir: str | None, name: str) -> Path:
    if data_dir is None:
        raise ValueError(f"{name} reads your files: pass --data-dir DIR (or --set "
                         f"{name}.data_dir=DIR); nothing is downloaded")
    folder = Path(data_dir).expanduser()
    if not folder.exists():
        raise ValueError(f"{name}: data folder {folder} does not exist")
    return folder


def _holdout(images: torch.Tensor, labels: torch.Tensor, fraction: float
             ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Train and validation carved from the train files by the training loop's split
    (`arbench.training.loop.holdout`) at a fixed seed, 0."""
    train, val = holdout(len(images), fraction, torch.Generator().manual_seed(0))
    return {"train": (images[train], labels[train]), "validation": (images[val], labels[val])}


# --- CIFAR-10 -------------------------------------------------------------------------------


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers; any other class is refused."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def _cifar_sources(folder: Path) -> dict[str, bytes]:
    """The raw bytes of each CIFAR batch file, from the folder or the tarball."""
    for candidate in (folder, folder / "cifar-10-batches-py"):
        if all((candidate / name).is_file() for name in CIFAR_FILES):
            return {name: (candidate / name).read_bytes() for name in CIFAR_FILES}
    archive = folder / "cifar-10-python.tar.gz" if folder.is_dir() else folder
    if archive.is_file():
        try:
            with tarfile.open(archive) as tar:
                members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
                missing = [name for name in CIFAR_FILES if name not in members]
                if missing:
                    raise ValueError(f"cifar10: {archive} lacks {missing}; expected {CIFAR_LAYOUT}")
                return {name: tar.extractfile(members[name]).read()  # type: ignore[union-attr]
                        for name in CIFAR_FILES}
        except (tarfile.TarError, EOFError, OSError) as error:
            raise ValueError(f"cifar10: {archive} is not a readable tar.gz ({error})") from None
    missing = [name for name in CIFAR_FILES if not (folder / name).is_file()]
    raise ValueError(f"cifar10: {folder} lacks {missing}; expected {CIFAR_LAYOUT}")


def _cifar_batch(name: str, raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _ArraysOnly(io.BytesIO(raw), encoding="bytes").load()
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"cifar10: {name} is not a CIFAR-10 python batch ({error}); "
                         f"expected {CIFAR_LAYOUT}") from None
    if data.dtype.kind not in "iu":
        raise ValueError(f"cifar10: {name} holds {data.dtype} data; a CIFAR-10 batch holds "
                         "uint8 pixel values 0..255")
    if data.size and (int(data.min()) < 0 or int(data.max()) > 255):
        raise ValueError(f"cifar10: {name} holds pixel values {int(data.min())}..."
                         f"{int(data.max())}; a CIFAR-10 batch holds 0..255")
    data = data.astype(np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(f"cifar10: {name} holds data of shape {data.shape} and "
                         f"{len(labels)} labels; a batch has (N, 3072) and N labels")
    return data.reshape(-1, 3, 32, 32), labels


@cache
def _cifar(folder: Path, fraction: float, fingerprint: str
           ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The splits of the files under `folder` (`fingerprint` tells changed files apart)."""
    batches = {name: _cifar_batch(name, raw) for name, raw in _cifar_sources(folder).items()}
    train = [batches[name] for name in CIFAR_FILES[:-1]]
    images = torch.as_tensor(np.concatenate([b[0] for b in train]), dtype=torch.long)
    labels = torch.as_tensor(np.concatenate([b[1] for b in train]))
    test_images, test_labels = batches["test_batch"]
    return {**_holdout(images, labels, fraction),
            "test": (torch.as_tensor(test_images, dtype=torch.long),
                     torch.as_tensor(test_labels))}


class Cifar10(_FileImages):
    """CIFAR-10 from its python batches (see the module docstring)."""

    shape = (3, 32, 32)
    class Params(_FileImages.Params):
        data_dir: str | None = DATA_DIR
        val_fraction: float = VAL_FRACTION

    params: Params

    def _splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        folder = _folder(self.params.data_dir, "cifar10").resolve()
        return _cifar(folder, self.params.val_fraction, data_fingerprint_of(self, folder))


# --- MNIST ----------------------------------------------------------------------------------


def _idx(folder: Path, stem: str, dims: int) -> np.ndarray:
    """An idx file (plain or .gz) with `dims` dimensions of unsigned bytes."""
    for path in (folder / stem, folder / f"{stem}.gz"):
        if path.is_file():
            break
    else:
        raise ValueError(f"mnist: {folder} has no {stem}[.gz]; expected {MNIST_LAYOUT}")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as error:
        raise ValueError(f"mnist: {path} is not a readable gzip file ({error})") from None
    header = 4 + 4 * dims
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != IDX_MAGIC[dims]:
        raise ValueError(f"mnist: {path} starts with {magic!r}, not the idx magic number "
                         f"{IDX_MAGIC[dims]} of a {dims}-D byte array; expected {MNIST_LAYOUT}")
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    if len(raw) != header + int(np.prod(shape)):
        raise ValueError(f"mnist: {path} declares {shape} values but holds "
                         f"{len(raw) - header} bytes of data (truncated?)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


@cache
def _mnist(folder: Path, fraction: float, fingerprint: str
           ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The splits of the files under `folder` (`fingerprint` tells changed files apart)."""
    loaded = {}
    for split, (images_stem, labels_stem) in MNIST_FILES.items():
        images, labels = _idx(folder, images_stem, 3), _idx(folder, labels_stem, 1)
        if len(images) != len(labels):
            raise ValueError(f"mnist: {images_stem} holds {len(images)} images but "
                             f"{labels_stem} {len(labels)} labels")
        loaded[split] = (torch.as_tensor(images.copy(), dtype=torch.long).unsqueeze(1),
                         torch.as_tensor(labels.copy(), dtype=torch.long))
    return {**_holdout(*loaded["train"], fraction), "test": loaded["test"]}


class Mnist(_FileImages):
    """MNIST from its idx files (see the module docstring)."""

    shape = (1, 28, 28)
    class Params(_FileImages.Params):
        data_dir: str | None = DATA_DIR
        val_fraction: float = VAL_FRACTION

    params: Params

    def _splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        folder = _folder(self.params.data_dir, "mnist").resolve()
        return _mnist(folder, self.params.val_fraction, data_fingerprint_of(self, folder))


# --- a folder of images ---------------------------------------------------------------------


def split_of(name: str) -> str:
    """The fixed split of an image file: by a hash of its name, 10% test, 10% validation."""
    bucket = int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def _read_image(path: Path, crop: int | None, size: int, grey: bool) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image = opened.convert("L" if grey else "RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"imagefolder: {path} is not a readable PNG or JPEG ({error})") from None
    except Image.DecompressionBombError as error:  # a small file that decodes to gigabytes
        raise ValueError(f"imagefolder: {path} is refused as a possible decompression bomb "
                         f"({error}); shrink the image") from None
    if crop is not None:
        width, height = image.size
        if crop > min(width, height):
            raise ValueError(f"imagefolder: {path} is {width}x{height}, smaller than crop {crop}")
        left, top = (width - crop) // 2, (height - crop) // 2
        image = image.crop((left, top, left + crop, top + crop))
    image = image.resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if grey else array.transpose(2, 0, 1)


@cache
def _folder_images(folder: Path, crop: int | None, size: int, grey: bool, fingerprint: str
                   ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The splits of the images under `folder` (`fingerprint` tells changed files apart)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"imagefolder: no PNG or JPEG files under {folder}")
    channels = 1 if grey else 3
    by_split: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    for path in files:
        by_split[split_of(path.relative_to(folder).as_posix())].append(
            _read_image(path, crop, size, grey))
    splits = {}
    for split, images in by_split.items():
        stacked = (np.stack(images) if images else
                   np.zeros((0, channels, size, size), dtype=np.uint8))
        tensor = torch.as_tensor(stacked, dtype=torch.long)
        splits[split] = (tensor, torch.zeros(len(tensor), dtype=torch.long))
    return splits


class ImageFolder(_FileImages):
    """Every PNG/JPEG under `data_dir` (see the module docstring); labels are all 0."""

    class Params(_FileImages.Params):
        data_dir: str | None = DATA_DIR
        size: int = Param(32, "side of the square images after resizing", ge=1)
        crop: int | None = Param(None, "centre crop side before resizing (None: no crop; "
                                 "distribution smoothing's CelebA uses 140)", ge=1)
        channels: Literal[1, 3] = Param(3, "3 for RGB, 1 for grey")

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.shape = (self.params.channels, self.params.size, self.params.size)

    def _splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        folder = _folder(self.params.data_dir, "imagefolder").resolve()
        return _folder_images(folder, self.params.crop, self.params.size,
                              self.params.channels == 1, data_fingerprint_of(self, folder))
