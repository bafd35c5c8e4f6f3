"""`arbench compare`: directions, tolerances, and exit codes CI can tell apart."""

from __future__ import annotations

import pytest
from conftest import TESTS, make_dist, run_cli

from arbench.compare import (
    CANNOT_COMPARE,
    NO_REGRESSION,
    REGRESSION,
    CompareError,
    Tolerance,
    Tolerances,
    compare_records,
    parse_tolerance,
)


def record(key: str, metrics: dict[str, tuple[float, str]], status: str = "ok") -> dict:
    return {"key": key, "status": status, "task": "t", "dataset": "d", "model": "m",
            "sampler": "s", "variant": "", "budget": 8, "seed": 0, "reason": "boom",
            "metrics": {name: {"value": value, "direction": direction, "unit": ""}
                        for name, (value, direction) in metrics.items()}}


@pytest.mark.parametrize(("metric", "direction", "before", "after", "verdict"), [
    ("si_sdr_db", "higher", 10.0, 9.0, "regressed"),
    ("si_sdr_db", "higher", 10.0, 11.0, "improved"),
    ("inception_score", "higher", 5.0, 4.0, "regressed"),
    ("nll_bpd", "lower", 1.8, 1.9, "regressed"),
    ("nll_bpd", "lower", 1.8, 1.7, "improved"),
    ("fid", "lower", 20.0, 25.0, "regressed"),
    ("fid", "lower", 20.0, 20.0, "unchanged"),
])
def test_direction_decides_what_worse_means(metric, direction, before, after, verdict):
    result = compare_records([record("a", {metric: (before, direction)})],
                             [record("a", {metric: (after, direction)})])
    assert [change.verdict for change in result.changes] == [verdict]
    expected = REGRESSION if verdict == "regressed" else NO_REGRESSION
    assert result.exit_code == expected


def test_absolute_and_relative_tolerances():
    assert parse_tolerance(0.5) == Tolerance(abs=0.5)
    assert parse_tolerance("2%") == Tolerance(rel=0.02)
    assert parse_tolerance({"abs": 0.1, "rel": 0.01}).allowed(20.0) == pytest.approx(0.2)
    tolerances = Tolerances.from_mapping({"default": "1%", "si_sdr_db": 0.5})
    assert tolerances.for_metric("si_sdr_db/piano") == Tolerance(abs=0.5)  # base name
    assert tolerances.for_metric("nll_bpd") == Tolerance(rel=0.01)
    before = [record("a", {"si_sdr_db/piano": (10.0, "higher"), "nll_bpd": (2.0, "lower")})]
    within = [record("a", {"si_sdr_db/piano": (9.6, "higher"), "nll_bpd": (2.019, "lower")})]
    beyond = [record("a", {"si_sdr_db/piano": (9.4, "higher"), "nll_bpd": (2.021, "lower")})]
    assert compare_records(before, within, tolerances).exit_code == NO_REGRESSION
    result = compare_records(before, beyond, tolerances)
    assert result.exit_code == REGRESSION
    assert {c.metric for c in result.of("regressed")} == {"si_sdr_db/piano", "nll_bpd"}


def test_dataset_specific_tolerances_come_first():
    tolerances = Tolerances.from_mapping({"snr_db": 0.1, "voice:snr_db": 2.0,
                                          "voice:snr_db/hidden": 0.5})
    assert tolerances.for_metric("snr_db", "voice") == Tolerance(abs=2.0)
    assert tolerances.for_metric("snr_db/hidden", "voice") == Tolerance(abs=0.5)
    assert tolerances.for_metric("snr_db/hidden", "piano") == Tolerance(abs=0.1)
    before = [{**record("a", {"snr_db": (5.0, "higher")}), "dataset": "voice"}]
    after = [{**record("a", {"snr_db": (3.5, "higher")}), "dataset": "voice"}]
    assert compare_records(before, after, tolerances).exit_code == NO_REGRESSION


def test_flags_override_the_suite_and_default_is_float_noise():
    suite = Tolerances.from_mapping({"default": 0.1, "fid": 1.0})
    merged = suite.update(Tolerances.from_mapping({"fid": "5%"}))
    assert merged.for_metric("fid") == Tolerance(rel=0.05)
    assert merged.for_metric("other") == Tolerance(abs=0.1)
    assert Tolerances().for_metric("x").allowed(1.0) < 1e-5


