"""The networks of anytime sampling: a VQ-VAE with one code per latent channel, its
truncation to the first k codes, and a causal transformer prior over the codes.

The encoder maps an 8x8 image to ``C`` latent channels of a small ``h x w`` map
each (4x4 by default). Quantization is channel-wise: a channel's whole map,
flattened, is ONE code vector, replaced by its nearest entry in that channel's
codebook of ``K`` vectors, so an image is ``C`` discrete codes. Gradients pass the
quantizer by the straight-through estimator; the encoder gets the commitment loss
``beta |z - sg(q)|^2``; the codebooks follow the encoder by exponential moving
averages, and a code unused for long is restarted at a random encoder output.
The decoder maps the ``C`` quantized maps to logits over the grey levels of every
pixel (cross-entropy, so ``p(x | z)`` is a proper likelihood). `truncate` replaces
the channels beyond ``k`` by zeros (not by a code). The model classes and their
training recipe are in `arbench_plugins.models.vqvae.model`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

DEAD_CODE_THRESHOLD = 0.03  # EMA count per batch below which a code is restarted


def truncate(z: torch.Tensor, k: int | torch.Tensor) -> torch.Tensor:
    """Zero every entry of channel axis 1 at index >= k (codes 1..k are kept).

    `z` is ``(B, C, ...)``: latents or quantized maps (the ordered autoencoder's
    truncation), or ``(B, C)`` per-code values. `k` is an int or a ``(B,)``
    tensor of per-example truncation indices.
    """
    channels = z.shape[1]
    index = torch.arange(channels, device=z.device)
    k = torch.as_tensor(k, device=z.device)
    keep = index < k.reshape(-1, 1)  # (1 or B, C)
    return z * keep.reshape(*keep.shape, *(1,) * (z.dim() - 2)).to(z.dtype)


def keep_mask(batch: int, channels: int, k: int | torch.Tensor,
              device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, C) bool: True for the codes 1..k that are kept."""
    k = torch.as_tensor(k, device=device).reshape(-1, 1)
    return (torch.arange(channels, device=device) < k).expand(batch, channels)


