"""A Hugging Face model's own key/value cache behind arbench's incremental interface.

Position i's input is the value before it (the start token at 0), so the cache holds
the keys and values of positions 0 .. t - 1. ``logits(previous)`` feeds one value and
returns the next position's logits (ancestral sampling); ``window(x, starts, width)``
returns each row's logits at positions ``starts .. starts + width - 1`` (speculative
verification): the cache is cropped back to the furthest-behind row's start (what
rejected values left in it is dropped) and every row's inputs from there are fed in
one call. Rows at different starts share the call: a row ahead recomputes its final
positions since the furthest-behind start, and the cache says so in ``step_positions``.
Positions past the last one are not computed: the last row's logits stand for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class HFCache:
    """The model's ``DynamicCache`` for `n` rows from start token `bos`, its logits
    `tempered` (at the model's temperature)."""

    def __init__(self, net: Any, n: int, bos: int,
                 tempered: Callable[[torch.Tensor], torch.Tensor]) -> None:
        from transformers import DynamicCache

        self.net, self.n, self.bos, self.tempered = net, n, bos, tempered
        self.kv = DynamicCache(config=net.config)
        self.t = 0  # positions whose keys and values the cache holds
        self.step_positions = 1

    def _forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.net(input_ids=inputs, cache=self.kv, use_cache=True)
        self.t += inputs.shape[1]
        self.step_positions = inputs.shape[1]
        return self.tempered(out.logits.float())

    @torch.no_grad()
    def logits(self, previous: torch.Tensor | None) -> torch.Tensor:
        """The next position's logits ``(n, K)`` after the value drawn last (None: start)."""
        device = self.net.device
        token = (torch.full((self.n,), self.bos, device=device) if previous is None
                 else previous.to(device))
        return self._forward(token[:, None].long())[:, 0]

    @torch.no_grad()
    def window(self, x: torch.Tensor, starts: torch.Tensor, width: int) -> torch.Tensor:
        """Logits ``(n, width, K)`` at each row's positions from its start, of `x` ``(n, D)``
        (positions before the furthest-behind start hold their values of the call that
        computed them)."""
        length = x.shape[1]
        begin = min(int(starts.min()), self.t, length - 1)  # at least one position
        end = min(int(starts.max()) + width, length)
        if self.t > begin:
            self.kv.crop(begin - self.t)
            self.t = begin
        inputs = torch.cat([x.new_full((self.n, 1), self.bos), x], 1)[:, begin:end]
        logits = self._forward(inputs)
        at = ((starts - begin)[:, None] + torch.arange(width, device=x.device)).clamp_(
            max=end - begin - 1)
        return logits.gather(1, at[..., None].expand(-1, -1, logits.shape[-1]))
