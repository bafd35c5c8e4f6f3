"""Declared parameters: typed, range-checked before any cell runs, shown by `arbench list`."""

from __future__ import annotations

import pytest
from conftest import TESTS, make_dist, run_cli

from arbench.errors import GridError, ParameterError
from arbench.plugin.contracts import Sampler
from arbench.plugin.params import Param
from arbench.plugin.registry import registry
from arbench.run.flags import parse_assignments
from arbench.run.grid import GridSpec, expand, parse_set_options


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    source = (TESTS / "testkit_plugins.py").read_text()
    return make_dist(tmp_path_factory.mktemp("site"), "arbench-testkit",
                     {"testkit_plugins": source}, {"testkit": "testkit_plugins"})


@pytest.mark.parametrize(("param", "given", "expected"), [
    (Param(0.5, gt=0), "1e9", 1e9),          # YAML 1.1 reads 1e9 as a string
    (Param(0.5, gt=0), 2, 2.0),
    (Param(4, ge=2), "8", 8),
    (Param(None, type=int, ge=1), None, None),
    (Param("dp", choices=("dp", "naive")), "naive", "naive"),
    (Param(None, type=str), 123, "123"),      # a path YAML read as a number
])
def test_values_are_converted_to_the_declared_type(param, given, expected):
    value = param.convert(given)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(("param", "given", "allowed"), [
    (Param(256, ge=2), -5, "an int >= 2"),
    (Param(256, ge=2), "abc", "an int >= 2"),
    (Param(256, ge=2), 2.5, "an int >= 2"),
    (Param(256, ge=2), True, "an int >= 2"),
    (Param(0.3, gt=0), 0, "a float > 0"),
    (Param(0.2, gt=0, lt=1), 1.0, "a float > 0 and < 1"),
    (Param(4, ge=1), None, "an int >= 1"),
    (Param("dp", choices=("dp", "naive")), "greedy", "one of 'dp', 'naive'"),
])
def test_bad_values_say_what_is_allowed(param, given, allowed):
    with pytest.raises(ParameterError, match=f"is not {allowed}$"):
        param.convert(given)


def test_a_plugin_that_gives_only_defaults_gets_types_from_them():
    class Old(Sampler):
        defaults = {"steps": 10, "name": None}

    assert Old(steps="12").params == {"steps": 12, "name": None}
    with pytest.raises(ParameterError, match=r"Old.steps='x': 'x' is not an int"):
        Old(steps="x")
    with pytest.raises(ParameterError, match="Old has no parameter 'step'. Did you mean 'steps'"):
        Old(step=3)


def test_grid_values_are_typed_before_cells_exist():
    grid = GridSpec(tasks=["superres"], samplers=["pnf"], datasets=["piano"],
                    params=parse_set_options(["pnf.delta=1e9", "superres.ratio=8"]))
    cells = [c for c in expand(grid, registry()) if c.sampler == "pnf"]
    assert cells and all(c.params["pnf"]["delta"] == 1e9 for c in cells)
    assert isinstance(cells[0].params["pnf"]["delta"], float)
    grid = GridSpec(tasks=["superres"], samplers=["pnf"], sweeps={"pnf": {"levels": [4, 0]}})
    with pytest.raises(GridError, match=r"pnf.levels=0: 0 is not an int >= 1"):
        expand(grid, registry())


def test_the_one_assignment_parser():
    assert parse_assignments(["a=1", "b=x,y"], "--set") == {"a": 1, "b": "x,y"}
    assert parse_assignments(["p.k=1,2"], "--sweep", dotted=True, as_list=True) == {
        "p": {"k": [1, 2]}}
    with pytest.raises(ParameterError, match="must look like PLUGIN.KEY=VALUE"):
        parse_assignments(["k=1"], "--set", dotted=True)


@pytest.mark.parametrize("assignment", ["unconditional.n_samples=-5",
                                        "unconditional.n_samples=abc", "toy.nosuchkey=1"])
def test_bad_set_exits_2_before_any_cell_runs(site, tmp_path, assignment):
    result = run_cli(["run", "--task", "unconditional", "--sampler", "toy", "--set", assignment,
                      "--results-dir", str(tmp_path / "results")], cwd=tmp_path,
                     extra_path=[site])
    assert result.returncode == 2, result.stderr
    assert assignment.split("=")[0].split(".")[1] in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()


def test_list_shows_a_plugins_parameters(tmp_path):
    result = run_cli(["list", "pnf"], cwd=tmp_path)
    assert result.returncode == 0
    for text in ("requires=noise-conditioned", "delta", "a float > 0", "levels",
                 "an int >= 1", "sigma_min", "or None"):
        assert text in result.stdout
