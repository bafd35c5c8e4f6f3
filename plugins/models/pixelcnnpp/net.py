"""The PixelCNN++ network (Salimans et al., 2017): down- and down-right-shifted stacks.

Two streams run through a U-shaped network of three scales. The "u" stream
sees the rows above a pixel (a down-shifted convolution: kernel 2x3 over the
current and previous row, the input shifted down by one row first); the "ul"
stream also sees the pixels to its left (down-right-shifted, kernel 2x2, the
input shifted right). Gated residual blocks with concatenated ELUs, strided
convolutions down, transposed convolutions up, and skip connections from every
block of the up pass to the down pass. The output is the DMoL's parameters per
pixel (`dmol`), so the pixel at (i, j) is predicted from pixels strictly before
it in raster order, and its channels from each other by the mixture's
coefficients.

Conditioning (``cond_channels > 0``): a map ``(B, E, H, W)`` or a vector
``(B, E, 1, 1)`` projected into every gated block, like the original's ``h``:
the noise level for PnF, the whole noisy image x~ for distribution smoothing's
p(x | x~). Deviations: no weight normalisation (Adam without it trains these
sizes), dropout only in training, as in the original.
"""

from __future__ import annotations

from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from arbench_plugins.models.pixelcnnpp.dmol import params_per_pixel

SCALES = 3


