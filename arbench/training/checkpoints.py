"""Checkpoints with a sha256 sidecar: verified before loading, loaded safely.

``name.pt`` holds ``{"config": dict, "state_dict": ...}``; ``name.json`` beside
it records the sha256, the command that rebuilds it and its held-out scores.
The cell key uses the sidecar's sha256, so reading it never imports torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arbench.errors import CheckpointError

if TYPE_CHECKING:
    import torch

PARTIAL_SUFFIX = ".partial"
UNVERIFIED = "unverified:"  # prefixes the sha256 of a checkpoint without a sidecar


def sha256_of(path: Path) -> str:
    """The file's sha256, read in blocks (checkpoints run to gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shipped_dir(plugin: type) -> Path:
    """The ``checkpoints/`` folder beside the module that defines `plugin`: a model family
    ships its checkpoints (and their sidecars) in its own folder, built-in or third-party."""
    return Path(sys.modules[plugin.__module__].__file__ or ".").parent / "checkpoints"


def sidecar(path: Path) -> Path:
    """The sidecar of checkpoint `path`: the JSON beside it with its sha256 and the command
    that rebuilds it."""
    return path.with_suffix(".json")


def recorded_sha256(path: Path) -> str:
    """The sha256 written in the sidecar, or the file's own hash for a user checkpoint.

    A folder (one checkpoint per source) hashes its checkpoints' hashes.
    """
    if path.is_dir():
        files = sorted(path.glob("*.pt"))
        return hashlib.sha256(" ".join(recorded_sha256(f) for f in files).encode()).hexdigest()
    meta = sidecar(path)
    if meta.exists():
        return _sidecar_sha256(meta)
    if path.exists():
        return UNVERIFIED + sha256_of(path)
    return ""


def _sidecar_sha256(meta: Path) -> str:
    """The sha256 a sidecar records, or a CheckpointError saying what is wrong with it."""
    try:
        sha = json.loads(meta.read_text()).get("sha256")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        sha = None
    if not isinstance(sha, str) or len(sha) != 64:
        raise CheckpointError(
            f"{meta} is not a valid checkpoint sidecar (no 'sha256' of 64 hex digits); "
            "rebuild the checkpoint with `arbench train`, or delete the sidecar to use the "
            "file unverified")
    return sha


def training_options(options: dict[str, Any], defaults: dict[str, Any],
                     presets: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """`defaults` overridden by `options` (`arbench train --set KEY=VALUE`); an unknown
    key is an error listing the known ones, before any data is loaded. Every recipe
    also takes the training loop's options (`arbench.training.loop.LOOP_DEFAULTS`: device,
    amp, ema, accumulate, clip_grad). With `presets`, option ``preset`` names a set of
    defaults (``--set preset=tiny``) that explicit options still override."""
    from arbench.training.loop import LOOP_DEFAULTS, check_loop_options

    known = {**LOOP_DEFAULTS, **defaults}
    known = {**known, "preset": defaults.get("preset")} if presets else known
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown training option(s) {unknown}; known: "
                         f"{', '.join(sorted(known))}")
    preset = options.get("preset", known.get("preset"))
    if presets and preset is not None:
        if preset not in presets:
            raise ValueError(f"unknown preset {preset!r}; known: {', '.join(presets)}")
        known = {**known, **presets[preset]}
    opts = {**known, **options}
    check_loop_options(opts)
    return opts


def rebuild_command(model: str, dataset: str, seed: int, options: dict[str, Any]) -> str:
    """The `arbench train` command that rebuilds a checkpoint (kept in its sidecar); the
    device it was trained on is not part of it."""
    command = f"arbench train {model} --dataset {dataset}"
    command += f" --seed {seed}" if seed else ""
    return command + "".join(f" --set {key}={value}" for key, value in sorted(options.items())
                             if key != "device")


