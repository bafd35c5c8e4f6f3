"""Character-level text: the text8 alphabet, the embedded `text` dataset, `text8` from a file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arbench import DatasetSpec, TaskSpec
from arbench.plugin.registry import build_registry
from arbench_plugins.datasets.text import (
    NUM_LEVELS,
    Text,
    Text8,
    decode,
    decode_batch,
    embedded_text,
    encode,
    normalise,
)


def test_normalise_lowercases_maps_the_rest_to_single_spaces_and_strips():
    assert normalise("  Hello, World!\n\t3 times--ÉCOLE  ") == "hello world times cole"
    assert normalise("already normal text") == "already normal text"
    assert normalise("1234 !!") == ""


def test_encode_decode_round_trip():
    text = "the quick brown fox jumps over the lazy dog"
    codes = encode(text)
    assert codes.dtype == torch.long and codes.shape == (len(text),)
    assert codes[:4].tolist() == [20, 8, 5, 0]  # t h e, space
    assert decode(codes) == text
    assert decode_batch(torch.stack([codes, codes.flip(0)])) == [text, text[::-1]]
    assert decode(encode("")) == ""


def test_encode_and_decode_reject_what_is_outside_the_alphabet():
    with pytest.raises(ValueError, match="normalise"):
        encode("Capital")
    with pytest.raises(ValueError, match="0..26"):
        decode(torch.tensor([0, 27]))
    with pytest.raises(ValueError, match="decode_batch"):
        decode(torch.zeros(2, 3, dtype=torch.long))


def test_embedded_text_chunks_and_fixed_split():
    data = Text()
    assert (data.modality, data.shape, data.num_levels, data.dims) == ("text", (64,), 27, 64)
    train, test = data.load("train"), data.load("test")
    for split in (train, test):
        assert split.dtype == torch.long and split.shape[1] == 64
        assert int(split.min()) >= 0 and int(split.max()) < NUM_LEVELS
    assert len(train) > 4000 and len(test) > 400
    assert len(train) == pytest.approx(9 * len(test), abs=9)
    assert torch.equal(train, Text().load("train")) and torch.equal(test, Text().load("test"))
    train_rows = {tuple(row) for row in train.tolist()}
    assert not any(tuple(row) in train_rows for row in test.tolist())
    assert "statement" in " ".join(decode_batch(train[:50]))
    with pytest.raises(ValueError, match="'train', 'validation' and 'test'"):
        data.load("valid")


def test_embedded_text_leaves_out_topics_repeated_in_others():
    from pydoc_data.topics import topics

    text = embedded_text()
    assert 200_000 < len(text) < 400_000 and text == normalise(text)

    # `for` is a section of `compound`, and `if` equals `else`: each text appears once
    for key in ("for", "if"):
        assert text.count(normalise(topics[key])) == 1


def test_embedded_text_length_parameter():
    short = Text(length=16)
    assert short.shape == (16,) and short.load("test").shape[1] == 16
    count = len(short.load("train")) + len(short.load("test"))
    assert count == len(embedded_text()) // 16
    with pytest.raises(ValueError, match="is not an int >= 1"):
        Text(length=0)


def _write_text8(path, n: int = 20_000) -> str:
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list(" abcdefghijklmnopqrstuvwxyz"), size=n))
    path.write_text(text)
    return text


def test_text8_reads_a_file_or_a_folder_and_splits_90_5_5(tmp_path):
    text = _write_text8(tmp_path / "text8")
    for data_dir in (tmp_path, tmp_path / "text8"):
        data = Text8(data_dir=str(data_dir), length=100)
        assert data.shape == (100,) and data.num_levels == 27 and data.modality == "text"
        assert data.boundaries() == {"train": (0, 18_000), "validation": (18_000, 19_000),
                                     "test": (19_000, 20_000)}
        train, valid, test = data.load("train"), data.load("validation"), data.load("test")
        assert (train.shape, valid.shape, test.shape) == ((180, 100), (10, 100), (10, 100))
        assert train.dtype == torch.long
        assert decode(train[0]) == text[:100]
        assert decode(test[-1]) == text[-100:]
    assert Text8(data_dir=str(tmp_path)).shape == (250,)  # the ARDM chunk length
    assert Text8(data_dir=str(tmp_path)).load("train").shape == (72, 250)  # 18000 // 250


def test_text8_max_chars_keeps_the_start_of_each_split(tmp_path):
    text = _write_text8(tmp_path / "text8")
    data = Text8(data_dir=str(tmp_path), length=100, max_chars=550)
    assert data.load("train").shape == (5, 100)
    test = data.load("test")
    assert test.shape == (5, 100) and decode(test[0]) == text[19_000:19_100]
    whole = Text8(data_dir=str(tmp_path), length=100, max_chars=10**9)
    assert whole.load("validation").shape == (10, 100)


def test_text8_errors_say_what_to_pass(tmp_path):
    with pytest.raises(ValueError, match=r"--data-dir PATH or --set text8.data_dir=PATH"):
        Text8()
    with pytest.raises(FileNotFoundError, match="--data-dir PATH"):
        Text8(data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="text8"):
        Text8(data_dir=str(tmp_path))  # a folder without a file named text8
    (tmp_path / "text8").write_bytes(b"hello world\nbye")
    data = Text8(data_dir=str(tmp_path), length=4)
    with pytest.raises(ValueError, match=r"0x0a.*offset 11"):
        data.load("train")
    with pytest.raises(ValueError, match="'train', 'validation' and 'test'"):
        data.load("valid")


def test_text_datasets_are_registered_for_density():
    registry = build_registry()
    modalities = {registry.get(DatasetSpec, name).data_modality() for name in ("text", "text8")}
    assert modalities == {"text"}
    assert "text" in registry.get(TaskSpec, "density").modalities
