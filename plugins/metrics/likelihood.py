"""Likelihood metrics."""

from __future__ import annotations

import math

import torch

from arbench.contracts import Metric


class BitsPerDim(Metric):
    """Mean NLL over examples, converted from nats per example to bits per dimension."""

    def __call__(self, nll_nats: torch.Tensor, dims: int) -> float:
        return float(nll_nats.double().mean() / (dims * math.log(2)))


class NatsPerExample(Metric):
    """Mean NLL over examples in nats: how 2-D density papers report continuous data."""

    def __call__(self, nll_nats: torch.Tensor) -> float:
        return float(nll_nats.double().mean())