def check_writable(path: Path) -> Path:
    """`path` when a checkpoint can be written there, checked before training starts (so
    no epoch is spent on a run that cannot keep its weights); a CheckpointError saying why
    not: a folder at `path`, a file where a folder must be, or a folder it cannot write."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"--out {path} is a folder; give the checkpoint's file path, "
                              f"e.g. {path / 'model.pt'}")
    existing = next(parent for parent in path.parents if parent.exists())
    if not existing.is_dir():
        raise CheckpointError(f"--out {path} is under {existing}, which is a file, not a "
                              "folder; give another path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as error:
        raise CheckpointError(f"--out {path}: cannot write in {path.parent} "
                              f"({error.strerror or error}); give a writable path") from None
    return path


def save_checkpoint(
    path: Path, config: dict[str, Any], state_dict: dict[str, Any], metadata: dict[str, Any]
) -> Path:
    """Write checkpoint and sidecar atomically; `metadata` should hold the rebuild command.
    Under torchrun only rank 0 writes (the others hold the same weights)."""
    import torch

    from arbench.training.distributed import is_main

    if not is_main():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        temporary = Path(handle.name)
        try:
            torch.save({"config": config, "state_dict": state_dict}, handle)
        except BaseException:  # a full disk: no stray file
            temporary.unlink(missing_ok=True)
            raise
    try:
        os.chmod(temporary, 0o644)  # NamedTemporaryFile creates 0600
        os.replace(temporary, path)
    except BaseException:  # a folder made at `path` meanwhile: no stray file
        temporary.unlink(missing_ok=True)
        raise
    record = {"sha256": sha256_of(path), "config": config, **metadata}
    sidecar(path).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    for leftover in partial_files(path):  # the training loop's resume state is spent
        leftover.unlink()
    return path


def partial_files(path: Path) -> list[Path]:
    """The training loop's partial-state files for checkpoint `path` (`partial_path`)."""
    return sorted(path.parent.glob(f"{path.stem}{PARTIAL_SUFFIX}*.pt"))


def partial_path(path: Path, phase: str = "") -> Path:
    """Where the training loop keeps its resume state for checkpoint `path` (one file
    per training phase); `save_checkpoint` removes it."""
    path = Path(path)
    return path.with_name(f"{path.stem}{PARTIAL_SUFFIX}{'-' + phase if phase else ''}.pt")


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Verify `path` against its sidecar's sha256 and load it with ``weights_only=True``."""
    import torch

    if not path.exists():
        raise CheckpointError(f"checkpoint {path} not found; pass the path of your own "
                              "checkpoint, or rebuild it with `arbench train`")
    meta = sidecar(path)
    if meta.exists():
        expected = _sidecar_sha256(meta)
        actual = sha256_of(path)
        if actual != expected:
            raise CheckpointError(
                f"checkpoint {path} has sha256 {actual[:12]}… but {meta.name} records "
                f"{expected[:12]}…; the file is corrupt or was replaced without retraining."
            )
    try:
        state: dict[str, Any] = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"checkpoint {path} holds Python objects besides tensors and plain containers, "
            "which arbench never unpickles (that could run any code). Save it as "
            "{'config': dict, 'state_dict': tensors}, as `arbench train` does.") from None
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"checkpoint {path} is not a readable torch file ({error})"
                              ) from None
    if not meta.exists():
        warnings.warn(f"checkpoint {path} has no sidecar: loaded unverified (its sha256 is "
                      "recorded, and reports mark the model 'unverified')", stacklevel=2)
    return state


def load_for(path: Path | None, dataset: Any, device: torch.device | str = "cpu",
             fits: Callable[[tuple[int, ...], tuple[int, ...]], bool] | None = None,
             levels: bool = True) -> dict[str, Any]:
    """`load_checkpoint`, then the one check that it was trained on data like `dataset`'s:
    the same number of levels (unless `levels` is False: a model of continuous values)
    and the same shape (unless `fits(trained, shape)` allows more; a config without a
    shape, an order-agnostic model's, must match the number of values ``dims``). `path`
    is what arbench resolved (`arbench.plugin.specs.ModelSpec.checkpoint_path`)."""
    if path is None:
        raise CheckpointError(f"no checkpoint was given for dataset '{dataset.name}'; pass "
                              "--set MODEL.checkpoint=FILE")
    state = load_checkpoint(path, device)
    config = state["config"]
    shape = tuple(dataset.shape)
    if config.get("shape") is None:
        same_shape = config.get("dims") == math.prod(shape)
        described = f"{config.get('dims')} values"
    else:
        trained = tuple(config["shape"])
        same_shape = (fits or tuple.__eq__)(trained, shape)
        described = f"data of shape {trained}"
    same_levels = not levels or config.get("num_levels") == dataset.num_levels
    if not (same_shape and same_levels):
        raise CheckpointError(
            f"checkpoint {path} was trained on {described} with {config.get('num_levels')} "
            f"levels; dataset '{dataset.name}' has {shape} with {dataset.num_levels}")
    return state
