"""Character-level text in the text8 alphabet: 27 symbols, 0 = space, 1..26 = a..z.

Two datasets, both examples ``(length,)`` of integers in 0..26 (modality "text";
bits/dim is bits per character):

* `Text` (``text``), embedded: the English help texts that ship with Python
  (``pydoc_data.topics.topics``), each topic normalised (see `normalise`),
  then joined with spaces in sorted-key order, then cut into non-overlapping
  chunks of `length` characters (default 64; the tail shorter than a chunk is
  dropped). Many topics repeat others verbatim (``for`` is a section of
  ``compound``, ``customization`` of ``specialnames``, ``if`` equals ``else``),
  which would put train text in the test split, so a topic whose text lies
  inside another topic's is left out (of equal ones the first key is kept).
  Chunk i goes to the test split when ``i % 10 == 9`` and to train otherwise:
  a fixed 90/10 split with no randomness. The text is whatever the running
  Python ships (about 300k characters on 3.11), so chunk counts can differ
  slightly between Python versions.
* `Text8` (``text8``): Matt Mahoney's text8 file, read from `data_dir` (see its
  docstring), with the standard split of the ARDM paper and earlier work.

`normalise` lowercases and turns every character outside a..z into a space
(runs collapsed, ends stripped). text8 itself was made by a different filter
(it spells digits out, for one) but is already in this alphabet, so it is read
as is.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from arbench import Dataset, Param

ALPHABET = " abcdefghijklmnopqrstuvwxyz"
NUM_LEVELS = len(ALPHABET)  # 27
TEST_EVERY = 10  # Text: chunk i is a test chunk when i % TEST_EVERY == TEST_EVERY - 1

_INVALID = 255
_BYTE_TO_INDEX = np.full(256, _INVALID, dtype=np.uint8)
for _index, _char in enumerate(ALPHABET):
    _BYTE_TO_INDEX[ord(_char)] = _index


def normalise(text: str) -> str:
    """Lowercase; every character outside a..z becomes a space; runs of spaces collapse; strip."""
    return re.sub(r"[^a-z]+", " ", text.lower()).strip()


def encode(text: str) -> torch.Tensor:
    """Indices ``(len(text),)`` (LongTensor) of a string already in the alphabet."""
    raw = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    codes = _BYTE_TO_INDEX[raw]
    bad = np.flatnonzero(codes == _INVALID)
    if len(bad):
        char = next(c for c in text if c not in ALPHABET)
        raise ValueError(f"encode: {char!r} is not in the text8 alphabet (space and a..z); "
                         f"call normalise(text) first")
    return torch.from_numpy(codes.astype(np.int64))


def decode(indices: torch.Tensor | np.ndarray | list[int]) -> str:
    """The string of a 1-D sequence of indices in 0..26."""
    codes = torch.as_tensor(indices)
    if codes.dim() != 1:
        raise ValueError(f"decode takes a 1-D sequence, not shape {tuple(codes.shape)}; "
                         f"use decode_batch for (N, length)")
    if len(codes) and (int(codes.min()) < 0 or int(codes.max()) >= NUM_LEVELS):
        raise ValueError(f"decode: indices must lie in 0..{NUM_LEVELS - 1}")
    return "".join(ALPHABET[i] for i in codes.tolist())


def decode_batch(indices: torch.Tensor | np.ndarray) -> list[str]:
    """The strings of a batch ``(N, length)`` of index sequences."""
    codes = torch.as_tensor(indices)
    if codes.dim() != 2:
        raise ValueError(f"decode_batch takes (N, length), not shape {tuple(codes.shape)}")
    return [decode(row) for row in codes]


def _chunks(codes: np.ndarray, length: int) -> torch.Tensor:
    """Non-overlapping chunks ``(N, length)`` of a 1-D code array; the short tail is dropped."""
    count = len(codes) // length
    return torch.from_numpy(codes[: count * length].reshape(count, length).astype(np.int64))


@cache
def embedded_text() -> str:
    """The normalised text behind `Text`: Python's help topics, each once (see the module doc)."""
    from pydoc_data.topics import topics

    keys = sorted(topics)
    texts = {key: normalise(topics[key]) for key in keys}

    def repeated(key: str) -> bool:  # inside another topic, or equal to an earlier one
        return any(texts[key] in texts[other] and (texts[key] != texts[other] or other < key)
                   for other in keys if other != key)

    return " ".join(texts[key] for key in keys if texts[key] and not repeated(key))


