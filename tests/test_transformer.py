"""The causal transformer: causal logits, a key/value cache that gives a full pass's logits
and ancestral's samples, and `arbench train transformer` that writes a loadable checkpoint."""

from __future__ import annotations

import pytest
import torch
from conftest import model_spec, shipped

from arbench import DatasetSpec
from arbench_plugins.datasets.text import Text
from arbench_plugins.models.transformer.model import Transformer
from arbench_plugins.models.transformer.net import CausalTransformer
from arbench_plugins.samplers.ancestral import Ancestral, naive_sample


def model() -> Transformer:
    torch.manual_seed(0)
    text = Text()
    text.name = "text"
    return Transformer(CausalTransformer(27, 64, width=32, layers=2, heads=4).eval(), text)


def test_row_i_depends_only_on_the_values_before_it():
    net = model()
    x = torch.randint(0, 27, (2, 64), generator=torch.Generator().manual_seed(0))
    changed = x.clone()
    changed[:, 40:] = (changed[:, 40:] + 1) % 27
    with torch.no_grad():
        before, after = net.logits(x), net.logits(changed)
    torch.testing.assert_close(before[:, :41], after[:, :41])
    assert not torch.allclose(before[:, 41:], after[:, 41:])


def test_the_cache_gives_the_full_passs_logits_and_ancestral_samples():
    net = model()
    x = torch.randint(0, 27, (3, 64), generator=torch.Generator().manual_seed(1))
    cache = net.incremental(3)
    steps = torch.stack([cache.logits(None if t == 0 else x[:, t - 1]) for t in range(64)], 1)
    with torch.no_grad():
        torch.testing.assert_close(steps, net.logits(x), atol=1e-5, rtol=1e-5)
    text = Text()
    cached = Ancestral().sample(net, text, 4, None, torch.Generator().manual_seed(2))
    naive = naive_sample(net, text, 4, torch.Generator().manual_seed(2))
    assert torch.equal(cached.samples, naive.samples)


def test_training_writes_a_checkpoint_that_loads(tmp_path):
    text = Text()
    text.name = "text"
    out = Transformer.train(text, tmp_path / "t.pt", family="transformer", preset="tiny",
                            device="cpu")
    loaded = shipped("transformer", text, checkpoint=str(out))
    drawn = Ancestral().sample(loaded, text, 2, None, torch.Generator().manual_seed(0))
    assert drawn.samples.shape == (2, *text.shape) and int(drawn.samples.max()) < 27


def test_half_precision_storage_scores_the_weights_it_stores(tmp_path):
    import json

    from arbench_plugins.models.transformer.model import bits_per_value

    text = Text()
    text.name = "text"
    out = Transformer.train(text, tmp_path / "t.pt", family="transformer", preset="tiny",
                            device="cpu", half=True)
    stored = torch.load(out, weights_only=True)["state_dict"]
    assert {value.dtype for value in stored.values() if value.is_floating_point()} == {
        torch.float16}
    loaded = shipped("transformer", text, checkpoint=str(out))
    assert {p.dtype for p in loaded.net.parameters()} == {torch.float32}
    recorded = json.loads(out.with_suffix(".json").read_text())["test_bits_per_value"]
    bits = bits_per_value(loaded.net, text.load("test").reshape(-1, text.dims))
    assert bits == pytest.approx(recorded, abs=1e-4)  # the score of what was stored


def test_the_medium_size_joins_only_the_grids_that_name_it():
    from conftest import plan_cells

    from arbench.run.grid import GridSpec

    default = GridSpec(tasks=["unconditional"], samplers=["ancestral"], datasets=["text"])
    assert {cell.model for cell in plan_cells([default])} == {"transformer"}
    named = GridSpec(tasks=["unconditional"], samplers=["ancestral"], datasets=["text"],
                     models=["transformer-medium"])
    assert {cell.model for cell in plan_cells([named])} == {"transformer-medium"}


def test_the_window_cache_gives_the_full_passs_logits_at_each_rows_own_positions():
    """Speculative verification: rows stand at different positions; from one call to the
    next, only values at or after a row's new start change (its rejected drafts)."""
    net, width = model(), 5
    generator = torch.Generator().manual_seed(3)
    x = torch.randint(0, 27, (3, 64), generator=generator)
    cache, starts = net.incremental(3), torch.tensor([0, 0, 0])
    while bool((starts < 64).any()):
        got = cache.window(x, starts, width)
        with torch.no_grad():
            full = net.logits(x)
        where = starts[:, None] + torch.arange(width)
        inside = where < 64
        expected = full[torch.arange(3)[:, None], where.clamp(max=63)]
        torch.testing.assert_close(got[inside], expected[inside], atol=1e-5, rtol=1e-5)
        starts = (starts + torch.randint(1, width + 1, (3,), generator=generator)).clamp(max=64)
        later = torch.arange(64) >= starts[:, None]
        x = x.where(~later, torch.randint(0, 27, (3, 64), generator=generator))


def test_the_shipped_checkpoints_score_their_test_splits_as_their_sidecars_say():
    import json

    import pytest

    from arbench.plugin.registry import registry
    from arbench.training.checkpoints import sidecar
    from arbench_plugins.models.transformer.model import bits_per_value

    for family, name in (("transformer", "text"), ("transformer", "digits"),
                         ("transformer-medium", "text")):
        data = registry().get(DatasetSpec, name).load()()
        data.name = name
        loaded = shipped(family, data)
        recorded = json.loads(sidecar(model_spec(family).checkpoint_path(name, {}))
                              .read_text())
        assert recorded["command"] == f"arbench train {family} --dataset {name}"
        bits = bits_per_value(loaded.net, data.load("test").reshape(-1, data.dims))
        assert bits == pytest.approx(recorded["test_bits_per_value"], abs=1e-3)
