"""The one training loop every model recipe uses (`arbench train`).

A recipe says what differs: the network, its optimiser and schedule, the loss
of a minibatch, the validation score and where minibatches come from. The
loop does the rest the same way for every model: training periods (epochs, or
``eval_every`` steps), validation after each, the best state kept (early
stopping after `patience` periods without improvement), a time limit, a
progress line with throughput and peak memory, and resuming: after every
period it writes a partial-state file beside the checkpoint (network,
optimiser, schedule, weight average, best state, the recipe's generator and
torch's RNG), so a rerun of the same command after an interruption goes on
from the last period and ends where an uninterrupted run would have, on this
device or another. `save_checkpoint` removes the partial files once the
checkpoint is written.

The options every recipe takes (`LOOP_DEFAULTS`, ``--set KEY=VALUE``): ``device``,
``amp`` (bf16 or fp16 autocast; fp16 with a GradScaler), ``ema`` (the decay of an
exponential moving average of the weights: validated, selected and saved instead of
the raw weights), ``accumulate`` (each minibatch in that many parts, for memory;
the same gradient) and ``clip_grad``. Under torchrun the loop wraps each step in
DistributedDataParallel (`arbench.training.distributed`).

A recipe::

    loop = TrainingLoop(net, optimizer, loss=lambda batch, period: net.nll(batch),
                        evaluate=lambda period: bits(net, val), periods=epochs,
                        batches=lambda period: epoch_batches(train, 64, generator),
                        patience=15, generator=generator, resume=partial_path(out),
                        **loop_options(opts))
    result = loop.run()  # net now holds the best state
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from arbench.training import distributed
from arbench.training.meter import ProgressBar, TrainingMeter
from arbench.training.minibatches import (
    epoch_batches,
    holdout,
    random_batches,
    split_train_val,
    step_periods,
)

__all__ = ["LOOP_DEFAULTS", "TrainingLoop", "TrainingResult", "check_loop_options",
           "epoch_batches", "holdout", "loop_options", "random_batches", "split_train_val",
           "step_periods"]

Score = float | tuple[float, dict[str, Any]]
"""A validation score (lower is better), optionally with details kept for the best."""

LOOP_DEFAULTS: dict[str, Any] = {"device": None, "amp": "off", "ema": 0.0, "accumulate": 1,
                                 "clip_grad": None}
"""Training options every recipe takes; a recipe's own defaults or presets may change them
(``ema`` for a paper preset, ``clip_grad`` for a recipe that needs it)."""

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_loop_options(opts: dict[str, Any]) -> None:
    """A ValueError naming the bad loop option, before any data is loaded."""
    if opts["amp"] not in ("off", *AMP_DTYPES):
        raise ValueError(f"amp={opts['amp']!r}: expected off, bf16 or fp16")
    if not 0.0 <= float(opts["ema"]) < 1.0:
        raise ValueError(f"ema={opts['ema']}: the decay of the weight average, in [0, 1) "
                         "(0 turns it off)")
    if int(opts["accumulate"]) != opts["accumulate"] or opts["accumulate"] < 1:
        raise ValueError(f"accumulate={opts['accumulate']}: a whole number of parts, >= 1")
    if opts["clip_grad"] is not None and not float(opts["clip_grad"]) > 0:
        raise ValueError(f"clip_grad={opts['clip_grad']}: a positive gradient norm")


def loop_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The `TrainingLoop` arguments among a recipe's training options."""
    return {key: opts[key] for key in LOOP_DEFAULTS}


@dataclass
class TrainingResult:
    """What the loop found: the best score, its period and details, how it ended, and
    what training cost (`cost`: device, processes, examples/s, peak memory)."""

    score: float
    period: int
    details: dict[str, Any]
    periods_run: int
    stopped_by: Literal["periods", "patience", "max_seconds"]
    seconds: float
    resumed_from: int = 0
    cost: dict[str, Any] = field(default_factory=dict)


