"""The network: a decoder-only, pre-norm transformer with a key/value cache.

Input position i holds the value before it (a start symbol at 0), so output row i is
p(x_i | x_<i) for every position in one call. `KVCache` runs it one value (or one
window of values) at a time, keeping each layer's keys and values: a step costs one
position's work, attending to the cached ones.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """Pre-norm self-attention (causal) and a 4x GELU MLP, each with a residual."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.attention_norm, self.mlp_norm = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width), nn.Dropout(dropout))
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """`h` ``(B, T, W)``: each position attends causally to those up to it."""
        q, k, v = self._qkv(h)
        return self._finish(h, F.scaled_dot_product_attention(q, k, v,
                                                              is_causal=h.shape[1] > 1))

    def attend_span(self, h: torch.Tensor, start: int, keys: torch.Tensor,
                    values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """`h` ``(B, T, W)`` at positions ``start .. start + T - 1`` of every row: their keys
        and values are written into the slots `keys`, `values` ``(B, heads, L, W / heads)``,
        then each attends to the slots before it and to the span's positions up to its own
        (`mask` ``(T, start + T)``; None for one position): the slots before `start` hold
        the positions computed earlier."""
        q, k, v = self._qkv(h)
        end = start + h.shape[1]
        keys[:, :, start:end], values[:, :, start:end] = k, v
        return self._finish(h, F.scaled_dot_product_attention(
            q, keys[:, :, :end], values[:, :, :end], attn_mask=mask))

    def attend_at(self, h: torch.Tensor, where: torch.Tensor, keys: torch.Tensor,
                  values: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """`h` ``(B, T, W)`` at each row's positions `where` ``(B, T)``: their keys and
        values are written into `keys`, `values` ``(B, heads, L, W / heads)`` at those
        positions, then each attends to the slots `visible` ``(B, 1, T, L)`` marks."""
        q, k, v = self._qkv(h)
        index = where[:, None, :, None].expand(-1, self.heads, -1, k.shape[-1])
        keys.scatter_(2, index, k)
        values.scatter_(2, index, v)
        return self._finish(h, F.scaled_dot_product_attention(q, keys, values,
                                                              attn_mask=visible))

    def _qkv(self, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Queries, keys and values of `h` ``(B, T, W)``, each ``(B, heads, T, W / heads)``."""
        batch, length, width = h.shape
        return tuple(part.view(batch, length, self.heads, -1).transpose(1, 2)
                     for part in self.qkv(self.attention_norm(h)).split(width, dim=-1))

    def _finish(self, h: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """The attention's output projection and the MLP, each with its residual."""
        batch, length, width = h.shape
        h = h + self.dropout(self.out(attended.transpose(1, 2).reshape(batch, length, width)))
        result: torch.Tensor = h + self.mlp(self.mlp_norm(h))
        return result


class CausalTransformer(nn.Module):
    """Logits ``(B, D, K)`` of D values of K levels, row i given the values before i."""

    def __init__(self, num_levels: int, length: int, width: int, layers: int, heads: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of heads {heads}")
        self.num_levels, self.length, self.heads = num_levels, length, heads
        self.embed = nn.Embedding(num_levels + 1, width)  # the last index: the start symbol
        self.position = nn.Parameter(0.02 * torch.randn(length, width))
        self.blocks = nn.ModuleList(Block(width, heads, dropout) for _ in range(layers))
        self.norm, self.head = nn.LayerNorm(width), nn.Linear(width, num_levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` ``(B, T)`` levels -> ``(B, T, K)``: row i is p(x_i | x_<i)."""
        start = x.new_full((len(x), 1), self.num_levels)
        h = self.embed(torch.cat([start, x[:, :-1]], 1)) + self.position[:x.shape[1]]
        for block in self.blocks:
            h = block(h)
        logits: torch.Tensor = self.head(self.norm(h))
        return logits


class KVCache:
    """Incremental decoding: one set of key and value slots per layer, by absolute position,
    for both ways in. ``logits(previous)`` (ancestral sampling) feeds the value drawn last
    (None at the start) and returns the next position's logits ``(n, K)``;
    ``window(x, starts, width)`` (speculative sampling's verification) returns the logits
    at each row's own positions ``starts .. starts + width - 1`` ``(n, width, K)``. Rows at
    one position (always so at batch 1) attend to a slice of the slots, so a span of w
    positions costs what w positions cost; rows at different positions attend to every
    slot under a mask."""

    SPARE = 16  # slots past the last position: a window there computes nothing kept

    def __init__(self, net: CausalTransformer, n: int) -> None:
        self.net, self.n, self.t = net, n, 0
        self.slots: list[tuple[torch.Tensor, torch.Tensor]] = []

    @torch.no_grad()
    def logits(self, previous: torch.Tensor | None) -> torch.Tensor:
        device = self.net.position.device
        token = (torch.full((self.n,), self.net.num_levels, device=device)
                 if previous is None else previous)
        logits = self._span(token[:, None].long(), self.t)[:, 0]
        self.t += 1
        return logits

    @torch.no_grad()
    def window(self, x: torch.Tensor, starts: torch.Tensor, width: int) -> torch.Tensor:
        """A row's positions before its start must hold the values they had at the call
        that computed them (its final prefix); those from its start on are computed now
        from `x` ``(n, D)``; positions past D land in spare slots."""
        length = self.net.length
        padded = torch.cat([x.new_full((self.n, 1), self.net.num_levels), x], 1)  # x_i-1
        if self.n > 1 and not bool((starts == starts[0]).all()):
            return self._masked(padded, starts, width)
        start = int(starts[0])
        if start + width <= length:
            return self._span(padded[:, start:start + width], start)
        inputs = (start + torch.arange(width, device=x.device)).clamp(max=length)
        return self._span(padded[:, inputs], start)

    def _span(self, tokens: torch.Tensor, start: int) -> torch.Tensor:
        """The logits at positions ``start ..`` of every row, from their inputs `tokens`."""
        net, width = self.net, tokens.shape[1]
        self._grow(start + width, tokens.device)
        if start + width <= net.length:
            position = net.position[start:start + width]
        else:
            position = net.position[(start + torch.arange(width, device=tokens.device))
                                    .clamp(max=net.length - 1)]
        h = net.embed(tokens) + position
        mask = None if width == 1 else torch.ones(width, start + width, dtype=torch.bool,
                                                  device=tokens.device).tril(start)
        for block, (keys, values) in zip(net.blocks, self.slots, strict=True):
            h = cast(Block, block).attend_span(h, start, keys, values, mask)
        logits: torch.Tensor = net.head(net.norm(h))
        return logits

    def _masked(self, padded: torch.Tensor, starts: torch.Tensor, width: int) -> torch.Tensor:
        """The window of rows at different positions: every slot, masked per row."""
        net, length = self.net, self.net.length
        self._grow(length + width, padded.device)
        where = starts[:, None] + torch.arange(width, device=padded.device)  # (n, width)
        h = net.embed(padded.gather(1, where.clamp(max=length))) \
            + net.position[where.clamp(max=length - 1)]
        slots = self.slots[0][0].shape[2]
        visible = torch.arange(slots, device=padded.device) <= where[..., None]
        for block, (keys, values) in zip(net.blocks, self.slots, strict=True):
            h = cast(Block, block).attend_at(h, where, keys, values, visible[:, None])
        logits: torch.Tensor = net.head(net.norm(h))
        return logits

    def _grow(self, slots: int, device: torch.device) -> None:
        """Key and value slots for at least `slots` positions (a window may reach past
        the last one), the positions computed so far kept."""
        net = self.net
        have = self.slots[0][0].shape[2] if self.slots else 0
        if slots <= have:
            return
        slots = max(slots, net.length + self.SPARE)
        shape = (self.n, net.heads, slots, net.position.shape[1] // net.heads)
        grown = [tuple(torch.zeros(shape, dtype=net.position.dtype, device=device)
                       for _ in range(2)) for _ in net.blocks]
        for (keys, values), (old_keys, old_values) in zip(grown, self.slots, strict=False):
            keys[:, :, :have], values[:, :, :have] = old_keys, old_values
        self.slots = [(keys, values) for keys, values in grown]
