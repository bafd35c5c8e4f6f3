"""Processes on this machine: the cores one may use, and ending with its parent.

Both the local executor's workers and torchrun's training workers need them: a worker
should not outnumber the cores it shares (oversubscribed cores run 4-8x slower), and a
worker whose launcher is gone (killed with -9, or torchrun failing to start its other
workers) must exit at once instead of holding its memory unseen. A process of ours
watches its parent (`exit_with_parent`); a child that runs none of our code (torchrun)
is signalled by the kernel (`signal_at_parent_death`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
import time

PARENT_POLL_SECONDS = 0.5


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def exit_with_parent(parent: int | None = None) -> None:
    """Exit this process (code 1) within `PARENT_POLL_SECONDS` of its parent's end: the
    process `parent` (its pid, taken by the parent before the start, so that a parent
    already gone is seen too), by default the one that is its parent now."""
    parent = os.getppid() if parent is None else parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def signal_at_parent_death() -> None:
    """Have the kernel send this process SIGTERM when its parent dies (Linux; elsewhere
    nothing): for a child that runs no code of ours, such as torchrun, as a `preexec_fn`."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
