"""Capabilities are Protocols: a model is checked against what it provides when it loads."""

from __future__ import annotations

import pytest
import torch
from conftest import plan_cells

from arbench import Kind, ModelSpec
from arbench.errors import Incompatible
from arbench.plugin.capabilities import (
    PROTOCOLS,
    CausalConditionals,
    CausalLogits,
    ContractError,
    Logits,
    NoiseConditioned,
    OrderedCodes,
    missing,
    require,
)
from arbench.plugin.contracts import Model
from arbench.plugin.registry import registry


class _Base(Model):
    @classmethod
    def load(cls, dataset, device, **params):
        return cls(**params)

    @classmethod
    def train(cls, dataset, out, seed=0, **options):
        raise NotImplementedError


class Discrete(Logits, _Base):
    provides = frozenset({"causal-logits", "causal-conditionals"})

    def logits(self, x):
        return torch.zeros(x.shape[0], x[0].numel(), 3)


class ClaimsNoise(_Base):
    provides = frozenset({"noise-conditioned"})


def test_every_builtin_model_implements_what_it_provides():
    models = registry().names(Kind.MODEL)
    assert len(models) >= 12
    for name in models:
        spec = registry().get(ModelSpec, name)
        cls = spec.load()  # raises ContractError on a mismatch
        assert not hasattr(spec, "provides") and not hasattr(cls, "family")  # declared once
        for capability in spec.provided() - PLUGINS_OWN:
            assert missing(cls, PROTOCOLS[capability]) == [], (name, capability)


# a plugin's own capability: the hf family's network has `generate`, which the hf-* samplers
# check on the instance (`arbench_plugins.samplers.hf_generate.Generates`)
PLUGINS_OWN = frozenset({"transformers-generate"})


def test_logits_alone_give_both_causal_protocols_and_the_model_base_gives_none():
    assert missing(Discrete, CausalLogits) == missing(Discrete, CausalConditionals) == []
    assert missing(ClaimsNoise, CausalLogits) == ["logits()", "value_order()"]
    assert missing(ClaimsNoise, CausalConditionals) == [
        "log_prob()", "sample_value()", "value_order()", "incremental()"]


def test_a_mixin_left_abstract_provides_nothing():
    class NoLogits(Logits, _Base):
        provides = frozenset({"causal-logits"})

    assert "logits()" in missing(NoLogits, CausalLogits)
    with pytest.raises(ContractError, match=r"does not implement logits\(\)"):
        ModelSpec(name="nologits", factory=NoLogits, description="").load()


def test_instances_are_checked_for_the_protocols_attributes_too():
    assert missing(ClaimsNoise(), OrderedCodes) == [
        "encode()", "decode()", "prior_sample()", "num_codes"]


def test_a_model_claiming_a_capability_it_lacks_is_refused_at_load_naming_the_methods():
    spec = ModelSpec(name="claims", factory=ClaimsNoise, description="")
    with pytest.raises(ContractError, match=r"provides 'noise-conditioned' but does not "
                       r"implement smoothed_log_prob\(\), quantize\(\) of NoiseConditioned"):
        spec.load()


def test_require_gives_the_model_or_incompatible_naming_what_is_missing():
    model = Discrete()
    assert require(model, CausalLogits, "jacobi") is model
    with pytest.raises(Incompatible, match=r"pnf: Discrete does not implement NoiseConditioned "
                       r"\(lacks smoothed_log_prob\(\), quantize\(\)\)"):
        require(model, NoiseConditioned, "pnf")
    with pytest.raises(Incompatible, match="no model given; it needs one implementing Noise"):
        require(None, NoiseConditioned, "pnf")


BAD_PLUGIN = '''
from arbench import Model, ModelSpec, hookimpl


class Claims(Model):
    provides = frozenset({"noise-conditioned"})

    @classmethod
    def load(cls, dataset, device, *, family, checkpoint, **params):
        return cls()

    @classmethod
    def train(cls, dataset, out, seed=0, *, family, **options):
        raise NotImplementedError


@hookimpl
def arbench_models():
    return [ModelSpec(name="claims", factory=Claims, description="claims too much",
                      datasets=frozenset({"piano"}))]
'''


def test_a_grid_with_such_a_model_is_refused_before_any_cell_runs(tmp_path, monkeypatch):
    import importlib.metadata

    from conftest import entry_point

    from arbench.plugin.registry import ENTRY_POINT_GROUP, build_registry
    from arbench.run.grid import GridSpec

    (tmp_path / "claims_plugin.py").write_text(BAD_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    builtins = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    reg = build_registry([*builtins, entry_point("claims", "claims_plugin")])
    grid = GridSpec(tasks=["superres"], samplers=["pnf"], datasets=["piano"], models=["claims"],
                    baselines=False)
    with pytest.raises(ContractError, match=r"does not implement smoothed_log_prob\(\)"):
        plan_cells([grid], reg)


def test_a_model_whose_module_cannot_import_joins_no_grid_and_a_dataset_says_why():
    from arbench import DatasetSpec
    from arbench.errors import PluginError

    broken = ModelSpec(name="broken", factory="no_such_module_here:Model", description="")
    with pytest.warns(UserWarning, match="model 'broken' cannot be loaded .*ModuleNotFound"):
        assert broken.provided() == frozenset()
    data = DatasetSpec(name="gone", factory="no_such_module_here:Data", description="")
    with pytest.raises(PluginError, match="dataset 'gone' cannot be loaded"):
        data.data_modality()
