"""Likelihood metrics: per-example NLL, in bits/dim or in nats, averaged over examples."""

from __future__ import annotations

import math

import torch

from arbench import Metric


class BitsPerDim(Metric):
    """Mean NLL over examples, converted from nats per example to bits per dimension."""

    def per_example(self, nll_nats: torch.Tensor, dims: int) -> torch.Tensor:
        return nll_nats.double() / (dims * math.log(2))


class NatsPerExample(Metric):
    """Mean NLL over examples in nats: how 2-D density papers report continuous data."""

    def per_example(self, nll_nats: torch.Tensor) -> torch.Tensor:
        return nll_nats.double()