def draw_truncation(batch: int, channels: int, generator: torch.Generator | None = None,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """Per-example truncation indices k, uniform on 1..C, shape (B,)."""
    return torch.randint(1, channels + 1, (batch,), generator=generator).to(device)


class ResBlock(nn.Module):
    def __init__(self, channels: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
                                  nn.ReLU(), nn.Dropout(dropout),
                                  nn.Conv2d(channels, channels, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = h + self.body(h)
        return result


class ChannelQuantizer(nn.Module):
    """Channel-wise VQ: each of C channels' flattened map is one code of its own codebook."""

    embedding: torch.Tensor  # buffers, (C, K, dim), (C, K) and (C, K, dim)
    cluster_size: torch.Tensor
    embed_sum: torch.Tensor

    def __init__(self, codes: int, codebook_size: int, dim: int, decay: float) -> None:
        super().__init__()
        self.codes, self.codebook_size, self.dim, self.decay = codes, codebook_size, dim, decay
        self.register_buffer("embedding", torch.randn(codes, codebook_size, dim))
        self.register_buffer("cluster_size", torch.ones(codes, codebook_size))
        self.register_buffer("embed_sum", self.embedding.clone())

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest code of each channel: z (B, C, dim) -> (B, C)."""
        distance = (z.unsqueeze(2) - self.embedding.unsqueeze(0)).pow(2).sum(-1)  # (B, C, K)
        return distance.argmin(-1)

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        """Code vectors of indices (B, L) for channels 0..L-1 -> (B, L, dim)."""
        channel = torch.arange(idx.shape[1], device=idx.device)
        return self.embedding[channel, idx]

    @torch.no_grad()
    def initialise(self, z: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Start each codebook at random encoder outputs of its channel, z (N, C, dim)."""
        pick = torch.randint(len(z), (self.codes, self.codebook_size), generator=generator)
        self.embedding.copy_(z[pick, torch.arange(self.codes)[:, None]])
        self.embed_sum.copy_(self.embedding)
        self.cluster_size.fill_(1.0)

    def forward(self, z: torch.Tensor, keep: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, C, dim) -> (straight-through quantized, indices, commitment MSE over kept)."""
        if keep is None:
            keep = torch.ones(z.shape[:2], dtype=torch.bool, device=z.device)
        idx = self.indices(z.detach())
        q = self.lookup(idx)
        weight = keep.unsqueeze(-1).to(z.dtype)
        commitment = ((z - q.detach()).pow(2) * weight).sum() / (weight.sum() * self.dim)
        if self.training:
            self._ema_update(z.detach(), idx, keep)
        return z + (q - z).detach(), idx, commitment

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, idx: torch.Tensor, keep: torch.Tensor) -> None:
        onehot = F.one_hot(idx, self.codebook_size).to(z.dtype) * keep.unsqueeze(-1)
        active = keep.any(0)  # channels kept in at least one example of the batch
        counts = onehot.sum(0)  # (C, K)
        sums = torch.einsum("bck,bcd->ckd", onehot, z)
        d = self.decay
        self.cluster_size[active] = d * self.cluster_size[active] + (1 - d) * counts[active]
        self.embed_sum[active] = d * self.embed_sum[active] + (1 - d) * sums[active]
        total = self.cluster_size.sum(-1, keepdim=True)
        smoothed = (self.cluster_size + 1e-5) / (total + self.codebook_size * 1e-5) * total
        self.embedding.copy_(self.embed_sum / smoothed.unsqueeze(-1))
        dead = (self.cluster_size < DEAD_CODE_THRESHOLD) & active.unsqueeze(-1)
        for channel in dead.any(-1).nonzero().flatten().tolist():
            slots = dead[channel].nonzero().flatten()
            candidates = z[keep[:, channel], channel]
            restart = candidates[torch.randint(len(candidates), (len(slots),))]
            self.embedding[channel, slots] = restart
            self.embed_sum[channel, slots] = restart
            self.cluster_size[channel, slots] = 1.0


class VQVAE(nn.Module):
    """Levels (B, c, H, W) -> C codes -> logits (B, L, c, H, W) over the levels of every
    pixel and image channel (grey digits or RGB)."""

    def __init__(self, num_levels: int, shape: list[int], codes: int, codebook_size: int,
                 hidden: int, ema_decay: float, dropout: float = 0.0) -> None:
        super().__init__()
        if len(shape) != 3 or shape[1] % 2 or shape[2] % 2:
            raise ValueError(f"VQVAE expects images (channels, H, W) of even size, not {shape}")
        self.num_levels, self.shape, self.codes = num_levels, tuple(shape), codes
        self.latent_shape = (shape[1] // 2, shape[2] // 2)
        self.encoder = nn.Sequential(
            nn.Conv2d(shape[0], hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 4, stride=2, padding=1),
            ResBlock(hidden), ResBlock(hidden), nn.ReLU(),
            nn.Conv2d(hidden, codes, 1),
        )
        dim = self.latent_shape[0] * self.latent_shape[1]
        self.quantizer = ChannelQuantizer(codes, codebook_size, dim, ema_decay)
        self.decoder = nn.Sequential(
            nn.Conv2d(codes, hidden, 3, padding=1),
            ResBlock(hidden, dropout), ResBlock(hidden, dropout), nn.ReLU(),
            nn.ConvTranspose2d(hidden, hidden, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, num_levels * shape[0], 1),
        )

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder outputs (B, C, h*w) of levels x (B, c, H, W)."""
        scaled = x.float() * (2 / (self.num_levels - 1)) - 1
        result: torch.Tensor = self.encoder(scaled).flatten(2)
        return result

    def decode_latents(self, zq: torch.Tensor) -> torch.Tensor:
        """(B, C, h*w) quantized (and truncated) maps -> logits (B, L, c, H, W)."""
        logits = self.decoder(zq.reshape(zq.shape[0], self.codes, *self.latent_shape))
        result: torch.Tensor = logits.view(logits.shape[0], self.num_levels, *self.shape)
        return result

    def forward(self, x: torch.Tensor, k: int | torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, indices, commitment) with the codes beyond k zeroed (None: keep all)."""
        z = self.latents(x)
        keep = None if k is None else keep_mask(len(x), self.codes, k, x.device)
        zq, idx, commitment = self.quantizer(z, keep)
        if k is not None:
            zq = truncate(zq, k)
        return self.decode_latents(zq), idx, commitment


class CodePrior(nn.Module):
    """Causal transformer over C code indices: prefix (B, P) -> logits (B, P+1, K)."""

    def __init__(self, codes: int, codebook_size: int, width: int, layers: int, heads: int,
                 dropout: float) -> None:
        super().__init__()
        self.codes, self.codebook_size = codes, codebook_size
        self.token = nn.Embedding(codebook_size + 1, width)  # index K: the start token
        self.position = nn.Parameter(torch.zeros(codes, width))
        nn.init.normal_(self.token.weight, std=0.02)
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, codebook_size))

    def forward(self, prefix: torch.Tensor) -> torch.Tensor:
        """Row i of the output is p(code i | codes < i), for i = 0..P (P < C)."""
        start = prefix.new_full((prefix.shape[0], 1), self.codebook_size)
        tokens = torch.cat([start, prefix], dim=1)
        length = tokens.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
        h = self.token(tokens) + self.position[:length]
        result: torch.Tensor = self.head(self.encoder(h, mask=mask, is_causal=True))
        return result

    def log_prob(self, codes: torch.Tensor) -> torch.Tensor:
        """log p(codes) in nats, (B,), from one call."""
        logits = self(codes[:, :-1])
        return -F.cross_entropy(logits.transpose(1, 2), codes, reduction="none").sum(1)


class AnytimeNet(nn.Module):
    """The autoencoder and the prior over its codes, saved as one checkpoint."""

    def __init__(self, num_levels: int, shape: list[int], codes: int, codebook_size: int,
                 hidden: int, ema_decay: float, ordered: bool, prior_width: int,
                 prior_layers: int, prior_heads: int, prior_dropout: float,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.ordered = ordered
        self.autoencoder = VQVAE(num_levels, shape, codes, codebook_size, hidden, ema_decay,
                                 dropout)
        self.prior = CodePrior(codes, codebook_size, prior_width, prior_layers, prior_heads,
                               prior_dropout)


def ordered_loss(vae: VQVAE, x: torch.Tensor, beta: float, ordered: bool,
                 generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The training objective on a batch: (loss, reconstruction nats/pixel, k drawn or None).

    Ordered: per example k ~ U{1..C}, codes beyond k zeroed; unordered: all C codes.
    """
    k = draw_truncation(len(x), vae.codes, generator, x.device) if ordered else None
    logits, _, commitment = vae(x, k)
    reconstruction = F.cross_entropy(logits, x)
    return reconstruction + beta * commitment, reconstruction, k


@torch.no_grad()
def reconstruction_curve(vae: VQVAE, x: torch.Tensor, batch_size: int = 512
                         ) -> dict[str, list[float]]:
    """Test reconstruction with the first k codes, k = 1..C.

    ``mse``: mean squared error of the argmax decode in data units (levels mapped
    to [-1, 1], one grey level = 2/(L-1)); ``bits_per_dim``: cross-entropy of the
    decoder's categoricals, bits per pixel.
    """
    vae.eval()
    values = torch.linspace(-1, 1, vae.num_levels, device=x.device)
    mse, bits = [], []
    for k in range(1, vae.codes + 1):
        squared, nats = 0.0, 0.0
        for chunk in x.split(batch_size):
            logits, _, _ = vae(chunk, k)
            squared += (values[logits.argmax(1)] - values[chunk]).pow(2).sum().item()
            nats += F.cross_entropy(logits, chunk, reduction="sum").item()
        mse.append(squared / x.numel())
        bits.append(nats / (x.numel() * math.log(2)))
    return {"mse": mse, "bits_per_dim": bits}


@torch.no_grad()
def encode_all(vae: VQVAE, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """The codes of every example of `x`, in batches."""
    vae.eval()
    return torch.cat([vae.quantizer.indices(vae.latents(chunk)) for chunk in x.split(batch_size)])


@torch.no_grad()
def prior_nats(prior: CodePrior, codes: torch.Tensor, batch_size: int = 512) -> float:
    """Mean -log p(codes) per image in nats; leaves `prior` in eval mode."""
    prior.eval()
    return -sum(prior.log_prob(chunk).sum().item() for chunk in codes.split(batch_size)) / len(
        codes)


