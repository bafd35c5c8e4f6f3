"""Grid expansion, validation of flags and YAML files, cell keys."""

from __future__ import annotations

import pytest
from conftest import plan_cells

from arbench.errors import UnknownPluginError
from arbench.run.flags import parse_budget
from arbench.run.grid import GridError, GridSpec, load_grid_file, parse_set_options


@pytest.mark.parametrize("text", ["0", "-3", "abc", "1.5"])
def test_bad_budgets_are_clear_errors(text):
    with pytest.raises(GridError, match="budget"):
        parse_budget(text)


def test_budget_default_and_numbers():
    assert parse_budget("default") is None
    assert parse_budget("64") == 64


def test_expand_is_the_full_product_with_stable_keys(test_registry):
    grid = GridSpec(tasks=["density"], samplers=["toy"], datasets=["tiny"],
                    budgets=[4, 8], seeds=[0, 1])
    cells = plan_cells([grid], test_registry)
    assert len(cells) == 4
    assert {c.model for c in cells} == {"uniform"}
    assert len({c.key for c in cells}) == 4
    assert [c.key for c in plan_cells([grid], test_registry)] == [c.key for c in cells]


def test_params_change_the_key(test_registry):
    base = GridSpec(tasks=["density"], samplers=["toy"], datasets=["tiny"])
    tuned = GridSpec(tasks=["density"], samplers=["toy"], datasets=["tiny"],
                     params={"toy": {"mode": "slow"}})
    assert plan_cells([base], test_registry)[0].key != plan_cells([tuned], test_registry)[0].key


def test_incompatible_pairs_become_skipped_cells(test_registry):
    grid = GridSpec(tasks=["unconditional"], samplers=["needs-ardm", "toy"], datasets=["tiny"],
                    models=["uniform"])
    cells = {c.sampler: c for c in plan_cells([grid], test_registry)}
    assert "does not serve task 'unconditional'" in cells["needs-ardm"].skip_reason
    assert cells["toy"].skip_reason is None


def test_sampler_without_a_fitting_model_is_skipped(test_registry):
    grid = GridSpec(tasks=["density"], samplers=["needs-ardm"], datasets=["tiny"])
    (cell,) = plan_cells([grid], test_registry)
    assert "no model provides ['order-agnostic']" in cell.skip_reason


def test_unknown_names_fail_with_suggestions(test_registry):
    with pytest.raises(UnknownPluginError, match="Did you mean 'density'"):
        plan_cells([GridSpec(tasks=["densty"], samplers=["toy"])], test_registry)
    with pytest.raises(GridError, match="unknown plugin 'toyy'"):
        plan_cells([GridSpec(tasks=["density"], samplers=["toy"], params={"toyy": {"a": 1}})],
                   test_registry)


def test_yaml_grid_errors_name_the_bad_key(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("tasks: [density]\nsampler: [toy]\n")
    with pytest.raises(GridError, match="unknown key 'sampler'. Did you mean 'samplers'\\?"):
        load_grid_file(path)
    path.write_text("tasks: [density]\nsamplers: [toy]\nbudgets: [8, zero]\n")
    with pytest.raises(GridError, match="budget 'zero' is not a whole number"):
        load_grid_file(path)


def test_yaml_grid_round_trip(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(
        "name: mine\ntasks: density\nsamplers: [toy]\ndatasets: [tiny]\nbudgets: [4, 8]\n"
        "seeds: [0, 2]\nparams: {toy: {mode: slow}}\n"
    )
    grid = load_grid_file(path)
    assert grid.tasks == ["density"] and grid.budgets == [4, 8] and grid.seeds == [0, 2]
    assert grid.params == {"toy": {"mode": "slow"}} and grid.run_name() == "mine"


def test_set_options_parse_values_as_yaml():
    assert parse_set_options(["toy.sleep=0.5", "toy.mode=slow"]) == {
        "toy": {"sleep": 0.5, "mode": "slow"}}
    with pytest.raises(GridError, match="PLUGIN.KEY=VALUE"):
        parse_set_options(["sleep=0.5"])


def test_task_baselines_join_at_their_default_budget(test_registry):
    grid = GridSpec(tasks=["swept-density"], samplers=["needs-ardm"], budgets=[4, 8])
    cells = plan_cells([grid], test_registry)
    toy = [c for c in cells if c.sampler == "toy"]
    assert {c.budget for c in toy} == {None}
    assert {c.dataset for c in cells} == {"tiny"}  # the task's default dataset
    no_baselines = GridSpec(tasks=["swept-density"], samplers=["needs-ardm"], baselines=False)
    assert {c.sampler for c in plan_cells([no_baselines], test_registry)} == {"needs-ardm"}


def test_default_sweep_and_grid_sweeps_multiply_cells(test_registry):
    cells = plan_cells([GridSpec(tasks=["swept-density"], samplers=["toy"])], test_registry)
    assert sorted(c.params["swept-density"]["max_examples"] for c in cells) == [5, 10]
    assert {c.variant for c in cells} == {"max_examples=5", "max_examples=10"}
    grid = GridSpec(tasks=["swept-density"], samplers=["toy"],
                    sweeps={"swept-density": {"max_examples": [3]}, "toy": {"sleep": [0, 1]}})
    cells = plan_cells([grid], test_registry)
    assert len(cells) == 2 and len({c.key for c in cells}) == 2
    assert {c.params["swept-density"]["max_examples"] for c in cells} == {3}
    fixed = GridSpec(tasks=["swept-density"], samplers=["toy"],
                     params={"swept-density": {"max_examples": 7}})
    assert len(plan_cells([fixed], test_registry)) == 1  # a set value overrides the default sweep


def test_sweep_flags_parse_lists():
    assert parse_set_options(["superres.ratio=4,8,16"], sweep=True) == {
        "superres": {"ratio": [4, 8, 16]}}


def test_models_whose_weights_the_user_imports_join_only_grids_that_name_them(test_registry):
    implicit = GridSpec(tasks=["superres"], samplers=["pnf"], datasets=["wavdir"])
    assert {c.model for c in plan_cells([implicit], test_registry)
            if c.sampler == "pnf"} == {"wavenet"}
    named = GridSpec(tasks=["superres"], samplers=["pnf"], datasets=["wavdir"],
                     models=["pnf-wavenet"])
    assert {c.model for c in plan_cells([named], test_registry)
            if c.sampler == "pnf"} == {"pnf-wavenet"}
