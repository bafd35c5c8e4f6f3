"""Training in several processes: torchrun's process group, each rank's part of a batch.

``torchrun --nproc_per_node N -m arbench train ...`` (or ``arbench train --nproc N``,
which runs it) starts N copies of the command with RANK, WORLD_SIZE, LOCAL_RANK and
the rendezvous address in their environment. `process_group` joins them (gloo on the
CPU, NCCL on CUDA, one GPU per local rank). The training loop then wraps each step in
PyTorch's DistributedDataParallel: every rank draws the same global minibatch from the
recipe's generator and computes its strided share of the rows (rank r takes rows r,
r + N, ...: DistributedSampler's rule), so N processes reach the weights one process
reaches with the same ``batch_size`` (a test checks it). Rank 0 alone writes
checkpoints, partial states and progress.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, redirect_stdout
from typing import Any

import torch
import torch.distributed as dist

from arbench.training.processes import exit_with_parent, usable_cores

__all__ = ["any_rank", "check_nproc", "is_main", "launched", "mean_across", "process_group",
           "rank", "shard", "world_size"]


def launched() -> bool:
    """Whether torchrun started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank() -> int:
    """This process's rank: the process group's, or torchrun's RANK outside the group (0
    for a process torchrun did not start, whatever RANK another launcher set)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0")) if launched() else 0


def world_size() -> int:
    """How many processes train together (1 outside torchrun)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """Whether this process writes files and prints progress (rank 0, or the only one)."""
    return rank() == 0


@contextmanager
def process_group(device: str) -> Iterator[str]:
    """Join torchrun's process group for the block, if torchrun started this process;
    yields the device this rank trains on (``cuda:LOCAL_RANK`` for cuda). Ranks other
    than 0 print nothing to stdout in the block (errors still reach stderr)."""
    if not launched():
        yield device
        return
    exit_with_parent()  # a worker outlives no torchrun that failed or was killed
    backend = "gloo"
    if device.startswith("cuda"):
        device, backend = f"cuda:{os.environ.get('LOCAL_RANK', '0')}", "nccl"
        torch.cuda.set_device(device)
    dist.init_process_group(backend)
    try:
        with ExitStack() as stack:
            if rank():
                stack.enter_context(redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
            yield device
    finally:
        dist.destroy_process_group()


def check_nproc(nproc: int, device: str) -> None:
    """A ValueError when `nproc` processes cannot each have a core (CPU) or a GPU (cuda)
    here: checked before torchrun starts any of them."""
    if device.startswith("cuda"):
        present, unit = torch.cuda.device_count(), "GPU(s)"
    else:
        present, unit = usable_cores(), "core(s) this process may use"
    if nproc > present:
        raise ValueError(f"--nproc {nproc}: this machine has {present} {unit}, one per "
                         f"process; give --nproc {present} or fewer")


def shard(batch: Any) -> Any:
    """This rank's rows of a minibatch (a tensor or a tuple of tensors of one length)."""
    if world_size() == 1:
        return batch
    if isinstance(batch, torch.Tensor):
        return batch[rank()::world_size()]
    return tuple(part[rank()::world_size()] for part in batch)


def mean_across(value: float) -> float:
    """The mean of `value` over the ranks (the value itself in one process)."""
    if world_size() == 1:
        return value
    total = torch.tensor([value], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(total)
    return float(total.item()) / world_size()


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is true on any (so that all ranks stop together)."""
    if world_size() == 1:
        return flag
    value = torch.tensor([int(flag)], device=_collective_device())
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def _collective_device() -> torch.device:
    """NCCL reduces CUDA tensors only; gloo CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
