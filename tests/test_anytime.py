"""Anytime sampling with ordered VQ-VAE codes: truncation, straight-through, NFE, training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import model_spec, plan_cells, shipped

from arbench.errors import CheckpointError, Incompatible
from arbench.plugin.contracts import Dataset
from arbench_plugins.models.vqvae.model import OrderedVQVAE, UnorderedVQVAE
from arbench_plugins.models.vqvae.nets import AnytimeNet, draw_truncation, ordered_loss, truncate
from arbench_plugins.samplers.anytime import Anytime

CODES, BOOK = 4, 8
CHECKPOINTS = Path(__file__).parents[1] / "plugins" / "models" / "vqvae" / "checkpoints"


class TinyDigits(Dataset):
    name = "tiny-digits"
    shape = (1, 8, 8)
    num_levels = 17

    def load(self, split: str) -> torch.Tensor:
        seed = {"train": 0, "test": 1}[split]
        return torch.randint(0, 17, (48, 1, 8, 8), generator=torch.Generator().manual_seed(seed))


def tiny_net(ordered: bool = True, seed: int = 0) -> AnytimeNet:
    torch.manual_seed(seed)
    return AnytimeNet(num_levels=17, shape=[1, 8, 8], codes=CODES, codebook_size=BOOK,
                      hidden=8, ema_decay=0.9, ordered=ordered, prior_width=16,
                      prior_layers=1, prior_heads=2, prior_dropout=0.0)


def tiny_model(ordered: bool = True) -> OrderedVQVAE:
    cls = OrderedVQVAE if ordered else UnorderedVQVAE
    return cls(tiny_net(ordered).eval(), TinyDigits())


def test_truncate_zeroes_exactly_the_codes_beyond_k():
    z = torch.randn(3, CODES, 5) + 10  # no entry is zero by chance
    for k in range(CODES + 1):
        out = truncate(z, k)
        assert torch.equal(out[:, :k], z[:, :k])
        assert (out[:, k:] == 0).all()
    per_example = truncate(z, torch.tensor([1, 3, 4]))
    for row, k in enumerate([1, 3, 4]):
        assert torch.equal(per_example[row, :k], z[row, :k]) and (per_example[row, k:] == 0).all()
    codes = torch.arange(1, CODES + 1).repeat(2, 1)  # (B, C) per-code values
    assert truncate(codes, 2).tolist() == [[1, 2, 0, 0]] * 2


def test_decode_ignores_exactly_the_codes_beyond_k():
    model = tiny_model()
    codes = torch.randint(0, BOOK, (2, CODES), generator=torch.Generator().manual_seed(0))
    for k in range(1, CODES + 1):
        changed_after = codes.clone()
        changed_after[:, k:] = (codes[:, k:] + 1) % BOOK
        logits = model.decoder_logits(codes, k)
        assert torch.equal(logits, model.decoder_logits(changed_after, k))
        assert torch.equal(logits, model.decoder_logits(codes[:, :k]))  # shorter codes: padded
        changed_at = codes.clone()
        changed_at[:, k - 1] = (codes[:, k - 1] + 1) % BOOK
        assert not torch.allclose(logits, model.decoder_logits(changed_at, k))
    # zeroed means zero latents, not code 0
    vae = model.vae
    zero_latents = vae.decode_latents(torch.zeros(2, CODES, vae.quantizer.dim))
    assert torch.equal(model.decoder_logits(codes, 0), zero_latents)


def test_straight_through_gradient_reaches_the_encoder():
    net = tiny_net()
    x = TinyDigits().load("train")[:8]
    logits, _, _ = net.autoencoder(x)
    F.cross_entropy(logits, x).backward()  # reconstruction only: no commitment term
    for name, param in net.autoencoder.encoder.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_ordered_objective_draws_k_uniformly_in_1_to_C():
    generator = torch.Generator().manual_seed(0)
    k = draw_truncation(4000, CODES, generator)
    assert k.min() == 1 and k.max() == CODES
    counts = torch.bincount(k, minlength=CODES + 1)[1:].float()
    assert counts.sum() == 4000 and (counts / 4000 - 1 / CODES).abs().max() < 0.03
    net = tiny_net().train()
    x = TinyDigits().load("train")
    loss, reconstruction, drawn = ordered_loss(net.autoencoder, x, 0.25, True, generator)
    assert drawn.shape == (len(x),) and drawn.min() >= 1 and drawn.max() <= CODES
    assert torch.isfinite(loss) and loss >= reconstruction
    assert ordered_loss(net.autoencoder, x, 0.25, False, generator)[2] is None


def test_ordered_training_decodes_the_truncated_code(monkeypatch):
    """The decoder sees zeros exactly beyond each example's k during ordered training."""
    net = tiny_net().train()
    seen = []
    monkeypatch.setattr(net.autoencoder, "decode_latents",
                        lambda zq: seen.append(zq.detach()) or torch.zeros(len(zq), 17, 1, 8, 8))
    x = TinyDigits().load("train")
    _, _, k = ordered_loss(net.autoencoder, x, 0.25, True, torch.Generator().manual_seed(1))
    (zq,) = seen
    nonzero = zq.abs().sum(-1) > 0  # (B, C)
    assert torch.equal(nonzero, torch.arange(CODES) < k[:, None])