class _Step(nn.Module):
    """One minibatch's loss as a module: DistributedDataParallel synchronises gradients
    for the parameters of the module whose forward it calls, here the recipe's closure."""

    def __init__(self, net: nn.Module, loss: Callable[[Any, int], torch.Tensor]) -> None:
        super().__init__()
        self.net, self.loss = net, loss

    def forward(self, batch: Any, period: int) -> torch.Tensor:
        return self.loss(batch, period)


@dataclass
class TrainingLoop:
    """Minimise `loss` over `periods` periods of `batches`, validating after each.

    `loss(batch, period)` returns the mean over the batch's examples; `evaluate(period)`
    a `Score` (run in eval mode without gradients); `batches(period)` the period's
    minibatches (lazily, so the generator is drawn in the same order as a hand-written
    loop). `schedule` steps after every optimiser step, or once per period with
    ``schedule_per="period"``. Periods before `select_from` are trained and scored but
    never selected (a warm-up phase). `resume` names the partial-state file;
    `fingerprint` (the recipe's options) must match for a resume (the device may
    differ). `splittable` says the loss draws nothing from `generator` (its randomness
    comes with the batch), so a minibatch can be split across processes exactly.
    """

    net: nn.Module
    optimizer: torch.optim.Optimizer
    loss: Callable[[Any, int], torch.Tensor]
    evaluate: Callable[[int], Score]
    batches: Callable[[int], Iterable[Any]]
    periods: int
    schedule: Any = None
    schedule_per: Literal["step", "period"] = "step"
    patience: int | None = None
    select_from: int = 1
    max_seconds: float = math.inf
    generator: torch.Generator | None = None
    resume: Path | None = None
    fingerprint: dict[str, Any] = field(default_factory=dict)
    label: str = "epoch"
    log_every: int = 1
    splittable: bool = False
    device: torch.device | str | None = None
    amp: Literal["off", "bf16", "fp16"] = "off"
    ema: float = 0.0
    accumulate: int = 1
    clip_grad: float | None = None

    def run(self) -> TrainingResult:
        """Train; leave `net` in eval mode holding the best state and return the result."""
        device = self._place()
        average = (AveragedModel(self.net, multi_avg_fn=get_ema_multi_avg_fn(self.ema))
                   if self.ema > 0 else None)
        best: dict[str, Any] = {"score": math.inf, "period": 0, "details": {},
                                "state": self._weights(average)}
        first, spent = 1, 0.0
        restored = self._restore(average)
        if restored is not None:
            best, first, spent = restored["best"], restored["period"] + 1, restored["seconds"]
            if restored["finished"]:
                return self._finish(best, restored["result"])
        resumed_from = first - 1
        step = self._step_module(device)
        scaler = torch.amp.GradScaler(device.type) if self.amp == "fp16" else None
        meter = TrainingMeter(device)
        start, stopped, period = time.perf_counter() - spent, "periods", first - 1
        with ProgressBar(self.label, self.periods, first - 1) as advance:
            for period in range(first, self.periods + 1):
                train_loss, out_of_time = self._train_period(period, step, scaler, average,
                                                             meter, start)
                train_loss = distributed.mean_across(train_loss)
                score = self._score(period, average)
                improved = period >= self.select_from and score[0] < best["score"]
                if improved:
                    best = {"score": score[0], "period": period, "details": score[1],
                            "state": self._weights(average)}
                if period % self.log_every == 0 or period == self.periods or out_of_time:
                    self._log(period, train_loss, score, improved,
                              time.perf_counter() - start, meter)
                advance()
                if out_of_time:
                    stopped = "max_seconds"
                elif (self.patience is not None and period >= self.select_from
                      and period - max(best["period"], self.select_from - 1) >= self.patience):
                    stopped = "patience"
                self._save(period, best, time.perf_counter() - start, None, average)
                if stopped != "periods":
                    break
        result = TrainingResult(score=best["score"], period=best["period"],
                                details=best["details"], periods_run=period,
                                stopped_by=stopped,  # type: ignore[arg-type]
                                seconds=round(time.perf_counter() - start, 1),
                                resumed_from=resumed_from, cost=meter.summary())
        self._save(period, best, result.seconds, result, average)
        return self._finish(best, result)

    def _place(self) -> torch.device:
        """Move the network to `device` (parameters keep their identity, so the
        optimiser built on them still holds them); refuse what cannot run here."""
        device = torch.device(self.device) if self.device else next(self.net.parameters()).device
        if distributed.world_size() > 1 and not self.splittable:
            raise ValueError("this recipe draws random numbers inside its loss, so its "
                             "minibatches cannot be split across processes exactly; train it "
                             "in one process (without torchrun or --nproc)")
        self.net.to(device)
        return device

    def _step_module(self, device: torch.device) -> nn.Module:
        step = _Step(self.net, self.loss)
        if distributed.world_size() == 1:
            return step
        return DistributedDataParallel(
            step, device_ids=[device.index] if device.type == "cuda" else None)

    def _train_period(self, period: int, step: nn.Module, scaler: Any,
                      average: AveragedModel | None, meter: TrainingMeter, start: float
                      ) -> tuple[float, bool]:
        self.net.train()
        total, count = 0.0, 0
        for batch in self.batches(period):
            meter.start()
            total += self._optimizer_step(batch, period, step, scaler)
            if average is not None:
                average.update_parameters(self.net)
            if self.schedule is not None and self.schedule_per == "step":
                self.schedule.step()
            count += 1
            meter.stop(_rows(batch))
            out_of_time = time.perf_counter() - start > self.max_seconds
            if math.isfinite(self.max_seconds) and distributed.any_rank(out_of_time):
                return total / count, True
        if self.schedule is not None and self.schedule_per == "period":
            self.schedule.step()
        return total / max(count, 1), False

    def _optimizer_step(self, batch: Any, period: int, step: nn.Module, scaler: Any) -> float:
        """One optimiser step on `batch`: this rank's rows, in `accumulate` parts, each
        loss weighted by its share of the whole batch, so the averaged gradient is the
        whole batch's. A rank with no rows (a batch smaller than the ranks) runs one row
        at weight 0: the mean loss of no rows is NaN, and a recipe's loss may not take an
        empty batch. Returns this rank's mean loss."""
        device = next(self.net.parameters()).device
        rows, local = _rows(batch), distributed.shard(batch)
        weight = 1.0 if _rows(local) else 0.0
        parts = _split(local if weight else _head(batch), self.accumulate)
        self.optimizer.zero_grad()
        total = 0.0
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            deferred = (step.no_sync() if isinstance(step, DistributedDataParallel) and not last
                        else nullcontext())  # gradients reduced once, after the last part
            with deferred:
                with (torch.autocast(device.type, dtype=AMP_DTYPES[self.amp])
                      if self.amp != "off" else nullcontext()):
                    loss = step(_to(part, device), period)
                share = weight * _rows(part) * distributed.world_size() / rows
                scaled = loss.float() * share
                (scaler.scale(scaled) if scaler is not None else scaled).backward()
            total += loss.item() * _rows(part)
        if scaler is not None:
            scaler.unscale_(self.optimizer)
        if self.clip_grad is not None:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.clip_grad)
        if scaler is not None:
            scaler.step(self.optimizer)
            scaler.update()
        else:
            self.optimizer.step()
        return total / max(1, sum(_rows(part) for part in parts))

    def _weights(self, average: AveragedModel | None) -> dict[str, Any]:
        """A copy of what is validated and saved: the network's state, with the averaged
        parameters in place of the raw ones when `ema` is on."""
        state = copy.deepcopy(self.net.state_dict())
        if average is not None:
            state.update({name: value.detach().clone()
                          for name, value in average.module.named_parameters()})
        return state

    def _score(self, period: int, average: AveragedModel | None
               ) -> tuple[float, dict[str, Any]]:
        live = copy.deepcopy(self.net.state_dict()) if average is not None else None
        if average is not None:
            self.net.load_state_dict(self._weights(average))
        self.net.eval()
        with torch.no_grad():
            score = self.evaluate(period)
        if live is not None:
            self.net.load_state_dict(live)
        value, details = score if isinstance(score, tuple) else (float(score), {})
        return distributed.mean_across(value), details

    def _log(self, period: int, train_loss: float, score: tuple[float, dict[str, Any]],
             improved: bool, seconds: float, meter: TrainingMeter) -> None:
        if not distributed.is_main():
            return
        details = "".join(f"  {key} {_short(value)}" for key, value in score[1].items())
        print(f"{self.label} {period:5d}/{self.periods}  train {train_loss:.4f}  "
              f"val {score[0]:.4f}{details}  {seconds:.0f}s  {meter.line()}"
              f"{'  *' if improved else ''}", flush=True)

    def _finish(self, best: dict[str, Any], result: TrainingResult) -> TrainingResult:
        self.net.load_state_dict(best["state"])
        self.net.eval()
        return result

    def _save(self, period: int, best: dict[str, Any], seconds: float,
              result: TrainingResult | None, average: AveragedModel | None) -> None:
        """The partial state after `period`, written atomically by rank 0 (a kill
        mid-write keeps the previous one)."""
        if self.resume is None or not distributed.is_main():
            return
        state = {
            "fingerprint": _placement_free(self.fingerprint), "period": period,
            "seconds": seconds, "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "average": average.state_dict() if average is not None else None,
            "best": best, "torch_rng": torch.get_rng_state(),
            "generator": self.generator.get_state() if self.generator is not None else None,
            "finished": result is not None, "result": result.__dict__ if result else None,
        }
        self.resume.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.resume.with_suffix(".tmp")
        torch.save(state, temporary)
        temporary.replace(self.resume)

    def _restore(self, average: AveragedModel | None) -> dict[str, Any] | None:
        """The partial state of an interrupted run of the same recipe (from any device),
        loaded into the network, optimiser, schedule, average and generators; None to
        start afresh."""
        if self.resume is None or not self.resume.exists():
            return None
        try:
            state: dict[str, Any] = torch.load(self.resume, map_location="cpu",
                                               weights_only=True)
        except Exception as error:  # a torn or foreign file: start afresh, say so
            print(f"ignoring unreadable partial state {self.resume}: {error}", file=sys.stderr)
            return None
        if state["fingerprint"] != _placement_free(self.fingerprint):
            print(f"ignoring partial state {self.resume}: it was written with other options",
                  file=sys.stderr)
            return None
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])  # moves its state to the params'
        if self.schedule is not None and state["schedule"] is not None:
            self.schedule.load_state_dict(state["schedule"])
        if average is not None and state["average"] is not None:
            average.load_state_dict(state["average"])
        torch.set_rng_state(state["torch_rng"])
        if self.generator is not None and state["generator"] is not None:
            self.generator.set_state(state["generator"])
        if state["finished"]:
            state["result"] = TrainingResult(**state["result"])
        elif distributed.is_main():
            print(f"resuming from {self.label} {state['period']} ({self.resume})", flush=True)
        return state


def _placement_free(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """The options that decide the result: where it runs does not."""
    return {key: value for key, value in fingerprint.items() if key != "device"}


def _rows(batch: Any) -> int:
    return len(batch if isinstance(batch, torch.Tensor) else batch[0])


def _head(batch: Any) -> Any:
    """The first row of a batch (a tensor or a tuple of tensors)."""
    return batch[:1] if isinstance(batch, torch.Tensor) else tuple(part[:1] for part in batch)


def _split(batch: Any, parts: int) -> list[Any]:
    """`batch` in up to `parts` runs of rows (fewer when it has fewer rows)."""
    if parts == 1:
        return [batch]
    if isinstance(batch, torch.Tensor):
        return list(batch.tensor_split(min(parts, len(batch))))
    pieces = [part.tensor_split(min(parts, _rows(batch))) for part in batch]
    return list(zip(*pieces, strict=True))


def _to(batch: Any, device: torch.device) -> Any:
    """`batch` on `device`; through pinned memory to a GPU."""
    if isinstance(batch, tuple):
        return tuple(_to(part, device) for part in batch)
    if device.type == "cuda" and batch.device.type == "cpu":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


def _short(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
