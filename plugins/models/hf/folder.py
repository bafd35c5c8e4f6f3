"""A local Hugging Face folder, opened safely: local files only, no code from the folder.

A folder is what ``save_pretrained`` writes: ``config.json``, safetensors weights and
the tokenizer's files. Before transformers reads anything, the folder is checked: it
exists, its config names a built-in causal language-model architecture, and neither
its config nor its tokenizer's asks for remote code (``auto_map``): arbench never runs
code shipped in a model folder, so such a folder is refused with what to do instead.
Loading passes ``local_files_only=True`` and ``trust_remote_code=False`` (and
``use_safetensors=True``: no pickled weights), so nothing is downloaded either.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import torch

from arbench import CheckpointError, Incompatible, sha256_of

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
REMOTE_CODE_FILES = ("config.json", "tokenizer_config.json")


def _json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path} cannot be read as JSON ({error})") from error
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{path} holds no JSON object")
    return loaded


def check_folder(path: Path, option: str = "hf.path") -> dict[str, Any]:
    """The folder's config, after the checks that run nothing from it: a clear error for
    transformers missing, a missing folder, a folder without a config, a config or
    tokenizer that asks for remote code, and a model that is not a causal language model."""
    try:
        import transformers  # noqa: F401
    except ImportError as error:
        raise Incompatible("Hugging Face models need the hf extra: pip install "
                           "'arbench[hf]'") from error
    if not path.is_dir():
        raise CheckpointError(f"{option}={path}: no such folder; give a folder written by "
                              "save_pretrained (config.json, safetensors weights, tokenizer)")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{option}={path} has no config.json: not a save_pretrained "
                              "folder of a transformers model")
    for name in REMOTE_CODE_FILES:
        if (path / name).is_file() and "auto_map" in _json(path / name):
            raise Incompatible(
                f"{path / name} asks for remote code (auto_map): arbench never runs code "
                "shipped in a model folder. Use a model whose architecture transformers "
                "ships (its model_type), or convert the weights to one")
    config = _json(path / "config.json")
    if not causal(config):
        names = ", ".join(config.get("architectures") or []) or config.get("model_type", "?")
        raise Incompatible(f"{option}={path} is not a causal language model ({names}): "
                           "arbench samples models with a ...ForCausalLM head")
    return config


def causal(config: dict[str, Any]) -> bool:
    """Whether the config's architectures include one of transformers' causal-LM classes."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    known = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    heads = {name for value in known for name in ([value] if isinstance(value, str) else value)}
    return bool(set(config.get("architectures") or []) & heads)


def open_folder(path: Path, dtype: str, device: torch.device,
                option: str = "hf.path") -> tuple[Any, Any]:
    """The model (in eval mode, on `device`, in `dtype`) and tokenizer of a checked folder."""
    check_folder(path, option)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    safe = {"local_files_only": True, "trust_remote_code": False}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **safe)
        net: Any = AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[dtype],
                                                        use_safetensors=True, **safe)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{option}={path} cannot be loaded by transformers: {error}") \
            from error
    return net.to(device).eval(), tokenizer


@cache
def _folder_sha256(path: Path, stamp: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in stamp:
        digest.update(f"{name}\t{sha256_of(path / name)}\n".encode())
    return digest.hexdigest()


def folder_sha256(path: Path) -> str:
    """sha256 over the name and content of every file in the folder (weights, config,
    tokenizer): a record is current only for the same files. Read once per process
    while the files' sizes and times stay the same."""
    files = sorted(p for p in path.rglob("*") if p.is_file())
    stamp = tuple((p.relative_to(path).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in files)
    return _folder_sha256(path, stamp)
