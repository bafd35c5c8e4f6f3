"""Fast PixelCNN++ sampling: each layer recomputes only the rows a new pixel can change.

Every layer of `PixelCNNPPNet` looks up and sideways only, so row r of a layer
at scale s (the image halved s times) depends on pixels in rows up to
r * 2^s. While pixel (h, w) is drawn, only the rows of each scale that hold row
h can still change: this cache keeps every layer's output for the whole image
and, at each pixel, recomputes one row per scale (row h >> s, and only while
h is a multiple of 2^s: the other rows of the image read rows of that scale
that are final already), from inputs that are either just recomputed or
final. A step then costs a row (with the two above it that each gated block
reads) instead of a full pass, and one step gives all three channels of the
pixel: the mixture's parameters do not depend on the pixel's own channels.

Exact: the band's outputs are the full network's (tested against it at every
pixel), so the samples are the naive loop's given the same generator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from arbench_plugins.models.pixelcnnpp import dmol
from arbench_plugins.models.pixelcnnpp.net import (
    SCALES,
    PixelCNNPPNet,
    ShiftedConv,
    ShiftedDeconv,
    blocks_at,
    right_shift,
    typed,
)


class RowBands:
    """The layers' outputs of `n` images being drawn, updated row band by row band."""

    def __init__(self, net: PixelCNNPPNet, n: int, cond: torch.Tensor | None) -> None:
        channels, height, width = net.shape
        weight = net.out.weight
        self.net = net
        # The conditioning at each scale, as `PixelCNNPPNet.forward` pools it.
        self.conds = [cond if cond is None or cond.shape[-1] == 1 or s == 0
                      else F.avg_pool2d(cond, 2 ** s) for s in range(SCALES)]
        self.x = weight.new_zeros(n, channels + 1, height, width)
        self.x[:, channels] = 1  # the constant channel that marks the zero padding
        self.up = [list(zip(blocks_at(net.up_u, s), blocks_at(net.up_ul, s), strict=True))
                   for s in range(SCALES)]
        self.down = [list(zip(blocks_at(net.down_u, s), blocks_at(net.down_ul, s), strict=True))
                     for s in range(SCALES)]
        self.shrink = [(typed(u, ShiftedConv), typed(ul, ShiftedConv))
                       for u, ul in zip(net.shrink_u, net.shrink_ul, strict=True)]
        self.grow = [(typed(u, ShiftedDeconv), typed(ul, ShiftedDeconv))
                     for u, ul in zip(net.grow_u, net.grow_ul, strict=True)]
        self.buffers: list[torch.Tensor] = []
        self.node = 0  # the next layer's buffer while `_update` runs
        self.bands: list[tuple[int, int] | None] = []  # each scale's rows at this pixel

    def set_pixel(self, i: int, j: int, values: torch.Tensor) -> None:
        """Pixel (i, j)'s channels in data units, ``(n, C)``."""
        self.x[:, :-1, i, j] = values

    @torch.no_grad()
    def mixture(self, i: int, j: int) -> dmol.Mixture:
        """The DMoL of pixel (i, j) given the pixels set before it (raster order)."""
        self.node = 0
        ul = self._update(i)
        out = self.net.out(F.elu(ul[:, :, i:i + 1, j:j + 1]))
        return dmol.Mixture.from_output(out, self.x.shape[1] - 1)

    def _layer(self, scale: int, rows_of: Callable[..., torch.Tensor], *args: Any
               ) -> torch.Tensor:
        """The next layer's whole-image buffer, with its rows [a, b) set to
        ``rows_of(*args, a, b)`` when its scale has a band at this pixel's row (else it
        holds final rows only)."""
        band = self.bands[scale]
        if band is not None:
            rows = rows_of(*args, *band)
            if self.node == len(self.buffers):
                n, _, height, width = self.x.shape
                self.buffers.append(rows.new_zeros(n, rows.shape[1], height >> scale,
                                                   width >> scale))
            self.buffers[self.node][:, :, band[0]:band[1]] = rows
        self.node += 1
        return self.buffers[self.node - 1]

    def _cond(self, scale: int) -> torch.Tensor | None:
        cond, band = self.conds[scale], self.bands[scale]
        if cond is None or cond.shape[-1] == 1 or band is None:
            return cond
        return cond[:, :, band[0]:band[1]]

    def _down_shifted(self, conv: ShiftedConv, a: int, b: int) -> torch.Tensor:
        """Rows [a, b) of down_shift(conv(x))."""
        rows = conv.rows(self.x, max(a - 1, 0), b)
        return F.pad(rows, (0, 0, 1, 0))[:, :, : b - a] if a == 0 else rows[:, :, : b - a]

    def _ul_init(self, a: int, b: int) -> torch.Tensor:
        """Rows [a, b) of the first up-and-left layer (`PixelCNNPPNet.forward`'s)."""
        return (self._down_shifted(self.net.ul_init_up, a, b)
                + right_shift(self.net.ul_init_left.rows(self.x, a, b)))

    def _update(self, h: int) -> torch.Tensor:
        """Recompute each layer's band for image row h; returns the last layer's buffer.

        Row r of scale s depends on image rows up to r * 2^s, and row h of the image
        reads row h >> s of scale s, so scale s has work only in image rows h that are
        multiples of 2^s: row h >> s, whose inputs above it are final.
        """
        self.bands = [(h >> s, (h >> s) + 1) if h % 2 ** s == 0 else None
                      for s in range(SCALES)]
        net = self.net
        us = [self._layer(0, self._down_shifted, net.u_init)]
        uls = [self._layer(0, self._ul_init)]
        for s in range(SCALES):
            for block_u, block_ul in self.up[s]:
                us.append(self._layer(s, block_u.rows, us[-1], (), self._cond(s)))
                uls.append(self._layer(s, block_ul.rows, uls[-1], (us[-1],), self._cond(s)))
            if s < SCALES - 1:
                shrink_u, shrink_ul = self.shrink[s]
                us.append(self._layer(s + 1, shrink_u.rows, us[-1]))
                uls.append(self._layer(s + 1, shrink_ul.rows, uls[-1]))
        u, ul = us.pop(), uls.pop()
        for s in range(SCALES):
            scale = SCALES - 1 - s
            for block_u, block_ul in self.down[s]:
                u = self._layer(scale, block_u.rows, u, (us.pop(),), self._cond(scale))
                ul = self._layer(scale, block_ul.rows, ul, (u, uls.pop()), self._cond(scale))
            if s < SCALES - 1:
                grow_u, grow_ul = self.grow[s]
                u = self._layer(scale - 1, grow_u.rows, u)
                ul = self._layer(scale - 1, grow_ul.rows, ul)
        return ul
