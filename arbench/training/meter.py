"""What a training run reports while it runs: throughput, peak memory, a progress bar."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from arbench.training import distributed

__all__ = ["TrainingMeter", "ProgressBar"]


class TrainingMeter:
    """Training throughput (examples of the whole batch per second of optimiser steps,
    CUDA-synchronised, after the first step: a warm-up that allocates and picks kernels)
    and peak memory (CUDA allocations, or the process's peak RSS)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.began = device, 0.0
        self.steps, self.examples, self.seconds = 0, 0, 0.0
        self.first: tuple[int, float] = (0, 0.0)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    def start(self) -> None:
        """Start timing a step (CUDA-synchronised)."""
        self._sync()
        self.began = time.perf_counter()

    def stop(self, examples: int) -> None:
        """Stop timing a step of `examples` examples; the warm-up step is not counted."""
        self._sync()
        seconds = time.perf_counter() - self.began
        if self.steps == 0:
            self.first = (examples, seconds)
        else:
            self.examples, self.seconds = self.examples + examples, self.seconds + seconds
        self.steps += 1

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def rate(self) -> float:
        """Examples per second after the warm-up step (with it, when it was the only)."""
        examples, seconds = (self.examples, self.seconds) if self.seconds else self.first
        return examples / seconds if seconds else 0.0

    def peak_mib(self) -> float:
        """The peak memory so far: CUDA's allocations, or the process's peak resident set."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux

    def line(self) -> str:
        """Throughput and peak memory as a progress line's tail."""
        return f"{self.rate():.1f} ex/s  peak {self.peak_mib():.0f} MiB"

    def summary(self) -> dict[str, Any]:
        """What training cost, for the checkpoint's sidecar: device, processes, examples/s,
        peak memory."""
        return {"device": str(self.device), "processes": distributed.world_size(),
                "examples_per_second": round(self.rate(), 2),
                "timed_steps": max(self.steps - 1, 1) if self.steps else 0,
                "peak_memory_mib": round(self.peak_mib(), 1),
                "memory_measure": ("cuda max_memory_allocated" if self.device.type == "cuda"
                                   else "process peak RSS")}


class ProgressBar:
    """A rich progress bar with an ETA over the periods, on rank 0's terminal only (logs
    and CI get the plain lines)."""

    def __init__(self, label: str, total: int, done: int) -> None:
        self.label, self.total, self.done = label, total, done
        self.bar: Any = None

    def __enter__(self) -> Callable[[], None]:
        if sys.stderr.isatty() and distributed.is_main():
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=True)
            self.bar.start()
            task = self.bar.add_task(f"{self.label}s", total=self.total, completed=self.done)
            return lambda: self.bar.advance(task)
        return lambda: None

    def __exit__(self, *_: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