@pytest.mark.parametrize("bad", ["fast", "-1", {"absolute": 1}, "x%"])
def test_bad_tolerances_are_clear_errors(bad):
    with pytest.raises(CompareError, match="tolerance"):
        parse_tolerance(bad)


def test_missing_failing_and_new_cells():
    before = [record("a", {"fid": (1.0, "lower")}), record("b", {"fid": (1.0, "lower")})]
    failing = [record("a", {"fid": (1.0, "lower")}), record("b", {}, status="failed")]
    result = compare_records(before, failing)
    assert result.exit_code == REGRESSION and result.now_failing
    assert "Passed in the baseline, not now" in result.markdown()
    missing = compare_records(before, [before[0], record("c", {"fid": (1.0, "lower")})])
    assert missing.exit_code == CANNOT_COMPARE
    assert len(missing.missing) == 1 and len(missing.new) == 1
    assert compare_records([], []).exit_code == CANNOT_COMPARE  # nothing compared is no pass


# --- the command line, with a deliberately degraded build of the test sampler -------------

def _site(root, penalty: float):
    source = (TESTS / "testkit_plugins.py").read_text()
    assert "NLL_PENALTY = 0.0\n" in source
    source = source.replace("NLL_PENALTY = 0.0\n", f"NLL_PENALTY = {penalty}\n")
    # Same package name and version: the cells get the same keys, like a pull request would.
    return make_dist(root, "arbench-testkit", {"testkit_plugins": source},
                     {"testkit": "testkit_plugins"})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """results/base, results/same (identical code) and results/worse (degraded sampler)."""
    work = tmp_path_factory.mktemp("compare")
    good, degraded = _site(work / "good", 0.0), _site(work / "degraded", 0.5)
    for name, site in (("base", good), ("same", good), ("worse", degraded)):
        result = run_cli(["run", "--task", "density,unconditional", "--sampler", "toy",
                          "--dataset", "tiny", "--seed", "0,1", "--name", name],
                         cwd=work, extra_path=[site])
        assert result.returncode == 0, result.stderr
    return work, good


def test_identical_runs_exit_0(runs):
    work, site = runs
    result = run_cli(["compare", "results/base", "results/same"], cwd=work, extra_path=[site])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no regression" in result.stdout


def test_degraded_sampler_exits_1_and_names_the_cells(runs):
    work, site = runs
    result = run_cli(["compare", "results/base", "results/worse", "--out", "diff.md"],
                     cwd=work, extra_path=[site])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "### Regressed" in result.stdout
    for seed in (0, 1):
        assert f"density/tiny/uniform/toy budget=default seed={seed}" in result.stdout
    assert "unconditional/" not in result.stdout.split("### Regressed")[1]  # samples unchanged
    assert (work / "diff.md").read_text() == result.stdout.rstrip("\n") + "\n"


def test_a_tolerance_flag_can_accept_the_change(runs):
    work, site = runs
    # 0.5 nats on 4 dims is 0.18 bits/dim
    result = run_cli(["compare", "results/base", "results/worse", "--tolerance", "nll_bpd=0.2"],
                     cwd=work, extra_path=[site])
    assert result.returncode == 0, result.stdout + result.stderr


def test_truncated_results_file_exits_2_with_a_message(runs, tmp_path):
    work, site = runs
    broken = tmp_path / "broken"
    (broken / "cells").mkdir(parents=True)
    first = sorted((work / "results/same/cells").glob("*.json"))[0]
    for path in (work / "results/same/cells").glob("*.json"):
        (broken / "cells" / path.name).write_text(path.read_text())
    (broken / "cells" / first.name).write_text(first.read_text()[:50])
    result = run_cli(["compare", "results/base", str(broken)], cwd=work, extra_path=[site])
    assert result.returncode == 2
    assert first.name in result.stderr and "not a valid result record" in result.stderr


def test_missing_cells_and_missing_runs_exit_2(runs, tmp_path):
    work, site = runs
    partial = tmp_path / "partial"
    (partial / "cells").mkdir(parents=True)
    for path in sorted((work / "results/same/cells").glob("*.json"))[1:]:
        (partial / "cells" / path.name).write_text(path.read_text())
    result = run_cli(["compare", "results/base", str(partial)], cwd=work, extra_path=[site])
    assert result.returncode == 2 and "Missing from CURRENT" in result.stdout
    result = run_cli(["compare", "results/base", "results/nope"], cwd=work, extra_path=[site])
    assert result.returncode == 2 and "holds no results" in result.stderr
