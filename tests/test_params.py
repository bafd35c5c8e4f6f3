"""Declared parameters: typed, range-checked before any cell runs, shown by `arbench list`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from conftest import plan_cells, run_cli
from pydantic import ValidationError

from arbench import Param, Params, Sampler
from arbench.errors import ContractError, GridError, ParameterError
from arbench.plugin.params import validate
from arbench.plugin.registry import registry
from arbench.run.flags import parse_assignments
from arbench.run.grid import GridSpec, parse_set_options


class Knobs(Params):
    """One parameter of each kind a plugin declares."""

    rate: float = Param(0.5, "a float", gt=0)
    steps: int = Param(4, "an int", ge=2)
    limit: int | None = Param(None, "an optional int", ge=1)
    policy: Literal["dp", "naive"] = Param("dp", "one of two")
    path: str | None = Param(None, "a file")
    band: float = Param(0.2, "a float in a band", gt=0, lt=1)


@pytest.mark.parametrize(("key", "given", "expected"), [
    ("rate", "1e9", 1e9),          # YAML 1.1 reads 1e9 as a string
    ("rate", 2, 2.0),
    ("steps", "8", 8),
    ("limit", None, None),
    ("policy", "naive", "naive"),
    ("path", 123, "123"),          # a path YAML read as a number
    ("path", Path("/data/x"), "/data/x"),
])
def test_values_are_converted_to_the_declared_type(key, given, expected):
    value = getattr(validate("knobs", Knobs, {key: given}), key)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(("key", "given", "allowed"), [
    ("steps", -5, "an int >= 2"),
    ("steps", "abc", "an int >= 2"),
    ("steps", 2.5, "an int >= 2"),
    ("steps", True, "an int >= 2"),
    ("rate", 0, "a float > 0"),
    ("band", 1.0, "a float > 0 and < 1"),
    ("steps", None, "an int >= 2"),
    ("limit", 0, "an int >= 1, or None"),
    ("policy", "greedy", "one of 'dp', 'naive'"),
])
def test_bad_values_say_what_is_allowed(key, given, allowed):
    with pytest.raises(ParameterError, match=f"^knobs.{key}=.*: .* is not {allowed}$"):
        validate("knobs", Knobs, {key: given})


def test_a_plugin_reads_its_parameters_as_typed_attributes():
    class Stepper(Sampler):
        class Params(Sampler.Params):
            steps: int = Param(10, "steps taken", ge=1)

        params: Params

    assert Stepper(steps="12").params.steps == 12 and Stepper().params.steps == 10
    with pytest.raises(ParameterError, match=r"Stepper.steps='x': 'x' is not an int >= 1"):
        Stepper(steps="x")
    with pytest.raises(ParameterError, match="Stepper has no parameter 'step'. Did you mean "
                                             "'steps'"):
        Stepper(step=3)
    with pytest.raises(ValidationError, match="frozen"):
        Stepper().params.steps = 3  # type: ignore[misc]


def test_the_old_dict_of_defaults_is_refused_saying_what_to_write():
    with pytest.raises(ContractError, match=r"Old.defaults: .* nested `class Params"):
        class Old(Sampler):
            defaults = {"steps": 10}


def test_grid_values_are_typed_before_cells_exist():
    grid = GridSpec(tasks=["superres"], samplers=["pnf"], datasets=["piano"],
                    params=parse_set_options(["pnf.delta=1e9", "superres.ratio=8"]))
    cells = [c for c in plan_cells([grid], registry()) if c.sampler == "pnf"]
    assert cells and all(c.params["pnf"]["delta"] == 1e9 for c in cells)
    assert isinstance(cells[0].params["pnf"]["delta"], float)
    grid = GridSpec(tasks=["superres"], samplers=["pnf"], sweeps={"pnf": {"levels": [4, 0]}})
    with pytest.raises(GridError, match=r"pnf.levels=0: 0 is not an int >= 1"):
        plan_cells([grid], registry())


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