def test_prior_is_causal_and_log_prob_is_its_sum_of_conditionals():
    model = tiny_model()
    codes = torch.randint(0, BOOK, (3, CODES), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        total = model.code_prior.log_prob(codes)
        stepwise = sum(model.code_prior(codes[:, :i])[:, -1].log_softmax(-1)
                       .gather(1, codes[:, i:i + 1]).squeeze(1) for i in range(CODES))
    assert torch.allclose(total, stepwise, atol=1e-5)
    x = TinyDigits().load("test")[:5]
    bound = model.log_prob(x)
    assert bound.shape == (5,) and torch.isfinite(bound).all() and (bound < 0).all()


@pytest.mark.parametrize(("budget", "k"), [(1, 1), (3, 3), (None, CODES), (100, CODES)])
@pytest.mark.parametrize("decode", ["argmax", "sample"])
def test_sampler_spends_k_prior_calls(budget, k, decode):
    model = tiny_model(ordered=decode == "argmax")
    calls = []
    model.code_prior.register_forward_hook(lambda *_: calls.append(1))
    out = Anytime(decode=decode).sample(model, TinyDigits(), 5, budget,
                                        torch.Generator().manual_seed(0))
    assert out.nfe == k and len(calls) == k
    assert out.samples.shape == (5, 1, 8, 8) and out.samples.dtype == torch.long
    assert out.samples.min() >= 0 and out.samples.max() <= 16


def test_sampler_rejects_what_it_cannot_serve():
    model, generator = tiny_model(), torch.Generator().manual_seed(0)
    with pytest.raises(Incompatible):
        Anytime().sample(model, TinyDigits(), 2, 0, generator)
    with pytest.raises(Incompatible):
        Anytime().sample(None, TinyDigits(), 2, 2, generator)
    with pytest.raises(Incompatible):
        Anytime().sample(model, TinyDigits(), 2, 2, generator, condition=object())
    with pytest.raises(ValueError, match="decode"):
        Anytime(decode="mean")


def test_train_writes_a_checkpoint_that_loads(tmp_path):
    dataset = TinyDigits()
    options = {"codes": CODES, "codebook_size": BOOK, "hidden": 8, "pretrain_epochs": 1,
               "epochs": 1, "prior_width": 16, "prior_layers": 1, "prior_heads": 2,
               "prior_steps": 2, "prior_eval_every": 1}
    path = OrderedVQVAE.train(dataset, tmp_path / "o.pt", seed=0, family="ordered-vqvae",
                              **options)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["command"].startswith("arbench train ordered-vqvae --dataset tiny-digits")
    assert len(meta["test_reconstruction_vs_k"]["mse_data_units"]) == CODES
    assert {"prior_nll", "train_seconds", "sha256"} <= set(meta)
    model = shipped("ordered-vqvae", dataset, checkpoint=str(path))
    assert model.num_codes == CODES and model.encode(dataset.load("test")[:3]).shape == (3, CODES)
    sha = model_spec("ordered-vqvae").checkpoint_sha256("tiny-digits", {"checkpoint": str(path)})
    assert sha == meta["sha256"]
    with pytest.raises(CheckpointError, match="ordered-vqvae"):
        shipped("vqvae", dataset, checkpoint=str(path))
    with pytest.raises(ValueError, match="unknown training option"):
        OrderedVQVAE.train(dataset, tmp_path / "x.pt", family="ordered-vqvae", bogus=1)


def test_reconstruct_decodes_its_own_first_k_codes_without_prior_calls():
    model, x = tiny_model(), TinyDigits().load("test")[:6]
    calls = []
    model.code_prior.register_forward_hook(lambda *_: calls.append(1))
    generator = torch.Generator().manual_seed(0)
    for budget, k in ((1, 1), (None, CODES), (100, CODES)):
        out = Anytime().reconstruct(model, x, budget, generator)
        assert out.nfe == 0 and not calls
        assert torch.equal(out.samples, model.decode(model.encode(x), k))
    with pytest.raises(Incompatible):
        Anytime().reconstruct(None, x, 2, generator)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """Shipped checkpoints on digits: reconstruction vs k, and unconditional samples from
    every sampler that serves the task (ancestral joins as the baseline)."""
    from arbench.plugin.registry import build_registry
    from arbench.results.store import Store
    from arbench.run.grid import GridSpec
    from arbench.run.runner import Runner

    root = tmp_path_factory.mktemp("digits-run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARBENCH_CACHE", str(root / "cache"))
        registry = build_registry()
        grids = [GridSpec(tasks=["reconstruction"], samplers=["anytime"], budgets=[4, 16]),
                 GridSpec(tasks=["unconditional"], samplers=["anytime", "ardm", "pnf"],
                          budgets=[16], params={"unconditional": {"n_samples": 128}})]
        cells = [cell for grid in grids for cell in plan_cells([grid], registry)]
        runner = Runner(registry, Store(root / "run"), "cpu", "run", timing_repeats=1)
        runner.run(cells)
        records = list(Store(root / "run").records())
    return records


def test_reconstruction_error_is_the_checkpoints_recorded_curve(digits_run):
    recon = {(r.identity.model, r.identity.budget): r for r in digits_run
             if r.identity.task == "reconstruction"}
    assert len(recon) == 4 and all(r.status == "ok" and r.cost.nfe == 0 for r in recon.values())
    for model in ("ordered-vqvae", "vqvae"):
        curve = json.loads((CHECKPOINTS / f"{model}-digits.json").read_text())
        recorded = curve["test_reconstruction_vs_k"]["mse_data_units"]
        for k in (4, 16):
            mse = recon[(model, k)].metrics["mse"].value
            assert mse == pytest.approx(recorded[k - 1], abs=1e-5)
            psnr = recon[(model, k)].metrics["psnr_db"].value
            assert psnr >= 10 * math.log10(4 / mse) - 1e-9  # mean of logs >= log of mean
    # the point of ordering: a quarter of the code keeps far more of the image
    ordered_4, unordered_4 = (recon[(m, 4)].metrics["mse"].value
                              for m in ("ordered-vqvae", "vqvae"))
    assert ordered_4 < 0.7 * unordered_4


def test_every_unconditional_digits_sampler_gets_fid_and_is(digits_run):
    uncond = [r for r in digits_run if r.identity.task == "unconditional"]
    by_sampler = {}
    for record in uncond:
        assert record.status == "ok", record.reason
        by_sampler.setdefault(record.identity.sampler, []).append(record)
        assert {"fid", "inception_score"} <= set(record.metrics)
        assert record.metrics["fid"].unit == "digits-classifier"
        assert record.extra["n_samples"] == 128 and record.cost.sampler_time_s > 0
    assert set(by_sampler) == {"ancestral", "anytime", "ardm", "pnf"}
    assert all(r.cost.nfe == 16 for r in by_sampler["anytime"])
    # only exact-likelihood models score their samples' NLL
    assert all("sample_nll_bpd" not in r.metrics for r in by_sampler["ardm"])
    assert all("sample_nll_bpd" in r.metrics for r in by_sampler["ancestral"])
