"""The one training loop: best state, early stopping, time limit, resume after a kill."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from arbench.checkpoints import partial_files, partial_path, save_checkpoint
from arbench.training import TrainingLoop, epoch_batches, random_batches, step_periods

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