def down_shift(x: torch.Tensor) -> torch.Tensor:
    """Shift the image one row down (the causal shift of the vertical stack)."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def right_shift(x: torch.Tensor) -> torch.Tensor:
    """Shift the image one column right (the causal shift of the horizontal stack)."""
    return F.pad(x, (1, 0, 0, 0))[..., :-1]


def concat_elu(x: torch.Tensor) -> torch.Tensor:
    """ELU of x and of -x, concatenated on channels (PixelCNN++'s nonlinearity)."""
    return F.elu(torch.cat([x, -x], dim=1))


class ShiftedConv(nn.Module):
    """A convolution whose output at (i, j) sees rows <= i: columns centred on j
    (``right=False``, down-shifted) or columns <= j (``right=True``, down-right)."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], right: bool,
                 stride: int = 1) -> None:
        super().__init__()
        rows, cols = kernel
        self.pad = (cols - 1, 0, rows - 1, 0) if right else ((cols - 1) // 2, (cols - 1) // 2,
                                                             rows - 1, 0)
        self.conv = nn.Conv2d(cin, cout, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.conv(F.pad(x, self.pad))
        return result

    def rows(self, x: torch.Tensor, a: int, b: int, offset: int = 0) -> torch.Tensor:
        """Output rows [a, b) alone, from `x` holding input rows from `offset` on (all
        those the band reads: the kernel looks up only, so nothing below)."""
        kernel_rows, stride = self.conv.kernel_size[0], self.conv.stride[0]
        start, end = a * stride - (kernel_rows - 1) - offset, (b - 1) * stride + 1 - offset
        left, right = self.pad[0], self.pad[1]
        rows = F.pad(x[:, :, max(start, 0):end], (left, right, max(-start, 0), 0))
        result: torch.Tensor = self.conv(rows)
        return result


class ShiftedDeconv(nn.Module):
    """The stride-2 transposed convolution matching `ShiftedConv`, cropped to 2H x 2W."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], right: bool) -> None:
        super().__init__()
        self.kernel, self.right = kernel, right
        self.deconv = nn.ConvTranspose2d(cin, cout, kernel, stride=2, output_padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.deconv(x)
        return self._crop_columns(out[:, :, : out.shape[2] - self.kernel[0] + 1])

    def _crop_columns(self, out: torch.Tensor) -> torch.Tensor:
        cols, w = self.kernel[1], out.shape[3]
        if self.right:
            return out[..., : w - cols + 1]
        return out[..., (cols - 1) // 2: w - (cols - 1) // 2]

    def rows(self, x: torch.Tensor, a: int, b: int) -> torch.Tensor:
        """Output rows [a, b) alone: output row i comes from input row i // 2 only."""
        first = a // 2
        out = self.deconv(x[:, :, first:(b - 1) // 2 + 1])
        return self._crop_columns(out[:, :, a - 2 * first: b - 2 * first])


def _stream_conv(cin: int, cout: int, right: bool, stride: int = 1) -> ShiftedConv:
    return ShiftedConv(cin, cout, (2, 2) if right else (2, 3), right, stride)


T = TypeVar("T")


def typed(module: object, cls: type[T]) -> T:
    """`module` (an element of a ModuleList or ModuleDict) as the `cls` it is."""
    assert isinstance(module, cls)
    return module


def blocks_at(stacks: nn.ModuleList, scale: int) -> list[GatedResnet]:
    """The gated blocks of one scale of a stack (a ModuleList of ModuleLists)."""
    return [typed(block, GatedResnet) for block in typed(stacks[scale], nn.ModuleList)]


class GatedResnet(nn.Module):
    """x + a * sigmoid(b), [a, b] from two shifted convolutions of concat_elu(x), with
    `skips` extra inputs (the other stream, the up pass) and the conditioning added."""

    def __init__(self, filters: int, right: bool, skips: int, cond_channels: int,
                 dropout: float) -> None:
        super().__init__()
        self.conv_in = _stream_conv(2 * filters, filters, right)
        self.skip = nn.Conv2d(2 * skips * filters, filters, 1) if skips else None
        self.conv_out = _stream_conv(2 * filters, 2 * filters, right)
        self.cond = nn.Conv2d(cond_channels, 2 * filters, 1) if cond_channels else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None,
                cond: torch.Tensor | None) -> torch.Tensor:
        h = self.conv_in(concat_elu(x))
        if self.skip is not None and skip is not None:
            h = h + self.skip(concat_elu(skip))
        h = self.conv_out(self.dropout(concat_elu(h)))
        if self.cond is not None and cond is not None:
            h = h + self.cond(cond)
        a, b = h.chunk(2, dim=1)
        result: torch.Tensor = x + a * torch.sigmoid(b)
        return result

    def rows(self, x: torch.Tensor, skips: tuple[torch.Tensor, ...], cond: torch.Tensor | None,
             a: int, b: int) -> torch.Tensor:
        """Output rows [a, b) alone (eval mode) from whole-image `x` and `skips` (joined
        along channels) whose rows up to b are current; `cond` a vector ``(B, E, 1, 1)``
        or the map's rows [a, b)."""
        low = max(a - 1, 0)  # conv_out reads one row up, conv_in one more
        h = self.conv_in.rows(concat_elu(x[:, :, max(low - 1, 0):b]), low, b,
                              offset=max(low - 1, 0))
        if self.skip is not None and skips:
            h = h + self.skip(concat_elu(torch.cat([t[:, :, low:b] for t in skips], dim=1)))
        h = self.conv_out.rows(concat_elu(h), a, b, offset=low)
        if self.cond is not None and cond is not None:
            h = h + self.cond(cond)
        gate, value = h.chunk(2, dim=1)
        return x[:, :, a:b] + gate * torch.sigmoid(value)


class PixelCNNPPNet(nn.Module):
    """Images in data units ``(B, C, H, W)`` (H, W divisible by 4) -> DMoL parameters
    ``(B, params_per_pixel(C, mixtures), H, W)``."""

    def __init__(self, shape: list[int], num_levels: int, nr_resnet: int, nr_filters: int,
                 mixtures: int, dropout: float = 0.5, cond_channels: int = 0) -> None:
        super().__init__()
        channels, height, width = shape
        if height % 4 or width % 4:
            raise ValueError(f"PixelCNN++ halves the image twice; {height}x{width} is not "
                             "divisible by 4")
        self.shape, self.num_levels, self.mixtures = tuple(shape), num_levels, mixtures
        f, c = nr_filters, cond_channels
        self.u_init = ShiftedConv(channels + 1, f, (2, 3), right=False)
        self.ul_init_up = ShiftedConv(channels + 1, f, (1, 3), right=False)  # the row above
        self.ul_init_left = ShiftedConv(channels + 1, f, (2, 1), right=True)  # and the left

        def blocks(count: int, right: bool, skips: int) -> nn.ModuleList:
            return nn.ModuleList(GatedResnet(f, right, skips, c, dropout) for _ in range(count))

        self.up_u = nn.ModuleList(blocks(nr_resnet, False, 0) for _ in range(SCALES))
        self.up_ul = nn.ModuleList(blocks(nr_resnet, True, 1) for _ in range(SCALES))
        self.down_u = nn.ModuleList(blocks(nr_resnet + (s > 0), False, 1) for s in range(SCALES))
        self.down_ul = nn.ModuleList(blocks(nr_resnet + (s > 0), True, 2) for s in range(SCALES))
        self.shrink_u = nn.ModuleList(_stream_conv(f, f, False, 2) for _ in range(SCALES - 1))
        self.shrink_ul = nn.ModuleList(_stream_conv(f, f, True, 2) for _ in range(SCALES - 1))
        self.grow_u = nn.ModuleList(ShiftedDeconv(f, f, (2, 3), False) for _ in range(SCALES - 1))
        self.grow_ul = nn.ModuleList(ShiftedDeconv(f, f, (2, 2), True) for _ in range(SCALES - 1))
        self.out = nn.Conv2d(f, params_per_pixel(channels, mixtures), 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        conds = [cond if cond is None or cond.shape[-1] == 1 else F.avg_pool2d(cond, 2 ** s)
                 for s in range(SCALES)]
        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)  # marks the zero padding
        us = [down_shift(self.u_init(x))]
        uls = [down_shift(self.ul_init_up(x)) + right_shift(self.ul_init_left(x))]
        for s in range(SCALES):
            for block_u, block_ul in zip(blocks_at(self.up_u, s), blocks_at(self.up_ul, s),
                                         strict=True):
                us.append(block_u(us[-1], None, conds[s]))
                uls.append(block_ul(uls[-1], us[-1], conds[s]))
            if s < SCALES - 1:
                us.append(self.shrink_u[s](us[-1]))
                uls.append(self.shrink_ul[s](uls[-1]))
        u, ul = us.pop(), uls.pop()
        for s in range(SCALES):
            scale = SCALES - 1 - s
            for block_u, block_ul in zip(blocks_at(self.down_u, s), blocks_at(self.down_ul, s),
                                         strict=True):
                u = block_u(u, us.pop(), conds[scale])
                ul = block_ul(ul, torch.cat([u, uls.pop()], dim=1), conds[scale])
            if s < SCALES - 1:
                u, ul = self.grow_u[s](u), self.grow_ul[s](ul)
        result: torch.Tensor = self.out(F.elu(ul))
        return result
