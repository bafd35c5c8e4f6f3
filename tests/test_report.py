"""Paper tables: layouts, mean ± spread over seeds, best marks, and every table format."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TESTS

from arbench import TaskSpec
from arbench.plugin.registry import registry
from arbench.report.build import TaskViews, build_report, markdown_report
from arbench.report.entries import Entry
from arbench.results.identity import variant_label
from arbench.results.record import Record
from arbench.results.statistics import Measured
from arbench_plugins.reporters.tables import Csv, Latex, Markdown, Parquet, latex_table

GOLDEN = TESTS / "golden" / "report.md"


# Eight examples around each mean: cells of one task differ by the same amount on every
# example, so the paired test is certain, and the interval has a width.
SPREAD = np.linspace(-0.1, 0.1, 8)


def raw_record(task, dataset, sampler, metrics, seed=0, swept=None, model="m", budget=None,
           nfe=64, status="ok", units=None, per_example=True):
    """A result record; `swept` are the task's own swept parameters (``{"ratio": 4}``)."""
    directions = {"nll_bpd": "lower", "snr_db": "higher", "si_sdr_db": "higher"}
    swept = {task: swept} if swept else {}
    variant = variant_label(swept, task)
    return {"swept": swept,
        "key": f"{task}-{dataset}-{sampler}-{variant}-{model}-{budget}-{seed}",
        "status": status, "task": task, "dataset": dataset, "variant": variant,
        "model": model, "sampler": sampler, "budget": budget, "seed": seed, "nfe": nfe,
        "wall_time_s": 1.0, "reason": None if status == "ok" else "needs a model",
        "metrics": {name: {**(Measured.of_examples(value + SPREAD) if per_example
                              else Measured(value)).to_record(),
                           "direction": directions[name.split("/")[0]],
                           "unit": "dB" if "db" in name else "bits/dim"}
                    for name, value in metrics.items()},
    }


def record(*args, **kwargs) -> Record:
    """`raw_record` as the typed record the runner writes."""
    return Record.model_validate(raw_record(*args, **kwargs))


def fixed_records() -> list[Record]:
    """A small fixed result set: two density models, super-resolution with two seeds."""
    return [
        record("density", "digits", "ancestral", {"nll_bpd": 1.813}, model="pixelcnn"),
        record("density", "digits", "ancestral", {"nll_bpd": 1.795}, model="pixelcnn-smooth"),
        *[record("superres", dataset, sampler, {"snr_db": value + 0.1 * seed}, seed=seed,
                 swept={"ratio": ratio}, model="wavenet" if sampler == "pnf" else None,
                 budget=400 if sampler == "pnf" else None, nfe=400 if sampler == "pnf" else 0)
          for dataset, sampler, ratio, value in [
              ("piano", "spline", 4, 10.6), ("piano", "pnf", 4, 10.9),
              ("piano", "spline", 16, -0.2), ("piano", "pnf", 16, -0.4),
              ("voice", "spline", 4, 7.8), ("voice", "pnf", 4, 10.0)]
          for seed in (0, 1)],
        record("superres", "digits", "pnf", {}, status="skipped", model=None),
    ]


@pytest.fixture
def report():
    return build_report(fixed_records(), TaskViews.of(registry().all(TaskSpec)))


def test_golden_markdown(report, tmp_path):
    text = markdown_report(report) + "\n"
    if text != GOLDEN.read_text():
        (tmp_path / "report.md").write_text(text)
        pytest.fail(f"markdown changed; if on purpose: cp {tmp_path / 'report.md'} {GOLDEN}")


