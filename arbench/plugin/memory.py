"""Refusing an allocation that cannot fit, before it is made.

A size parameter can ask for more memory than a machine has (an n-gram draft's table
grows as levels^order); torch then either ends in a raw allocator error after minutes or
makes the machine swap. A plugin states what it is about to allocate with
`require_memory`, which compares it with the device's free memory and raises `TooLarge`
naming the parameter to change: the cell fails in one line, and a rerun with a smaller
value, or on a bigger machine, retries it.
"""

from __future__ import annotations

import psutil
import torch

from arbench.errors import TooLarge

HEADROOM = 0.8  # of the free memory an allocation may take: the rest is the run's own


def free_bytes(device: torch.device) -> int:
    """Bytes the device can still allocate: CUDA's free memory, or the host's available."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return int(psutil.virtual_memory().available)


def require_memory(nbytes: float, device: torch.device, what: str, smaller: str) -> None:
    """Raise `TooLarge` when `what` (about `nbytes`) cannot fit `device` now; `smaller`
    says which parameter makes it smaller."""
    free = free_bytes(device)
    if nbytes > HEADROOM * free:
        raise TooLarge(f"{what} needs about {_size(nbytes)}, more than the "
                       f"{_size(HEADROOM * free)} {device.type} memory free for it; {smaller}")


def _size(nbytes: float) -> str:
    """Bytes in the largest unit that keeps 1 or more of it: 812 MB, 8.1 GB, 3.2e+04 TB."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes / 1e3:.3g} kB"
