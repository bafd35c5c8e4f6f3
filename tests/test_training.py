"""The one training loop: best state, early stopping, time limit, resume after a kill,
weight averaging, gradient accumulation, mixed precision and the cost it reports."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from arbench.training.checkpoints import (
    partial_files,
    partial_path,
    save_checkpoint,
    training_options,
)
from arbench.training.loop import (
    TrainingLoop,
    TrainingResult,
    epoch_batches,
    random_batches,
    step_periods,
)

DATA = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
TARGET = DATA @ torch.tensor([1.0, -2.0, 0.5]) + 0.3


class Interrupted(Exception):
    pass


def loop(resume=None, scores=None, interrupt_at=None, **options) -> TrainingLoop:
    """A linear regression with dropout (torch's RNG) and shuffled batches (a generator),
    so a resume that lost either state would end elsewhere."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    net = nn.Sequential(nn.Dropout(0.2), nn.Linear(3, 1))
    indices = torch.arange(len(DATA))

    def loss(idx, period):
        if period == interrupt_at:
            raise Interrupted
        return ((net(DATA[idx]).squeeze(1) - TARGET[idx]) ** 2).mean()

    def evaluate(period):
        if scores is not None:
            return scores[period - 1]
        return ((net(DATA).squeeze(1) - TARGET) ** 2).mean().item(), {"period": period}

    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    return TrainingLoop(net, optimizer, loss=loss, evaluate=evaluate,
                        periods=options.pop("periods", 6),
                        batches=lambda _: epoch_batches(indices, 8, generator),
                        schedule=torch.optim.lr_scheduler.StepLR(optimizer, 5),
                        generator=generator, resume=resume,
                        fingerprint={"lr": 0.05}, **options)


def weights(training: TrainingLoop) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in training.net.parameters()])


def test_an_interrupted_run_resumes_and_ends_where_an_uninterrupted_one_does(tmp_path, capsys):
    whole = loop()
    expected = whole.run()
    resume = partial_path(tmp_path / "model.pt")
    with pytest.raises(Interrupted):
        loop(resume, interrupt_at=4).run()
    resumed_loop = loop(resume)
    resumed = resumed_loop.run()
    assert "resuming from epoch 3" in capsys.readouterr().out
    assert resumed.resumed_from == 3
    assert (resumed.score, resumed.period, resumed.details) == (
        expected.score, expected.period, expected.details)
    torch.testing.assert_close(weights(resumed_loop), weights(whole), rtol=0, atol=0)
    # a finished run's partial state gives the same result at once, without training
    again = loop(resume, interrupt_at=1)
    assert again.run().score == expected.score
    torch.testing.assert_close(weights(again), weights(whole), rtol=0, atol=0)


def test_the_best_state_is_kept_and_patience_stops_training():
    scores = [3.0, 1.0, 2.0, 2.5, 0.5, 0.1]
    training = loop(scores=scores, patience=2)
    result = training.run()
    assert (result.period, result.score, result.periods_run) == (2, 1.0, 4)
    assert result.stopped_by == "patience"
    # periods before select_from are trained and scored but never chosen
    result = loop(scores=scores, select_from=3).run()
    assert (result.period, result.score, result.stopped_by) == (6, 0.1, "periods")


def test_the_net_ends_holding_its_best_state_not_its_last():
    best = loop(scores=[2.0, 1.0, 3.0, 4.0])
    seen = {}
    original = best.evaluate
    best.evaluate = lambda period: (seen.setdefault(period, weights(best).clone()),
                                    original(period))[1]
    best.periods = 4
    best.run()
    torch.testing.assert_close(weights(best), seen[2])


def test_a_time_limit_stops_after_the_batch_that_crossed_it():
    result = loop(max_seconds=0.0).run()
    assert (result.periods_run, result.stopped_by) == (1, "max_seconds")


def test_partial_state_from_other_options_is_ignored(tmp_path, capsys):
    resume = partial_path(tmp_path / "model.pt")
    with pytest.raises(Interrupted):
        loop(resume, interrupt_at=3).run()
    other = loop(resume)
    other.fingerprint = {"lr": 0.1}
    assert other.run().resumed_from == 0
    assert "written with other options" in capsys.readouterr().err


def test_saving_the_checkpoint_removes_the_partial_state(tmp_path):
    out = tmp_path / "model.pt"
    training = loop(partial_path(out))
    training.run()
    assert partial_files(out) == [partial_path(out)]
    save_checkpoint(out, {}, training.net.state_dict(), {"command": "test"})
    assert partial_files(out) == []


def test_step_based_periods_cover_every_step_and_validate_after_the_last():
    assert step_periods(10, 4) == [4, 4, 2]
    generator = torch.Generator().manual_seed(0)
    assert [len(b) for b in random_batches(DATA, 5, 3, generator)] == [5, 5, 5]


def test_accumulating_parts_of_each_batch_gives_the_same_weights():
    whole, parts = loop(periods=3), loop(periods=3, accumulate=3)  # 8 rows: 3, 3 and 2
    for training in (whole, parts):
        training.net[0].p = 0.0  # no dropout: its masks would be drawn per part
    whole.run()
    parts.run()
    torch.testing.assert_close(weights(parts), weights(whole), rtol=0, atol=1e-6)


def test_the_weight_average_is_what_is_validated_selected_and_kept():
    decay = 0.9
    training = loop(periods=2, ema=decay, scores=[2.0, 1.0])
    live: list[torch.Tensor] = []
    training.optimizer.register_step_post_hook(
        lambda *_: live.append(weights(training).clone()))
    training.run()
    average = live[0]  # the first update copies the weights
    for current in live[1:]:
        average = decay * average + (1 - decay) * current
    assert len(live) == 16  # 2 epochs of 8 batches
    torch.testing.assert_close(weights(training), average)
    assert not torch.allclose(weights(training), live[-1])


def test_an_interrupted_run_with_a_weight_average_resumes_to_the_same_weights(tmp_path):
    whole = loop(ema=0.8)
    whole.run()
    resume = partial_path(tmp_path / "model.pt")
    with pytest.raises(Interrupted):
        loop(resume, interrupt_at=4, ema=0.8).run()
    resumed = loop(resume, ema=0.8)
    resumed.run()
    torch.testing.assert_close(weights(resumed), weights(whole), rtol=0, atol=0)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_like_full_precision_and_reports_its_cost(amp):
    def trained(**options: object) -> TrainingResult:
        training = loop(periods=6, **options)  # seeds the dropout masks
        training.schedule = None  # fp16's scaler skips its first steps while it finds its
        return training.run()     # scale: without a schedule they cost no learning rate

    reference, result = trained(), trained(amp=amp)
    assert result.score == pytest.approx(reference.score, rel=0.02)  # about 0.52 from 5.9
    assert result.cost["device"] == "cpu" and result.cost["processes"] == 1
    assert result.cost["examples_per_second"] > 0 and result.cost["peak_memory_mib"] > 0


@pytest.mark.parametrize(("option", "message"), [
    ({"amp": "fp8"}, "expected off, bf16 or fp16"), ({"ema": 1.0}, "in \\[0, 1\\)"),
    ({"accumulate": 0}, "whole number of parts"), ({"clip_grad": -1.0}, "positive"),
])
def test_bad_loop_options_are_refused_before_any_data_is_loaded(option, message):
    with pytest.raises(ValueError, match=message):
        training_options(option, {"lr": 0.1})
