"""Checkpoints: trained by a model's recipe (alone or under torchrun), or imported from
another project's released weights."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
    target = training_target(model, dataset, out, data_dir)
    try:
        device = resolve_device(device if device is not None else parsed.get("device"))
        with distributed.process_group(device) as rank_device:
            parsed["device"] = rank_device
            prefix = f"{dataset}."
            dataset_params = {key.removeprefix(prefix): parsed.pop(key)
                              for key in [key for key in parsed if key.startswith(prefix)]}
            if data_dir:
                dataset_params["data_dir"] = str(data_dir.resolve())
            data = dataset_spec.load()(**dataset_params)
            data.name = dataset
            seed_everything(seed)
            return model_spec.load().train(data, out=target, seed=seed, family=model, **parsed)
    except (ValueError, ArbenchError) as error:  # bad options, data or shape
        raise UsageError(f"{model} on {dataset}: {error}") from error


def training_target(model: str, dataset: str, out: Path | None = None,
                    data_dir: Path | None = None) -> Path:
    """Where `train` writes the checkpoint (`out`, else the shipped one), checked writable
    before any process starts or any epoch is spent."""
    from arbench.plugin.registry import registry
    from arbench.plugin.specs import ModelSpec
    from arbench.training.checkpoints import check_writable

    if out is None and data_dir is not None:
        raise UsageError("give --out PATH for a checkpoint of your own data")
    target = out or registry().get(ModelSpec, model).checkpoint_path(dataset, {})
    if target is None:
        raise UsageError(f"{model} ships no checkpoint to rebuild; give --out PATH")
    try:
        return check_writable(target)
    except ArbenchError as error:
        raise UsageError(str(error)) from None


def is_main_process() -> bool:
    """Whether this process prints: rank 0 of a torchrun job, or a lone process."""
    from arbench.training.distributed import is_main

    return is_main()


def run_torchrun(nproc: int, train_args: list[str], device: str | None = None,
                 options: Sequence[str] = ()) -> int:
    """Run ``torchrun --standalone --nproc_per_node N -m arbench train ...`` (torch's own
    launcher, run by this Python) once N processes fit here on `device` (or the
    ``device=`` of the training `options`); its exit code. Torchrun ends with this
    process, and its workers with it (`arbench.training.processes.exit_with_parent`)."""
    import subprocess
    import sys

    from arbench.run.flags import parse_assignments
    from arbench.run.runner import resolve_device
    from arbench.training.distributed import check_nproc, launched
    from arbench.training.processes import signal_at_parent_death

    if launched():
        raise UsageError("--nproc inside torchrun: give one or the other")
    try:
        check_nproc(nproc, resolve_device(
            device or parse_assignments(list(options), "--set").get("device")))
    except ValueError as error:
        raise UsageError(str(error)) from None
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "arbench", "train", *train_args]
    sys.stdout.flush()
    return subprocess.run(command, check=False, preexec_fn=signal_at_parent_death).returncode


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
