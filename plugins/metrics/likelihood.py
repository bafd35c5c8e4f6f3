"""Likelihood metrics: per-example NLL, in bits/dim, bits per byte or nats, averaged over
examples."""

from __future__ import annotations

import math

import torch

from arbench import Metric


class BitsPerDim(Metric):
    """Mean NLL over examples, converted from nats per example to bits per dimension."""

    def per_example(self, nll_nats: torch.Tensor, dims: int) -> torch.Tensor:
        return nll_nats.double() / (dims * math.log(2))


class BitsPerByte(Metric):
    """NLL in bits per byte of the examples' text (UTF-8): what compares across
    tokenizers. Each example's bits are divided by the mean bytes per example, so the mean
    is the total bits over the total bytes, as language-model papers pool it."""

    def per_example(self, nll_nats: torch.Tensor, byte_counts: torch.Tensor) -> torch.Tensor:
        mean_bytes = byte_counts.double().mean().to(nll_nats.device)
        return nll_nats.double() / (mean_bytes * math.log(2))


class NatsPerExample(Metric):
    """Mean NLL over examples in nats: how 2-D density papers report continuous data."""

    def per_example(self, nll_nats: torch.Tensor) -> torch.Tensor:
        return nll_nats.double()