def test_superres_layout_ratios_as_rows_dataset_sampler_as_columns(report):
    table = next(t for t in report.tables if t.task == "superres")
    assert list(table.frame["variant"]) == ["ratio=4", "ratio=16"]  # natural order
    assert list(table.frame.columns[1:]) == ["piano / spline", "piano / pnf",
                                             "voice / spline", "voice / pnf"]
    piano_pnf = table.frame.set_index("variant")["piano / pnf"]
    assert piano_pnf["ratio=4"].mean == pytest.approx(10.95)
    # the interval: a percentile bootstrap of the mean of the 8 examples, each averaged
    # over the two seeds
    per_example = 10.95 + SPREAD
    assert piano_pnf["ratio=4"].half_width == pytest.approx(
        1.96 * per_example.std() / np.sqrt(8), rel=0.25)
    assert piano_pnf["ratio=4"].n == 8
    assert table.frame.set_index("variant")["voice / spline"]["ratio=16"] is None


def test_best_is_per_dataset_and_setting_and_follows_direction(report):
    superres = next(t for t in report.tables if t.task == "superres").frame.set_index("variant")
    # higher SNR is better: pnf wins at 4x on both datasets, spline at 16x on piano
    assert superres.loc["ratio=4", "piano / pnf"].best
    assert not superres.loc["ratio=4", "piano / spline"].best
    assert superres.loc["ratio=16", "piano / spline"].best
    assert superres.loc["ratio=4", "voice / pnf"].best
    density = next(t for t in report.tables if t.task == "density").frame
    best = {row.model: row._5.best for row in density.itertuples()}
    assert best == {"pixelcnn": False, "pixelcnn-smooth": True}  # lower NLL is better


def test_entries_within_the_noise_are_tied_not_bold():
    """Means 0.04 dB apart on examples that scatter by 2 dB: no winner, both marked tied."""
    noise = np.random.default_rng(0).standard_normal((2, 32))
    records = []
    for sampler, clips, shift in zip(("spline", "pnf"), noise, (-0.61, -0.57), strict=True):
        raw = raw_record("superres", "piano", sampler, {"snr_db": 0.0}, swept={"ratio": 16},
                         model=None, per_example=False)
        values = 2 * (clips - clips.mean()) + shift
        raw["metrics"]["snr_db"].update(Measured.of_examples(values).to_record())
        records.append(Record.model_validate(raw))
    views = TaskViews.of(registry().all(TaskSpec))
    (table,) = build_report(records, views).tables
    entries = table.frame.set_index("variant").loc["ratio=16"]
    assert not any(entries[c].best for c in ("piano / spline", "piano / pnf"))
    assert all(entries[c].tied for c in ("piano / spline", "piano / pnf"))
    assert entries["piano / pnf"].text() == f"*-0.570 ± {entries['piano / pnf'].half_width:.3f}*"
    assert "tied with the best" in markdown_report(build_report(records, views))


def test_without_recorded_uncertainty_nothing_is_called_best():
    records = [record("density", "digits", "ancestral", {"nll_bpd": value}, model=model,
                      per_example=False) for model, value in (("a", 1.8), ("b", 1.7))]
    views = TaskViews.of(registry().all(TaskSpec))
    (table,) = build_report(records, views).tables
    assert not any(entry.best for entry in table.frame["NFE 64"])


def test_a_lone_entry_is_not_marked_best():
    lone = build_report([record("density", "digits", "ancestral", {"nll_bpd": 1.8})],
                        TaskViews.of(registry().all(TaskSpec)))
    (entry,) = [v for v in lone.tables[0].frame.iloc[0] if isinstance(v, Entry)]
    assert not entry.best


def test_entry_text_marks_best_and_spread():
    assert Entry(1.5, None, 1, best=True).text() == "**1.500**"
    assert Entry(1.5, None, 1, tied=True).text() == "*1.500*"
    assert Entry(1.5, 0.25, 3).text(plus_minus="+-") == "1.500 +- 0.250"
    assert Entry(1.5, 0.25, 3, True).text(bold=("<b>", "</b>")) == "<b>1.500 ± 0.250</b>"


