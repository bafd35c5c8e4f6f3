"""`arbench compare`: directions, minimum effects, tests, NFE, and exit codes CI can tell apart."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TESTS, make_dist, run_cli

from arbench.results.compare import (
    CANNOT_COMPARE,
    NO_REGRESSION,
    REGRESSION,
    CompareError,
    MinEffect,
    MinEffects,
    compare_records,
    parse_min_effect,
)
from arbench.results.record import Record
from arbench.results.statistics import Measured
from arbench.results.store import Store


def record(key: str, metrics: dict[str, tuple], status: str = "ok", nfe: int = 8) -> Record:
    """A record whose metrics are (value, direction) or (per-example values, direction)."""
    return Record.model_validate(raw_record(key, metrics, status, nfe))


def with_metrics(key: str, entries: dict) -> Record:
    """A record with these metric entries as stored (value, direction, unit, ...)."""
    return Record.model_validate({**raw_record(key, {}), "metrics": entries})


def raw_record(key: str, metrics: dict[str, tuple], status: str = "ok", nfe: int = 8) -> dict:
    entries = {}
    for name, (value, direction) in metrics.items():
        measured = (Measured.of_examples(value) if isinstance(value, np.ndarray)
                    else Measured(value))
        entries[name] = {**measured.to_record(), "direction": direction, "unit": ""}
    return {"key": key, "status": status, "task": "t", "dataset": "d", "model": "m",
            "sampler": "s", "variant": "", "budget": 8, "seed": 0, "reason": "boom",
            "nfe": nfe, "metrics": entries}


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


def _clips(mean: float, spread: float, n: int = 64, seed: int = 0) -> np.ndarray:
    return mean + spread * np.random.default_rng(seed).standard_normal(n)


def test_a_regression_must_be_both_larger_than_the_minimum_effect_and_significant():
    effects = MinEffects.from_mapping({"snr_db": 0.5})
    base = _clips(10.0, 2.0)
    before = [record("a", {"snr_db": (base, "higher")})]

    def verdict(after_values):
        result = compare_records(before, [record("a", {"snr_db": (after_values, "higher")})],
                                 effects, alpha=0.01)
        return result.changes[0]

    # every clip 0.8 dB worse: beyond the minimum effect and certain
    shifted = verdict(base - 0.8)
    assert shifted.verdict == "regressed" and shifted.difference.p < 1e-6
    assert shifted.difference.test == "Wilcoxon signed-rank"
    assert shifted.difference.low < -0.79 and shifted.difference.high > -0.81
    # every clip 0.2 dB worse: significant, but smaller than what matters
    assert verdict(base - 0.2).verdict == "unchanged"
    # clips redrawn at random (a chaotic sampler on other floats): a mean moved by noise
    noisy = verdict(_clips(10.0, 2.0, seed=7))
    assert abs(noisy.worse_by) < 1.0 and noisy.difference.p > 0.01
    assert noisy.verdict == "unchanged"


def test_unpaired_values_and_replicates_have_their_own_tests():
    before = Measured.of_examples(_clips(1.8, 0.1, seed=1)).unpaired()
    after = Measured.of_examples(_clips(1.9, 0.1, seed=2)).unpaired()
    entry = lambda m: {**m.to_record(), "direction": "lower", "unit": ""}  # noqa: E731
    result = compare_records([with_metrics("a", {"sample_nll_bpd": entry(before)})],
                             [with_metrics("a", {"sample_nll_bpd": entry(after)})])
    assert result.changes[0].difference.test == "Mann-Whitney U"
    assert result.exit_code == REGRESSION
    def fid(centre, seed):  # two sample sets: independent replicates
        replicates = _clips(centre, 1.0, 200, seed)
        return {**Measured(centre, replicates=replicates).to_record(), "direction": "lower",
                "unit": ""}

    worse = compare_records([with_metrics("a", {"fid": fid(30.0, 1)})],
                            [with_metrics("a", {"fid": fid(36.0, 2)})])
    assert worse.changes[0].difference.test == "bootstrap replicates"
    assert worse.exit_code == REGRESSION
    close = compare_records([with_metrics("a", {"fid": fid(30.0, 1)})],
                            [with_metrics("a", {"fid": fid(30.5, 2)})],
                            MinEffects.from_mapping({"fid": 0.1}))
    assert close.changes[0].verdict == "unchanged"  # within the replicates' spread


def test_more_network_calls_at_the_same_configuration_is_a_regression():
    before = [record("a", {"nll_bpd": (1.8, "lower")}, nfe=25)]
    more = compare_records(before, [record("a", {"nll_bpd": (1.8, "lower")}, nfe=64)])
    assert more.exit_code == REGRESSION and "NFE" in more.markdown()
    assert "REGRESSED (more calls)" in more.markdown()
    fewer = compare_records(before, [record("a", {"nll_bpd": (1.8, "lower")}, nfe=16)])
    assert fewer.exit_code == NO_REGRESSION and "fewer calls" in fewer.markdown()


def test_absolute_and_relative_min_effects():
    assert parse_min_effect(0.5) == MinEffect(abs=0.5)
    assert parse_min_effect("2%") == MinEffect(rel=0.02)
    assert parse_min_effect({"abs": 0.1, "rel": 0.01}).allowed(20.0) == pytest.approx(0.2)
    effects = MinEffects.from_mapping({"default": "1%", "si_sdr_db": 0.5})
    assert effects.for_metric("si_sdr_db/piano") == MinEffect(abs=0.5)  # base name
    assert effects.for_metric("nll_bpd") == MinEffect(rel=0.01)
    before = [record("a", {"si_sdr_db/piano": (10.0, "higher"), "nll_bpd": (2.0, "lower")})]
    within = [record("a", {"si_sdr_db/piano": (9.6, "higher"), "nll_bpd": (2.019, "lower")})]
    beyond = [record("a", {"si_sdr_db/piano": (9.4, "higher"), "nll_bpd": (2.021, "lower")})]
    assert compare_records(before, within, effects).exit_code == NO_REGRESSION
    result = compare_records(before, beyond, effects)
    assert result.exit_code == REGRESSION
    assert {c.metric for c in result.of("regressed")} == {"si_sdr_db/piano", "nll_bpd"}


def test_dataset_specific_min_effects_come_first():
    effects = MinEffects.from_mapping({"snr_db": 0.1, "voice:snr_db": 2.0,
                                       "voice:snr_db/hidden": 0.5})
    assert effects.for_metric("snr_db", "voice") == MinEffect(abs=2.0)
    assert effects.for_metric("snr_db/hidden", "voice") == MinEffect(abs=0.5)
    assert effects.for_metric("snr_db/hidden", "piano") == MinEffect(abs=0.1)
    before, after = ([record("a", {"snr_db": (value, "higher")})] for value in (5.0, 3.5))
    for each in (*before, *after):
        each.identity.dataset = "voice"
    assert compare_records(before, after, effects).exit_code == NO_REGRESSION


def test_flags_override_the_suite_and_default_is_float_noise():
    suite = MinEffects.from_mapping({"default": 0.1, "fid": 1.0})
    merged = suite.update(MinEffects.from_mapping({"fid": "5%"}))
    assert merged.for_metric("fid") == MinEffect(rel=0.05)
    assert merged.for_metric("other") == MinEffect(abs=0.1)
    assert MinEffects().for_metric("x").allowed(1.0) < 1e-5


@pytest.mark.parametrize("bad", ["fast", "-1", {"absolute": 1}, "x%"])
def test_bad_min_effects_are_clear_errors(bad):
    with pytest.raises(CompareError, match="minimum effect|unknown key"):
        parse_min_effect(bad)


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


def test_a_min_effect_flag_can_accept_the_change(runs):
    work, site = runs
    # 0.5 nats on 4 dims is 0.18 bits/dim
    result = run_cli(["compare", "results/base", "results/worse", "--min-effect", "nll_bpd=0.2"],
                     cwd=work, extra_path=[site])
    assert result.returncode == 0, result.stdout + result.stderr


def test_changed_code_keeps_its_keys_so_it_is_compared(runs):
    """The degraded build is other code (other hashes) behind the same configuration."""
    work, _ = runs
    base = {r.key: r for r in Store(work / "results/base").records()}
    worse = {r.key: r for r in Store(work / "results/worse").records()}
    assert base.keys() == worse.keys()
    key = next(k for k, r in base.items() if r.identity.task == "density")
    assert base[key].provenance.code["sampler:toy"] != worse[key].provenance.code["sampler:toy"]
    assert base[key].provenance.code["core"] == worse[key].provenance.code["core"]


def test_a_record_that_breaks_while_comparing_exits_2(runs, tmp_path):
    work, site = runs
    broken = tmp_path / "broken-entry"
    (broken / "cells").mkdir(parents=True)
    for path in (work / "results/same/cells").glob("*.json"):
        record = json.loads(path.read_text())
        for entry in record["metrics"].values():
            entry["per_example"] = "not base64!"
        (broken / "cells" / path.name).write_text(json.dumps(record))
    result = run_cli(["compare", "results/base", str(broken)], cwd=work, extra_path=[site])
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error" in result.stderr


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
