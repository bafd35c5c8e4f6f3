"""Checkpoints: trained by a model's recipe (alone or under torchrun), or imported from
another project's released weights."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from arbench.errors import ArbenchError, UsageError


def train(model: str, dataset: str, out: Path | None = None, seed: int = 0,
          options: Sequence[str] = (), data_dir: Path | None = None,
          device: str | None = None) -> Path:
    """Train `model` on `dataset` with the recipe's ``KEY=VALUE`` `options` (``DATASET.KEY``
    ones go to the dataset) on `device` (default cuda when available) and write its
    verified checkpoint: the shipped one unless `out` is given. Under torchrun every
    process runs this and rank 0 writes (`arbench.training.distributed`)."""
    from arbench.plugin.registry import registry
    from arbench.plugin.specs import DatasetSpec, ModelSpec
    from arbench.run.flags import parse_assignments
    from arbench.run.runner import resolve_device, seed_everything
    from arbench.training import distributed

    model_spec = registry().get(ModelSpec, model)
    dataset_spec = registry().get(DatasetSpec, dataset)
    parsed = parse_assignments(list(options), "--set")
    if out is None and data_dir is not None:
        raise UsageError("give --out PATH for a checkpoint of your own data")
    try:
        device = resolve_device(device if device is not None else parsed.get("device"))
        with distributed.process_group(device) as rank_device:
            parsed["device"] = rank_device
            prefix = f"{dataset}."
            dataset_params = {key.removeprefix(prefix): parsed.pop(key)
                              for key in [key for key in parsed if key.startswith(prefix)]}
            target = out or model_spec.checkpoint_path(dataset, {})
            if target is None:
                raise UsageError(f"{model} ships no checkpoint to rebuild; give --out PATH")
            if data_dir:
                dataset_params["data_dir"] = str(data_dir.resolve())
            data = dataset_spec.load()(**dataset_params)
            data.name = dataset
            seed_everything(seed)
            return model_spec.load().train(data, out=target, seed=seed, family=model, **parsed)
    except (ValueError, ArbenchError) as error:  # bad options, data or shape
        raise UsageError(f"{model} on {dataset}: {error}") from error


def is_main_process() -> bool:
    """Whether this process prints: rank 0 of a torchrun job, or a lone process."""
    from arbench.training.distributed import is_main

    return is_main()


def exec_torchrun(nproc: int, train_args: list[str]) -> NoReturn:
    """Replace this process by ``torchrun --standalone --nproc_per_node N -m arbench
    train ...`` (torch's own launcher, run by this Python)."""
    import os
    import sys

    from arbench.training.distributed import launched

    if launched():
        raise UsageError("--nproc inside torchrun: give one or the other")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "arbench", "train", *train_args]
    sys.stdout.flush()
    os.execv(sys.executable, command)


def import_released(model: str, source: Path, out: Path, options: Sequence[str] = ()) -> Path:
    """Convert another project's released weights under `source` into an arbench
    checkpoint (a bank folder) at `out`, mapping every parameter or refusing."""
    from arbench.plugin.registry import registry
    from arbench.plugin.specs import ModelSpec
    from arbench.run.flags import parse_assignments

    if not source.exists():
        raise UsageError(f"{source} does not exist; give the folder of the released files "
                         "as downloaded")
    if source.is_dir() and not any(source.iterdir()):
        raise UsageError(f"{source} is empty; give the folder of the released files as "
                         "downloaded")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is an existing file; the import writes a folder (a "
                         "bank of checkpoints): give a new path")
    model_class = registry().get(ModelSpec, model).load()
    try:
        return model_class.import_released(source, out, family=model,
                                           **parse_assignments(list(options), "--set"))
    except ValueError as error:
        raise UsageError(str(error)) from error
    except OSError as error:  # an unwritable --out, a full disk
        raise UsageError(f"cannot write {error.filename or out} ({error.strerror or error}); "
                         "give a writable --out with free space") from error