def test_every_table_format_writes_its_file(report, tmp_path):
    (markdown_path,) = Markdown().write(report, tmp_path)
    assert "**10.950 ± 0.045**" in markdown_path.read_text()
    (latex_path,) = Latex().write(report, tmp_path)
    latex = latex_path.read_text()
    assert r"\toprule" in latex and r"\textbf{10.950 $\pm$ 0.045}" in latex
    assert "↓" not in latex and "BOLD" not in latex
    escaped = latex_table(pd.DataFrame({"a_b": ["x_y"], "c": ["BOLDSTART1BOLDEND"]}), "t")
    assert r"a\_b" in escaped and r"x\_y" in escaped and r"\textbf{1}" in escaped
    (csv_path,) = Csv().write(report, tmp_path)
    entries = pd.read_csv(csv_path)
    assert set(entries.columns) >= {"task", "column", "mean", "half_width", "n", "best", "tied"}
    assert entries["best"].sum() == 4  # density 1, superres 3 (ratio 4 x2, ratio 16 piano)
    (parquet_path,) = Parquet().write(report, tmp_path)
    long = pd.read_parquet(parquet_path)
    assert len(long) == 14 and set(long["metric"]) == {"nll_bpd", "snr_db"}


def test_cells_the_layout_leaves_out_are_never_averaged_together():
    """Two PnF budgets in a table laid out by ratio and dataset / sampler get own columns."""
    records = [record("superres", "piano", "pnf", {"snr_db": value}, swept={"ratio": 4},
                      budget=budget, nfe=budget)
               for budget, value in ((64, 2.0), (400, 8.0))]
    records.append(record("superres", "piano", "spline", {"snr_db": 5.0}, swept={"ratio": 4}))
    views = TaskViews.of(registry().all(TaskSpec))
    (table,) = build_report(records, views).tables
    entries = table.frame.set_index("variant").loc["ratio=4"]
    assert {column: entries[column].mean for column in entries.index} == {
        "piano / pnf / 64": 2.0, "piano / pnf / 400": 8.0, "piano / spline / default": 5.0}
    assert entries["piano / pnf / 400"].best and entries["piano / pnf / 64"].n == 8


def test_cells_differing_only_in_a_hidden_parameter_are_not_averaged():
    """Two cells with the same fields and seed (say n_samples 32 and 256) stay apart."""
    first = record("density", "digits", "ancestral", {"nll_bpd": 1.0})
    second = record("density", "digits", "ancestral", {"nll_bpd": 3.0}).model_copy(
        update={"key": "other-key"})
    views = TaskViews.of(registry().all(TaskSpec))
    (table,) = build_report([first, second], views).tables
    means = sorted(entry.mean for entry in table.frame["NFE 64"])
    assert means == [1.0, 3.0]
    assert set(table.frame["variant"]) == {"#densit", "#other-"}  # no parameter differs


def test_twin_cells_are_labelled_by_the_parameter_that_differs():
    small, large = (
        Record.model_validate({**raw_record("unconditional", "digits", "ancestral",
                                            {"nll_bpd": value}),
                               "key": f"k{n}",
                               "params": {"unconditional": {"n_samples": n}, "ancestral": {}}})
        for n, value in ((32, 2.0), (256, 1.0)))
    views = TaskViews.of(registry().all(TaskSpec))
    (table,) = build_report([small, large], views).tables
    assert sorted(table.frame["variant"]) == ["unconditional.n_samples=256",
                                              "unconditional.n_samples=32"]


