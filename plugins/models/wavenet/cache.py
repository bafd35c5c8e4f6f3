"""Fast generation for the WaveNet: a queue per layer instead of recomputing the history.

Naive ancestral sampling runs the whole network over the history for every
new sample, so each step costs the receptive field. Every dilated convolution
here has kernel 2: output t needs its input at t and at t - d only. Keeping
each layer's last d inputs in a ring buffer (a queue, Paine et al., "Fast
Wavenet Generation", 2016) makes a step one matrix product per layer: O(layers)
instead of O(receptive field x layers). The arithmetic is that of the
convolutions, split per position, so the logits agree with a full forward pass
to float rounding and sampling with the same generator gives the same samples.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from arbench_plugins.models.wavenet.model import GatedBlock, WaveNetNet


def _taps(conv: torch.nn.Conv1d) -> torch.Tensor:
    """A kernel-2 convolution's weight as one matrix over [input at t - d, input at t]."""
    return torch.cat([conv.weight[:, :, 0], conv.weight[:, :, 1]], dim=1)


class WaveNetQueues:
    """Draws `n` sequences one sample at a time: `logits(previous)` gives p(x_t | x_<t)
    for every sequence from the value drawn at t - 1 (None at t = 0)."""

    @torch.no_grad()
    def __init__(self, net: WaveNetNet, levels: torch.Tensor, n: int, sigma: float = 0.0
                 ) -> None:
        self.net, self.levels = net, levels
        dtype, device = levels.dtype, levels.device
        c = net.sigma(torch.full((n,), sigma, dtype=dtype, device=device))
        self.blocks = [(_taps(block.conv), _bias(block.conv) + block.cond(c),
                        torch.cat([block.residual.weight[:, :, 0], block.skip.weight[:, :, 0]]),
                        torch.cat([_bias(block.residual), _bias(block.skip)]),
                        torch.zeros(block.conv.dilation[0], n, block.conv.in_channels,
                                    dtype=dtype, device=device))
                       for block in cast("list[GatedBlock]", net.blocks)]
        self.input_taps, self.input_bias = _taps(net.input), _bias(net.input)
        self.channels = net.input.out_channels
        self.before = torch.zeros(n, 1, dtype=dtype, device=device)  # network input at t - 1
        self.t = 0

    @torch.no_grad()
    def logits(self, previous: torch.Tensor | None) -> torch.Tensor:
        """``(n, K)`` logits of x_t; `previous` is x_{t-1} as levels ``(n,)``."""
        now = self.before.new_zeros(self.before.shape) if previous is None else (
            self.levels[previous].unsqueeze(1))  # the input is shifted: position t holds x_{t-1}
        h = torch.addmm(self.input_bias, torch.cat([self.before, now], dim=1),
                        self.input_taps.t())
        self.before = now
        skips = self.before.new_zeros(())
        for taps, bias, out_weight, out_bias, queue in self.blocks:
            slot = self.t % queue.shape[0]  # holds this layer's input at t - d
            filt, gate = torch.addmm(bias, torch.cat([queue[slot], h], dim=1),
                                     taps.t()).chunk(2, dim=1)
            queue[slot] = h
            z = torch.tanh(filt) * torch.sigmoid(gate)
            residual, skip = torch.addmm(out_bias, z, out_weight.t()).split(
                [self.channels, out_weight.shape[0] - self.channels], dim=1)
            h, skips = h + residual, skips + skip
        self.t += 1
        hidden = cast(nn.Conv1d, self.net.head[1])
        out = cast(nn.Conv1d, self.net.head[3])
        x = F.relu(F.linear(F.relu(skips), hidden.weight[:, :, 0], hidden.bias))
        return F.linear(x, out.weight[:, :, 0], out.bias)


def _bias(conv: nn.Conv1d) -> torch.Tensor:
    if conv.bias is None:
        raise ValueError("the queues need the WaveNet's convolutions to have biases")
    return conv.bias