@cache
def _embedded_chunks(length: int) -> dict[str, torch.Tensor]:
    chunks = _chunks(encode(embedded_text()).numpy(), length)
    position = torch.arange(len(chunks)) % TEST_EVERY
    is_test = position == TEST_EVERY - 1
    # validation: one train chunk in ten, kept in train (the shipped model was trained on
    # all of it), for tuning samplers only
    return {"train": chunks[~is_test], "validation": chunks[position == TEST_EVERY - 2],
            "test": chunks[is_test]}


class Text(Dataset):
    """Chunks of `length` characters of Python's own help texts, 90/10 fixed split."""

    name = "text"
    modality = "text"
    num_levels = NUM_LEVELS
    class Params(Dataset.Params):
        length: int = Param(64, "characters per example", ge=1)

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.length = self.params.length
        self.shape = (self.length,)

    def load(self, split: str) -> torch.Tensor:
        self.check_split(split)
        return _embedded_chunks(self.length)[split].clone()

    def text(self, split: str) -> str:
        """The split's examples as one string, in order: what a model with its own
        tokenizer reads (the `hf` family), cut into examples of its tokens."""
        codes = self.load(split).flatten().numpy()
        return bytes(np.frombuffer(ALPHABET.encode(), dtype=np.uint8)[codes]).decode()


def _text8_file(data_dir: str | Path | None) -> Path:
    how = "pass --data-dir PATH or --set text8.data_dir=PATH"
    if data_dir is None:
        raise ValueError(f"text8 needs the text8 file (unzipped, 100M characters): {how}, "
                         f"PATH being the file or a folder containing a file named 'text8'")
    path = Path(data_dir).expanduser()
    if path.is_dir():
        path = path / "text8"
    if not path.is_file():
        raise FileNotFoundError(
            f"text8: no file {path}; {how} with the unzipped text8 file or a folder holding it"
        )
    return path


@cache
def _text8_codes(path: Path, size: int, mtime_ns: int) -> np.ndarray:
    """The whole file as uint8 indices 0..26 (size and mtime key the cache)."""
    raw = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    codes = _BYTE_TO_INDEX[raw]
    bad = np.flatnonzero(codes == _INVALID)
    if len(bad):
        offset = int(bad[0])
        raise ValueError(
            f"text8: {path} has byte {raw[offset]:#04x} ({bytes([raw[offset]])!r}) at offset "
            f"{offset}, outside the text8 alphabet (space and a..z); {len(bad)} such byte(s) in all"
        )
    return codes


class Text8(Text):
    """text8 (``data_dir``: the file, or a folder with a file named ``text8``), in chunks.

    Split as is standard: of the file's n characters the first 90% are train,
    the next 5% validation and the last 5% test, i.e. 90M/5M/5M
    for the real 100M-character file; a shorter (or longer) file is split in the
    same proportions, at ``n * 90 // 100`` and ``n * 95 // 100``. Each split is
    cut into non-overlapping chunks of `length` characters (default 250, as in
    the ARDM paper), the short tail dropped. `max_chars` keeps only the first
    `max_chars` characters of each split, for quick runs. The file is read once
    per process and held as one byte per character.
    """

    name = "text8"
    class Params(Text.Params):
        data_dir: str | None = Param(None, "folder holding the text8 file")
        length: int = Param(250, "characters per example", ge=1)
        max_chars: int | None = Param(None, "keep only the first N characters of each split", ge=1)

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.path = _text8_file(self.params.data_dir)
        max_chars = self.params.max_chars
        if max_chars is not None and int(max_chars) < 1:
            raise ValueError(f"text8: max_chars must be a positive number or None, not {max_chars}")

    def boundaries(self) -> dict[str, tuple[int, int]]:
        """Each split's character range [start, stop) in the file."""
        n = self.path.stat().st_size
        train_end, valid_end = n * 90 // 100, n * 95 // 100
        return {"train": (0, train_end), "validation": (train_end, valid_end),
                "test": (valid_end, n)}

    def load(self, split: str) -> torch.Tensor:
        self.check_split(split)
        stat = self.path.stat()
        codes = _text8_codes(self.path.resolve(), stat.st_size, stat.st_mtime_ns)
        start, stop = self.boundaries()[split]
        if self.params.max_chars is not None:
            stop = min(stop, start + int(self.params.max_chars))
        return _chunks(codes[start:stop], self.length)
