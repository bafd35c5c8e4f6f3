"""arbench as a library: the functions the CLI wraps, called directly."""

from __future__ import annotations

import pytest

from arbench import api
from arbench.errors import ArbenchError, UsageError
from arbench.results.record import Record
from arbench.run.grid import GridSpec

DENSITY = GridSpec(tasks=["density"], datasets=["rings"], models=["true-density"],
                   seeds=[0, 1], params={"density": {"max_examples": 64}})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    seen: list[Record] = []
    outcome = api.run(api.RunRequest((DENSITY,), "lib"), tmp_path_factory.mktemp("results"),
                      on_record=lambda cell, record: seen.append(record))
    return outcome, seen


def test_run_returns_typed_records_as_they_finish(run):
    outcome, seen = run
    assert (outcome.cells, outcome.ran, outcome.failed) == (2, 2, 0)
    assert outcome.statuses == {"ok": 2}
    assert all(isinstance(record, Record) and record.status == "ok" for record in seen)
    assert {record.key for record in seen} == {r.key for r in outcome.store.records()}
    # the closed-form density of the rings on its own test points: -1.22 nats per point
    assert all(-1.5 < record.metrics["nll_nats"].value < -1.0 for record in seen), seen


def test_a_rerun_finds_every_cell_finished(run, tmp_path):
    outcome, _ = run
    again = api.run(api.RunRequest((DENSITY,), "lib"), outcome.store.run_dir.parent)
    assert (again.cells, again.ran) == (2, 0)


def test_report_and_compare_read_the_run(run):
    outcome, _ = run
    report = api.build([outcome.store.run_dir])
    assert any(table.task.startswith("density") for table in report.tables)
    assert "nll_nats" in api.report([outcome.store.run_dir]).markdown
    verdict = api.compare(outcome.store.run_dir, outcome.store.run_dir)
    assert verdict.exit_code == 0 and not verdict.of("regressed")


def test_bad_input_is_an_arbench_error_with_what_to_do(run, tmp_path):
    outcome, _ = run
    with pytest.raises(UsageError, match="--jobs 0: give at least 1"):
        api.run(api.RunRequest((DENSITY,), "lib"), tmp_path, jobs=0)
    damaged = tmp_path / "damaged"
    (damaged / "cells").mkdir(parents=True)
    (damaged / "cells" / "abc.json").write_text("{not json")
    with pytest.raises(ArbenchError, match="cannot be read, so the runs cannot be compared"):
        api.compare(outcome.store.run_dir, damaged)
    with pytest.raises(ArbenchError, match="does not exist"):
        api.import_released("pnf-wavenet", tmp_path / "missing", tmp_path / "out")


def test_a_request_parses_the_command_line_once_and_leaves_grids_as_they_were():
    asked = api.request(tasks=["density"], samplers=["ancestral"], datasets=["digits"],
                        budgets=["64"], seeds=["0", "1"], set_=["density.max_examples=8"])
    (grid,) = asked.grids
    assert (grid.budgets, grid.seeds, grid.params) == ([64], [0, 1],
                                                      {"density": {"max_examples": 8}})
    assert asked.name == "density-ancestral-digits" and asked.suite is None
    smoke = api.request(suite="smoke", seeds=["3"])
    assert smoke.suite is not None and smoke.name == "smoke"
    assert all(grid.seeds == [3] for grid in smoke.grids)
    assert all(grid.seeds != [3] for grid in smoke.suite.grids)  # the suite is not changed
    with pytest.raises(UsageError, match="give one of --suite, --grid, or --task"):
        api.request(tasks=["density"], suite="smoke")