def test_timings_make_a_cost_table_and_are_never_gated():
    from arbench.results.compare import compare_records

    def timed(sampler, seconds, key):
        made = record("unconditional", "digits", sampler, {"nll_bpd": 1.0})
        made.key = key
        made.cost.sampler_timings_s = seconds
        made.cost.sampler_time_s = sum(seconds) / len(seconds)
        return made

    reference, fast = timed("ancestral", [4.0, 4.2, 3.8], "a"), timed("jacobi", [1.0, 1.1], "b")
    views = TaskViews.of(registry().all(TaskSpec))
    tables = build_report([reference, fast], views).tables
    cost = next(table for table in tables if table.task == "unconditional: cost")
    row = cost.frame.set_index("sampler").loc["jacobi"]
    (speed,) = [column for column in cost.frame.columns if column.startswith("speedup")]
    assert "not gated" in speed and row[speed].mean == pytest.approx(4.0 / 1.05)
    assert row[speed].low < row[speed].mean < row[speed].high
    assert not any(column.startswith(("speedup", "sampler_s"))
                   for table in tables if table is not cost for column in table.frame.columns)
    slower = fast.model_copy(deep=True)
    slower.cost.sampler_timings_s, slower.cost.sampler_time_s = [100.0], 100.0
    assert compare_records([fast], [slower]).exit_code == 0


def test_a_lopsided_interval_prints_as_an_interval():
    from arbench.report.entries import Entry

    assert Entry(124.6, 90.7, 64, low=126.6, high=308.0).text() == "124.600 [126.600, 308.000]"
    assert Entry(1.0, 0.1, 64, low=0.9, high=1.1).text() == "1.000 ± 0.100"
    assert Entry(1.0, None, 1).text() == "1.000"


def test_a_sampler_claiming_the_models_distribution_is_set_against_ancestral():
    """Tied where the samples' NLL matches ancestral's on the same model and seed, plain
    where a paired test finds a difference; unclaimed samplers and other models stay out."""
    def claim(sampler, value, exactness, model="pixelcnn"):
        raw = raw_record("density", "digits", sampler, {"nll_bpd": value}, model=model)
        return Record.model_validate({**raw, "exactness": exactness})

    records = [claim("ancestral", 1.80, "exact"), claim("jacobi", 1.80, "exact"),
               claim("speculative", 1.90, "distribution"), claim("pnf", 1.70, "approximate"),
               claim("speculative", 1.80, "distribution", model="other")]
    views = TaskViews(references={"density": "ancestral"})
    table = next(t for t in build_report(records, views).tables
                 if t.task == "density: against ancestral")
    frame = table.frame.set_index("sampler")
    assert list(frame.index) == ["jacobi", "speculative"]
    jacobi, speculative = frame["nll_bpd vs ancestral"]
    assert jacobi.tied and jacobi.mean == 0.0
    assert not speculative.tied and speculative.mean == pytest.approx(0.10)
    from arbench.results.agreement import holm_adjusted

    assert speculative.p is not None
    assert speculative.p_holm == holm_adjusted([jacobi.p, speculative.p])[1]
    assert f"(p {speculative.p:.2g}, Holm {speculative.p_holm:.2g})" in speculative.text()
    assert "Holm-adjusted p" in table.note and "level 0.05" in table.note


def test_holm_adjusted_p_values_are_the_closed_form_and_agree_with_the_step_down_test():
    from arbench.results.agreement import holm, holm_adjusted

    # sorted 0.005, 0.01, 0.03, 0.04: 4 x 0.005, 3 x 0.01, 2 x 0.03, max(1 x 0.04, 0.06)
    adjusted = holm_adjusted([0.01, 0.04, 0.03, None, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, None, 0.02])
    for alpha in (0.02, 0.025, 0.05, 0.1):
        p_values = [0.01, 0.04, 0.03, None, 0.005]
        assert holm(p_values, alpha) == [a is not None and a < alpha
                                         for a in holm_adjusted(p_values)]


def test_holm_rejects_step_down_at_the_family_wise_level():
    from arbench.results.agreement import holm

    # 4 tests at 0.05: 0.01 < 0.05/4, 0.015 < 0.05/3, then 0.03 > 0.05/2 stops the rest
    assert holm([0.03, 0.01, None, 0.015, 0.04], 0.05) == [False, True, False, True, False]
    assert holm([0.02, 0.02], 0.05) == [True, True]  # 0.02 < 0.025, then 0.02 < 0.05
