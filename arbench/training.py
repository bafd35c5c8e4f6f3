"""The one training loop every model recipe uses (`arbench train`).

A recipe says what differs: the network, its optimiser and schedule, the loss
of a minibatch, the validation score and where minibatches come from. The
loop does the rest the same way for every model: training periods (epochs, or
``eval_every`` steps), validation after each, the best state kept (early
stopping after `patience` periods without improvement), a time limit, a
progress bar with an ETA, mixed precision on CUDA, and resuming: after every
period it writes a partial-state file beside the checkpoint (network,
optimiser, schedule, best state, the recipe's generator and torch's RNG), so a
rerun of the same command after an interruption goes on from the last period
and ends where an uninterrupted run would have. `save_checkpoint` removes the
partial files once the checkpoint is written.

A recipe::

    loop = TrainingLoop(net, optimizer, loss=lambda batch, period: net.nll(batch),
                        evaluate=lambda period: bits(net, val), periods=epochs,
                        batches=lambda period: epoch_batches(train, 64, generator),
                        patience=15, generator=generator, resume=partial_path(out))
    result = loop.run()  # net now holds the best state
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from arbench.checkpoints import partial_path

__all__ = ["TrainingLoop", "TrainingResult", "epoch_batches", "holdout", "partial_path",
           "random_batches", "split_train_val", "step_periods"]

Score = float | tuple[float, dict[str, Any]]
"""A validation score (lower is better), optionally with details kept for the best."""

def holdout(n: int, fraction: float, generator: torch.Generator, max_val: int | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, validation) of a random `fraction` of n examples held out for
    validation (at least 1, at most `max_val`): tuning never sees the test split."""
    order = torch.randperm(n, generator=generator)
    n_val = max(1, round(fraction * n))
    n_val = min(n_val, max_val) if max_val is not None else n_val
    return order[n_val:], order[:n_val]


