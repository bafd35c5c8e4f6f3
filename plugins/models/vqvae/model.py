"""Anytime sampling with ordered VQ-VAE codes (Xu et al., ICLR 2021).

The networks (VQ-VAE with one code per latent channel, truncation, code prior)
are in `arbench_plugins.models.vqvae.nets`; this module holds the two model plugins
and their training recipe. `decode` returns the decoder's argmax (the default)
or a sample.

Ordered variant. After full-code pretraining, every training example draws a
truncation index ``k`` uniformly from ``1..C`` and the channels beyond ``k`` are
replaced by zeros (not by a code) before decoding; the commitment loss and the
codebook updates use the kept channels only. This is an unbiased, per-example
estimate of the paper's objective ``1/C sum_k loss(x, d(z_<=k))``, which draws one
``k`` per minibatch; drawing it per example only lowers the variance. The first
codes then carry the coarse image. The unordered control has the same
architecture and size and the same number of epochs, always with all ``C`` codes.

Prior. A small causal transformer over the ``C`` code indices (a start token,
then code i-1 predicts code i), fitted on the codes of the train split after
the autoencoder is frozen (ex-post density estimation). `prior_sample(n, k)`
draws the first ``k`` codes with ``k`` network calls.

Likelihood. There is no exact pixel likelihood. `log_prob` returns the bound
``log p(z) + log p(x | z)`` with ``z = encode(x)``: the ELBO of the deterministic
(point-mass) posterior, a lower bound on log p(x) under the generative process
"codes from the prior, pixels sampled from the decoder's categoricals". Tasks
that report an NLL from it report an upper bound.

One checkpoint holds autoencoder and prior (``autoencoder.*`` and ``prior.*``
keys); the network is rebuilt from the ``config`` stored with it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from arbench import (
    CheckpointError,
    Dataset,
    Model,
    TrainingLoop,
    TrainingResult,
    epoch_batches,
    load_for,
    loop_options,
    network_call,
    partial_path,
    random_batches,
    rebuild_command,
    save_checkpoint,
    split_train_val,
    step_periods,
    training_options,
)
from arbench_plugins.models.vqvae.nets import (
    VQVAE,
    AnytimeNet,
    encode_all,
    ordered_loss,
    prior_nats,
    reconstruction_curve,
)

TRAIN_DEFAULTS: dict[str, Any] = {
    # autoencoder
    "codes": 16,  # C: codes per image (latent channels)
    "codebook_size": 64,  # K: entries of each channel's codebook
    "hidden": 64,
    "dropout": 0.1,  # in the decoder's residual blocks
    "weight_decay": 0.05,  # AdamW, autoencoder
    "beta": 0.25,  # commitment weight
    "ema_decay": 0.95,
    "pretrain_epochs": 30,  # all C codes (both variants)
    "epochs": 150,  # then: truncated (ordered) or still all codes (unordered)
    "lr": 2e-3,
    "batch_size": 64,
    "val_fraction": 0.1,
    # prior
    "prior_width": 64,
    "prior_layers": 2,
    "prior_heads": 4,
    "prior_dropout": 0.1,
    "prior_steps": 2000,
    "prior_lr": 2e-3,
    "prior_batch_size": 64,
    "prior_eval_every": 100,
}
PRESETS: dict[str, dict[str, Any]] = {  # a CPU check of the whole recipe in seconds
    "tiny": {"codes": 4, "codebook_size": 8, "hidden": 16, "pretrain_epochs": 1, "epochs": 1,
             "prior_width": 16, "prior_layers": 1, "prior_steps": 4, "prior_eval_every": 2,
             "batch_size": 8, "prior_batch_size": 8},
}


def _codes_drawn(model: AnytimeVQVAE, n: int, k: int | None = None, *args: Any,
                 **kwargs: Any) -> float:
    return float(n * (model.num_codes if k is None else k))


def _prefixes(model: AnytimeVQVAE, n: int, k: int | None = None, *args: Any,
              **kwargs: Any) -> float:
    k = model.num_codes if k is None else k
    return float(n * k * (k + 1) // 2)


class AnytimeVQVAE(Model):
    """A VQ-VAE with channel-wise codes plus a transformer prior; ``checkpoint=None``
    loads the shipped one. Subclasses fix the training variant (ordered or not)."""

    ordered: ClassVar[bool] = True
    provides = frozenset({"ordered-codes"})

    def __init__(self, net: AnytimeNet, dataset: Dataset, **params: Any) -> None:
        super().__init__(**params)
        self.net = net
        self.vae, self.code_prior = net.autoencoder, net.prior
        self.num_levels, self.shape = self.vae.num_levels, dataset.shape

    @property
    def num_codes(self) -> int:
        """C, the code length: the most prior calls a sample can take."""
        return self.vae.codes

    @property
    def codebook_size(self) -> int:
        """Codes per channel's codebook."""
        return self.vae.quantizer.codebook_size

    @property
    def device(self) -> torch.device:
        """Where the network's weights are."""
        return self.vae.quantizer.embedding.device

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Levels (B, 1, H, W) -> code indices (B, C)."""
        return self.vae.quantizer.indices(self.vae.latents(x))

    def decoder_logits(self, codes: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """Logits (B, L, H, W) from the first k of `codes` (B, >= k); the rest are zeros."""
        k = codes.shape[1] if k is None else k
        if not 0 <= k <= min(codes.shape[1], self.num_codes):
            raise ValueError(f"k={k} must lie in 0..{min(codes.shape[1], self.num_codes)}")
        zq = self.vae.quantizer.lookup(codes[:, :k])  # (B, k, dim)
        full = zq.new_zeros(zq.shape[0], self.num_codes, zq.shape[2])
        full[:, :k] = zq
        return self.vae.decode_latents(full)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, k: int | None = None, sample: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Levels (B, c, H, W) from the first k codes (default: all given), the rest zeroed.

        The decoder gives a categorical per pixel: its argmax (``sample=False``, the
        anytime images) or an independent sample of each (the generative process
        `log_prob` bounds).
        """
        logits = self.decoder_logits(codes, k)
        if not sample:
            return logits.argmax(1)
        probs = logits.softmax(1).movedim(1, -1).reshape(-1, self.num_levels)
        drawn = torch.multinomial(probs, 1, generator=generator)
        return drawn.reshape(logits.shape[0], *logits.shape[2:])

    @torch.no_grad()
    @network_call(_codes_drawn, positions=_prefixes)
    def prior_sample(self, n: int, k: int | None, generator: torch.Generator) -> torch.Tensor:
        """The first k codes (B, k) drawn from the prior, one network call per code, each
        over the codes drawn so far (no cache): k (k + 1) / 2 positions per example."""
        k = self.num_codes if k is None else k
        if not 0 <= k <= self.num_codes:
            raise ValueError(f"k={k} must lie in 0..{self.num_codes}")
        codes = torch.zeros(n, 0, dtype=torch.long, device=self.device)
        for _ in range(k):
            probs = self.code_prior(codes)[:, -1].softmax(-1)
            nxt = torch.multinomial(probs, 1, generator=generator)
            codes = torch.cat([codes, nxt], dim=1)
        return codes

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """A lower bound on log p(x) in nats, (B,): log p(z) + log p(x | z), z = encode(x)."""
        codes = self.encode(x)
        logits = self.decoder_logits(codes)
        log_px = -F.cross_entropy(logits, x, reduction="none").flatten(1).sum(1)
        return self.code_prior.log_prob(codes) + log_px

    @classmethod
    def load(cls, dataset: Dataset, device: torch.device, *, family: str,
             checkpoint: Path | None, **params: Any) -> AnytimeVQVAE:
        state = load_for(checkpoint, dataset, device)
        config = state["config"]
        if config["ordered"] != cls.ordered:
            kind, other = ("an ordered", "ordered-vqvae") if config["ordered"] else (
                "an unordered", "vqvae")
            raise CheckpointError(f"checkpoint {checkpoint} holds {kind} VQ-VAE; load it as model "
                                  f"'{other}'")
        net = AnytimeNet(**config)
        net.load_state_dict(state["state_dict"])
        return cls(net.to(device).eval(), dataset, **params)

    @classmethod
    def train(cls, dataset: Dataset, out: Path, seed: int = 0, *, family: str,
              **options: Any) -> Path:
        opts = training_options(options, TRAIN_DEFAULTS, PRESETS)
        config = {
            "num_levels": dataset.num_levels, "shape": list(dataset.shape),
            "codes": opts["codes"], "codebook_size": opts["codebook_size"],
            "hidden": opts["hidden"], "dropout": opts["dropout"],
            "ema_decay": opts["ema_decay"], "ordered": cls.ordered,
            "prior_width": opts["prior_width"], "prior_layers": opts["prior_layers"],
            "prior_heads": opts["prior_heads"], "prior_dropout": opts["prior_dropout"],
        }
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        device = torch.device(opts["device"] or "cpu")
        net = AnytimeNet(**config).to(device)
        vae, prior = net.autoencoder, net.prior

        # Model selection uses a slice of the train split; the test split is only reported.
        train, val = split_train_val(dataset.load("train"), opts["val_fraction"], generator)
        train, val, test = train.to(device), val.to(device), dataset.load("test").to(device)
        with torch.no_grad():
            vae.quantizer.initialise(vae.latents(train), generator)
        autoencoder = cls._train_autoencoder(vae, train, val, opts, generator, out, seed)
        # Prior on the frozen autoencoder's codes.
        train_codes, val_codes = encode_all(vae, train), encode_all(vae, val)
        test_codes = encode_all(vae, test)
        prior_opt = torch.optim.AdamW(prior.parameters(), lr=opts["prior_lr"], weight_decay=0.01)
        periods = step_periods(opts["prior_steps"], opts["prior_eval_every"])
        prior_fit = TrainingLoop(
            prior, prior_opt, loss=lambda batch, _: -prior.log_prob(batch).mean() / vae.codes,
            evaluate=lambda _: prior_nats(prior, val_codes), periods=len(periods),
            batches=lambda period: random_batches(train_codes, opts["prior_batch_size"],
                                                  periods[period - 1], generator),
            schedule=torch.optim.lr_scheduler.OneCycleLR(prior_opt, opts["prior_lr"],
                                                         opts["prior_steps"], pct_start=0.05),
            generator=generator, resume=partial_path(out, "prior"),
            fingerprint={"seed": seed, **opts}, label="prior evaluation", log_every=10,
            **loop_options({**opts, "clip_grad": opts["clip_grad"] or 1.0})).run()
        best_nats = prior_fit.score
        train_seconds = autoencoder.seconds + prior_fit.seconds

        curve = reconstruction_curve(vae, test)
        model = cls(net.eval(), dataset)
        with torch.no_grad():
            elbo = torch.cat([model.log_prob(chunk) for chunk in test.split(512)])
        usage = [len(set(column.tolist())) for column in train_codes.T]
        test_prior_nats = prior_nats(prior, test_codes)
        metadata: dict[str, Any] = {
            "command": rebuild_command(family, dataset.name, seed, options),
            "seed": seed, "options": opts,
            "best_epoch": autoencoder.period,
            "best_prior_step": sum(periods[:prior_fit.period]),
            "test_reconstruction_vs_k": {
                "k": list(range(1, vae.codes + 1)),
                "mse_data_units": [round(v, 5) for v in curve["mse"]],
                "rmse_grey_levels": [round(math.sqrt(v) * (vae.num_levels - 1) / 2, 4)
                                     for v in curve["mse"]],
                "bits_per_dim": [round(v, 4) for v in curve["bits_per_dim"]],
            },
            "prior_nll": {
                "val_nats_per_image": round(best_nats, 3),
                "test_nats_per_image": round(test_prior_nats, 3),
                "test_bits_per_code": round(test_prior_nats / (vae.codes * math.log(2)), 4),
            },
            "test_elbo_bits_per_dim": round(-elbo.mean().item() / (test[0].numel() * math.log(2)),
                                            4),
            "codes_used_per_channel": usage,
            "num_parameters": {
                "autoencoder": sum(p.numel() for p in vae.parameters()),
                "codebooks": vae.quantizer.embedding.numel(),
                "prior": sum(p.numel() for p in prior.parameters()),
            },
            "train_seconds": {"autoencoder": autoencoder.seconds, "prior": prior_fit.seconds,
                              "total": round(train_seconds, 1)},
            "training": {"autoencoder": autoencoder.cost, "prior": prior_fit.cost},
            "torch_version": torch.__version__,
        }
        print(f"test mse vs k: {metadata['test_reconstruction_vs_k']['mse_data_units']}",
              flush=True)
        print(f"prior test {metadata['prior_nll']}; elbo {metadata['test_elbo_bits_per_dim']} "
              f"bits/dim; {train_seconds:.0f} s", flush=True)
        return save_checkpoint(Path(out), config, net.state_dict(), metadata)

    @classmethod
    def _train_autoencoder(cls, vae: VQVAE, train: torch.Tensor, val: torch.Tensor,
                           opts: dict[str, Any], generator: torch.Generator, out: Path,
                           seed: int) -> TrainingResult:
        """All codes for `pretrain_epochs`, then (ordered only) random truncation for
        `epochs`, selected within that last phase on its own objective."""
        def truncating(epoch: int) -> bool:
            return cls.ordered and epoch > opts["pretrain_epochs"]

        def evaluate(epoch: int) -> tuple[float, dict[str, Any]]:
            # the objective the phase optimises: the mean over k when truncating
            curve = reconstruction_curve(vae, val)["bits_per_dim"]
            score = sum(curve) / len(curve) if truncating(epoch) else curve[-1]
            return score, {"all codes": curve[-1], "1 code": curve[0]}

        epochs = opts["pretrain_epochs"] + opts["epochs"]
        optimizer = torch.optim.AdamW(vae.parameters(), lr=opts["lr"],
                                      weight_decay=opts["weight_decay"])
        return TrainingLoop(
            vae, optimizer, periods=epochs, evaluate=evaluate,
            loss=lambda batch, epoch: ordered_loss(vae, batch, opts["beta"], truncating(epoch),
                                                   generator)[0],
            batches=lambda _: epoch_batches(train, opts["batch_size"], generator),
            schedule=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs),
            schedule_per="period", generator=generator, log_every=10,
            # Pretraining only warms up the ordered variant; select within its last phase.
            select_from=opts["pretrain_epochs"] + 1 if cls.ordered and opts["epochs"] else 1,
            resume=partial_path(out, "autoencoder"), fingerprint={"seed": seed, **opts},
            **loop_options(opts)).run()


class OrderedVQVAE(AnytimeVQVAE):
    """Trained with random truncation: the first codes carry the coarse image."""

    ordered: ClassVar[bool] = True


class UnorderedVQVAE(AnytimeVQVAE):
    """The control: same architecture and size, always trained with all C codes."""

    ordered: ClassVar[bool] = False
