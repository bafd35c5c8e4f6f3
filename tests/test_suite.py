"""Suites and leaderboards: validation, `run --suite`, rendering, and the committed boards."""

from __future__ import annotations

import pytest
from conftest import REPO, plan_cells, run_cli

from arbench import api
from arbench.errors import GridError
from arbench.plugin.registry import registry
from arbench.report.leaderboard import leaderboard_markdown, replace_block, tables_markdown
from arbench.results.store import Store
from arbench.run.suite import find_suite, load_suite

TINY_SUITE = """\
name: tiny
description: the test plugins only
alpha: 0.01
min_effects: {default: 0.01, nll_bpd: 5%}
grids:
  - {tasks: [density], samplers: [toy], datasets: [tiny], seeds: [0, 1]}
  - {tasks: [unconditional], samplers: [toy], datasets: [tiny], budgets: [4, 8], baselines: false}
"""


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\n", "a suite needs 'grids'"),
    ("grids: [{tasks: [density], samplers: [toy]}]\ntolerance: {}\n", "unknown key"),
    ("grids: [{tasks: [density], samplers: [toy], seed: [1]}]\n", "grids[0]: unknown key 'seed'"),
    ("grids: [{tasks: [density], samplers: [toy]}]\nmin_effects: {fid: fast}\n", "fid"),
    ("grids: [{tasks: [density], samplers: [toy]}]\nalpha: 2\n", "between 0 and 1"),
    ("grids: [{tasks: [density], samplers: [toy]}]\ntolerances: {}\n", "now 'min_effects'"),
])
def test_bad_suite_files_name_the_problem(tmp_path, text, message):
    with pytest.raises(GridError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_suite(write(tmp_path / "suite.yaml", text))


def test_unknown_suite_name_suggests_known_ones():
    with pytest.raises(GridError, match="Did you mean 'smoke'"):
        find_suite("smok")
    assert find_suite("smoke") == REPO / "leaderboards" / "smoke" / "suite.yaml"


def test_run_suite_writes_every_grid_into_one_run_and_compare_uses_its_gate(site, tmp_path):
    suite = write(tmp_path / "boards/tiny/suite.yaml", TINY_SUITE)
    result = run_cli(["run", "--suite", str(suite)], cwd=tmp_path, extra_path=[site])
    assert result.returncode == 0, result.stderr
    records = list(Store(tmp_path / "results/tiny").records())
    assert len(records) == 4  # density x 2 seeds, unconditional x 2 budgets
    assert (tmp_path / "results/tiny/suite.yaml").read_text() == TINY_SUITE
    again = run_cli(["run", "--suite", str(suite)], cwd=tmp_path, extra_path=[site])
    assert "4 already finished, 0 to run" in again.stderr.replace("\n", " ")
    result = run_cli(["compare", "results/tiny", "results/tiny"], cwd=tmp_path,
                     extra_path=[site])
    assert result.returncode == 0 and "±5%" not in result.stdout  # nothing changed, no rows


def test_suite_and_task_flags_do_not_mix(site, tmp_path):
    result = run_cli(["run", "--suite", "smoke", "--task", "density", "--sampler", "toy"],
                     cwd=tmp_path, extra_path=[site])
    assert result.returncode == 2 and "one of --suite, --grid" in result.stderr


def test_leaderboard_rerun_renders_its_readme_and_the_readme_block(site, tmp_path):
    write(tmp_path / "leaderboards/tiny/suite.yaml", TINY_SUITE)
    write(tmp_path / "leaderboards/README.md", "intro\n<!-- leaderboard:tiny -->\nold\n"
                                               "<!-- /leaderboard:tiny -->\nend\n")
    dropped = tmp_path / "leaderboards/tiny/cells/a-cell-the-suite-no-longer-has.json"
    write(dropped, "{}")
    result = run_cli(["leaderboard", "tiny", "--rerun"], cwd=tmp_path, extra_path=[site])
    assert result.returncode == 0, result.stderr
    assert not dropped.exists() and len(list(dropped.parent.glob("*.json"))) == 4
    board = (tmp_path / "leaderboards/tiny/README.md").read_text()
    assert board.startswith("# Leaderboard: tiny") and "4 of 4 cells ok" in board
    readme = (tmp_path / "leaderboards/README.md").read_text()
    assert "\nold\n" not in readme and "**density**" in readme and readme.endswith("end\n")


def test_replace_block_leaves_text_without_markers_alone():
    assert replace_block("no markers here", "smoke", "x") is None


# --- the committed leaderboards ---------------------------------------------------------

@pytest.fixture(scope="module", params=["smoke", "latency"])
def board(request):
    suite = load_suite(REPO / f"leaderboards/{request.param}/suite.yaml")
    return suite, list(Store(suite.folder).records())


def test_a_committed_leaderboard_matches_its_suite(board):
    """Every committed cell is a cell of the suite today; else CI's compare would exit 2."""
    suite, records = board
    keys = {cell.key for cell in plan_cells(suite.grids, registry())}
    assert {record.key for record in records} == keys
    assert all(record.status != "failed" for record in records)


def test_a_committed_leaderboards_renderings_are_current(board):
    """Rerun `arbench leaderboard NAME` (from the checkout) when this fails."""
    suite, records = board
    assert (suite.folder / "README.md").read_text() == leaderboard_markdown(suite, records,
                                                                            api.task_views())
    if suite.name == "smoke":  # the tables the leaderboards' own page shows
        readme = (REPO / "leaderboards/README.md").read_text()
        assert tables_markdown(records, api.task_views(), suite.alpha,
                               [suite.folder]) in readme


def test_every_committed_suite_loads_and_expands():
    suites = sorted((REPO / "leaderboards").glob("*/suite.yaml"))
    assert len(suites) >= 3
    for path in suites:
        suite = load_suite(path)
        cells = plan_cells(suite.grids, registry())
        assert cells, path
        for ref in suite.references:  # each published figure names a cell the suite runs
            assert any(cell.task == ref.task and cell.sampler == ref.sampler
                       and cell.variant == ref.variant
                       and ref.budget in (None, cell.budget) for cell in cells), (path, ref)


def test_paper_figures_are_data_rendered_beside_ours_never_in_the_results(tmp_path):
    from test_report import record

    text = TINY_SUITE + """\
references:
  source: A Paper (2021), table 1
  entries:
    - {task: superres, sampler: pnf, variant: ratio=4, metric: snr_db, value: 29.78}
    - {task: superres, sampler: spline, variant: ratio=4, metric: snr_db, value: 23.07}
"""
    suite = load_suite(write(tmp_path / "boards/paper/suite.yaml", text))
    assert [r.value for r in suite.references] == [29.78, 23.07]
    records = [record("superres", "piano", "pnf", {"snr_db": 10.0 + seed}, seed=seed,
                      swept={"ratio": 4}) for seed in (0, 1)]
    page = leaderboard_markdown(suite, records, api.task_views())
    assert "## The paper's figures beside ours" in page and "A Paper (2021), table 1" in page
    lines = [line for line in page.splitlines() if line.startswith("| superres")]
    assert any("| pnf" in line and "29.78" in line and "10.50 ±" in line for line in lines)
    assert any("| spline" in line and "23.07" in line and "not run" in line for line in lines)
    assert "29.78" not in tables_markdown(records, api.task_views())  # never in the results
    with pytest.raises(GridError, match=r"entries\[0\] needs task, sampler, metric and value"):
        load_suite(write(tmp_path / "bad/suite.yaml",
                         TINY_SUITE + "references: {entries: [{task: superres}]}\n"))


def test_a_reference_with_a_budget_is_matched_to_that_budgets_cells_only(tmp_path):
    from test_report import record

    text = TINY_SUITE + """\
references:
  entries:
    - {task: density, sampler: ardm, metric: nll_bpd, value: 1.43, budget: 250}
    - {task: density, sampler: ardm, metric: nll_bpd, value: 1.51, budget: 20}
"""
    suite = load_suite(write(tmp_path / "boards/text8/suite.yaml", text))
    records = [record("density", "text8", "ardm", {"nll_bpd": value}, budget=budget)
               for budget, value in ((250, 1.0), (20, 3.0))]
    lines = [line for line in leaderboard_markdown(suite, records, api.task_views()).splitlines()
             if line.startswith("| density")]
    assert "| 250 " in lines[0] and "1.00 ±" in lines[0]
    assert "| 20 " in lines[1] and "3.00 ±" in lines[1]
    with pytest.raises(GridError, match="budget 'many' is not a positive whole number"):
        load_suite(write(tmp_path / "bad/suite.yaml", TINY_SUITE + (
            "references: {entries: [{task: a, sampler: b, metric: c, value: 1, "
            "budget: many}]}\n")))