def split_train_val(data: torch.Tensor, fraction: float, generator: torch.Generator,
                    max_val: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`data` split by `holdout`: (train, validation)."""
    train, val = holdout(len(data), fraction, generator, max_val)
    return data[train], data[val]


def epoch_batches(data: torch.Tensor, batch_size: int, generator: torch.Generator,
                  *labels: torch.Tensor) -> Iterator[Any]:
    """One epoch in a random order, drawn when the epoch starts; with `labels`, tuples."""
    for idx in torch.randperm(len(data), generator=generator).split(batch_size):
        yield (data[idx], *(y[idx] for y in labels)) if labels else data[idx]


def random_batches(data: torch.Tensor, batch_size: int, count: int,
                   generator: torch.Generator) -> Iterator[torch.Tensor]:
    """`count` minibatches drawn with replacement, each when it is needed."""
    for _ in range(count):
        yield data[torch.randint(len(data), (batch_size,), generator=generator)]


def step_periods(steps: int, eval_every: int) -> list[int]:
    """Steps per period when validating every `eval_every` steps and after the last."""
    return [min(eval_every, steps - start) for start in range(0, steps, eval_every)]


@dataclass
class TrainingResult:
    """What the loop found: the best score, its period and details, and how it ended."""

    score: float
    period: int
    details: dict[str, Any]
    periods_run: int
    stopped_by: Literal["periods", "patience", "max_seconds"]
    seconds: float
    resumed_from: int = 0


@dataclass
class TrainingLoop:
    """Minimise `loss` over `periods` periods of `batches`, validating after each.

    `loss(batch, period)` returns a scalar; `evaluate(period)` a `Score` (run in
    eval mode without gradients); `batches(period)` the period's minibatches
    (lazily, so the generator is drawn in the same order as a hand-written
    loop). `schedule` steps after every optimiser step, or once per period with
    ``schedule_per="period"``. Periods before `select_from` are trained and
    scored but never selected (a warm-up phase). `resume` names the partial-state
    file; `fingerprint` (the recipe's options) must match for a resume.
    """

    net: nn.Module
    optimizer: torch.optim.Optimizer
    loss: Callable[[Any, int], torch.Tensor]
    evaluate: Callable[[int], Score]
    batches: Callable[[int], Iterable[Any]]
    periods: int
    schedule: Any = None
    schedule_per: Literal["step", "period"] = "step"
    clip_grad: float | None = None
    patience: int | None = None
    select_from: int = 1
    max_seconds: float = math.inf
    generator: torch.Generator | None = None
    resume: Path | None = None
    fingerprint: dict[str, Any] = field(default_factory=dict)
    label: str = "epoch"
    log_every: int = 1
    amp: bool = False

    def run(self) -> TrainingResult:
        """Train; leave `net` in eval mode holding the best state and return the result."""
        best: dict[str, Any] = {"score": math.inf, "period": 0, "details": {},
                                "state": copy.deepcopy(self.net.state_dict())}
        first, spent = 1, 0.0
        restored = self._restore()
        if restored is not None:
            best, first, spent = restored["best"], restored["period"] + 1, restored["seconds"]
            if restored["finished"]:
                return self._finish(best, restored["result"])
        resumed_from = first - 1
        device = next(self.net.parameters()).device
        scaler = torch.amp.GradScaler("cuda") if self.amp and device.type == "cuda" else None
        start, stopped, period = time.perf_counter() - spent, "periods", first - 1
        with _progress(self.label, self.periods, first - 1) as advance:
            for period in range(first, self.periods + 1):
                train_loss, out_of_time = self._train_period(period, device, scaler, start)
                score = self._score(period)
                improved = period >= self.select_from and score[0] < best["score"]
                if improved:
                    best = {"score": score[0], "period": period, "details": score[1],
                            "state": copy.deepcopy(self.net.state_dict())}
                if period % self.log_every == 0 or period == self.periods or out_of_time:
                    self._log(period, train_loss, score, improved, time.perf_counter() - start)
                advance()
                if out_of_time:
                    stopped = "max_seconds"
                elif (self.patience is not None and period >= self.select_from
                      and period - max(best["period"], self.select_from - 1) >= self.patience):
                    stopped = "patience"
                self._save(period, best, time.perf_counter() - start, None)
                if stopped != "periods":
                    break
        result = TrainingResult(score=best["score"], period=best["period"],
                                details=best["details"], periods_run=period,
                                stopped_by=stopped,  # type: ignore[arg-type]
                                seconds=round(time.perf_counter() - start, 1),
                                resumed_from=resumed_from)
        self._save(period, best, result.seconds, result)
        return self._finish(best, result)

    def _train_period(self, period: int, device: torch.device, scaler: Any,
                      start: float) -> tuple[float, bool]:
        self.net.train()
        total, count = 0.0, 0
        for batch in self.batches(period):
            with torch.autocast(device.type, enabled=self.amp):
                loss = self.loss(_to(batch, device), period)
            self.optimizer.zero_grad()
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(self.optimizer)
            else:
                loss.backward()
            if self.clip_grad is not None:
                nn.utils.clip_grad_norm_(self.net.parameters(), self.clip_grad)
            if scaler is not None:
                scaler.step(self.optimizer)
                scaler.update()
            else:
                self.optimizer.step()
            if self.schedule is not None and self.schedule_per == "step":
                self.schedule.step()
            total, count = total + loss.item(), count + 1
            if time.perf_counter() - start > self.max_seconds:
                return total / count, True
        if self.schedule is not None and self.schedule_per == "period":
            self.schedule.step()
        return total / max(count, 1), False

    def _score(self, period: int) -> tuple[float, dict[str, Any]]:
        self.net.eval()
        with torch.no_grad():
            score = self.evaluate(period)
        return score if isinstance(score, tuple) else (float(score), {})

    def _log(self, period: int, train_loss: float, score: tuple[float, dict[str, Any]],
             improved: bool, seconds: float) -> None:
        details = "".join(f"  {key} {_short(value)}" for key, value in score[1].items())
        print(f"{self.label} {period:5d}/{self.periods}  train {train_loss:.4f}  "
              f"val {score[0]:.4f}{details}  {seconds:.0f}s{'  *' if improved else ''}",
              flush=True)

    def _finish(self, best: dict[str, Any], result: TrainingResult) -> TrainingResult:
        self.net.load_state_dict(best["state"])
        self.net.eval()
        return result

    def _save(self, period: int, best: dict[str, Any], seconds: float,
              result: TrainingResult | None) -> None:
        """The partial state after `period`, written atomically (a kill mid-write keeps
        the previous one)."""
        if self.resume is None:
            return
        state = {
            "fingerprint": self.fingerprint, "period": period, "seconds": seconds,
            "net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "best": best, "torch_rng": torch.get_rng_state(),
            "generator": self.generator.get_state() if self.generator is not None else None,
            "finished": result is not None, "result": result.__dict__ if result else None,
        }
        self.resume.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.resume.with_suffix(".tmp")
        torch.save(state, temporary)
        temporary.replace(self.resume)

    def _restore(self) -> dict[str, Any] | None:
        """The partial state of an interrupted run of the same recipe, loaded into the
        network, optimiser, schedule and generators; None to start afresh."""
        if self.resume is None or not self.resume.exists():
            return None
        try:
            state: dict[str, Any] = torch.load(self.resume, weights_only=True)
        except Exception as error:  # a torn or foreign file: start afresh, say so
            print(f"ignoring unreadable partial state {self.resume}: {error}", file=sys.stderr)
            return None
        if state["fingerprint"] != self.fingerprint:
            print(f"ignoring partial state {self.resume}: it was written with other options",
                  file=sys.stderr)
            return None
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.schedule is not None and state["schedule"] is not None:
            self.schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        if self.generator is not None and state["generator"] is not None:
            self.generator.set_state(state["generator"])
        if state["finished"]:
            state["result"] = TrainingResult(**state["result"])
        else:
            print(f"resuming from {self.label} {state['period']} ({self.resume})", flush=True)
        return state


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    return tuple(part.to(device) for part in batch)


def _short(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


class _progress:
    """A rich progress bar with an ETA over the periods, on a terminal only (logs and
    CI get the plain lines)."""

    def __init__(self, label: str, total: int, done: int) -> None:
        self.label, self.total, self.done = label, total, done
        self.bar: Any = None

    def __enter__(self) -> Callable[[], None]:
        if sys.stderr.isatty():
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
