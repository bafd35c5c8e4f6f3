"""The plots and HTML reporters on hand-made records and samples (no models, no runs)."""

from __future__ import annotations

import base64
import io
import re

import pytest
import soundfile
import torch

from arbench import ModelSpec
from arbench.plugin.specs import TableLayout
from arbench.report.build import TaskViews, build_report
from arbench.results.artifacts import SAMPLES_FILE
from arbench.results.identity import variant_label
from arbench.results.record import Record
from arbench_plugins.reporters.html import HtmlReport
from arbench_plugins.reporters.plots import Plots, budget_curves, sample_panels, walltime_plot

RATE, LENGTH = 8000, 256
LAYOUTS = TaskViews({
    "unconditional": TableLayout(rows=("dataset", "model", "sampler", "nfe")),
    "superres": TableLayout(rows=("variant",), columns=("dataset", "sampler")),
    "separation": TableLayout(rows=("dataset", "sampler")),
})


def raw_record(key, task, dataset, sampler, nfe, seed=0, value=1.0, status="ok", **fields):
    metric = {"unconditional": ("sample_nll_bpd", "lower", "bits/dim")}.get(
        task, ("snr_db", "higher", "dB"))
    swept = {task: fields["swept"]} if "swept" in fields else {}
    return {"key": key, "status": status, "task": task, "dataset": dataset,
            "swept": swept, "variant": variant_label(swept, task),
            "model": fields.get(ModelSpec, "net<v2>"),
            "sampler": sampler, "budget": nfe or None, "seed": seed, "nfe": nfe,
            "metrics": {metric[0]: {"value": value, "direction": metric[1], "unit": metric[2]}}
            if status == "ok" else {}, "wall_time_s": 0.01 * (nfe + 1),
            "sampler_time_s": 0.005 * (nfe + 1), "reason": fields.get("reason")}


def record(*args, **kwargs) -> Record:
    """`raw_record` as the typed record the runner writes."""
    return Record.model_validate(raw_record(*args, **kwargs))


def save(run_dir, key, modality, shape, tensors, sources=(), rate=None):
    folder = run_dir / "artifacts" / key
    folder.mkdir(parents=True)
    meta = {"modality": modality, "shape": list(shape), "sources": list(sources),
            "sample_rate": rate}
    torch.save({"meta": meta, "tensors": tensors}, folder / SAMPLES_FILE)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("results") / "toy-run"
    records = [
        record("u16", "unconditional", "digits", "pnf", 16, value=3.0),
        record("u64", "unconditional", "digits", "pnf", 64, value=2.0),
        record("u64s1", "unconditional", "digits", "pnf", 64, seed=1, value=2.5),
        record("a64", "unconditional", "digits", "ancestral", 64, value=1.25),
        record("s-pnf", "superres", "piano", "pnf", 64, swept={"ratio": 4}, value=7.5),
        record("s-spl", "superres", "piano", "spline", 0, swept={"ratio": 4}, value=4.0,
               model=None),
        record("sep", "separation", "digit-pairs", "pnf", 64, value=0.5),
        record("bad", "superres", "piano", "ancestral", 64, status="skipped",
               swept={"ratio": 4}, reason="does not serve <superres>"),
    ]
    for key in ("u16", "u64", "u64s1", "a64"):
        save(run_dir, key, "image", (1, 8, 8), {"samples": torch.rand(20, 1, 8, 8) * 2 - 1})
    audio = {name: torch.rand(3, LENGTH) - 0.5 for name in ("estimate", "reference")}
    save(run_dir, "s-pnf", "audio", (LENGTH,), audio, rate=RATE)  # s-spl saved no samples
    save(run_dir, "sep", "image", (2, 1, 8, 8), {"estimate": torch.zeros(2, 2, 1, 8, 8),
                                                 "reference": torch.ones(2, 2, 1, 8, 8),
                                                 "mixture": torch.zeros(2, 1, 8, 8)},
         sources=("low", "high"))
    return build_report(records, LAYOUTS, [run_dir])


def test_budget_curves_one_figure_per_task_one_line_per_sampler(report):
    curves = dict(budget_curves(report))
    assert sorted(curves) == ["separation_vs_nfe", "superres_vs_nfe", "unconditional_vs_nfe"]
    axes = curves["unconditional_vs_nfe"].axes[0]
    lines = {line.get_label(): line for line in axes.lines}
    assert sorted(lines) == ["ancestral", "pnf"]
    pnf = lines["pnf"]
    assert list(pnf.get_xdata()) == [16, 64]
    assert list(pnf.get_ydata()) == [3.0, 2.25]  # mean over seeds 0 and 1
    assert "lower is better" in axes.get_ylabel() and "bits/dim" in axes.get_ylabel()
    assert len(curves["superres_vs_nfe"].axes[0].lines) == 2
    assert len(walltime_plot(report)) == 3


def test_sample_panels_first_seed_sources_and_wavs(report):
    panels = {panel.title: panel for panel in sample_panels(report)}
    assert len(panels) == 5  # every ok cell with samples but seed 1 of unconditional/pnf/64
    separation = next(p for title, p in panels.items() if title.startswith("separation"))
    assert [ax.get_title() for ax in separation.figure.axes] == [
        "estimate (low)", "estimate (high)", "reference (low)", "reference (high)", "mixture"]
    [audio] = [panel for panel in panels.values() if panel.wavs]
    assert sorted(audio.wavs) == ["estimate #1", "estimate #2", "reference #1", "reference #2"]


def test_html_report_is_self_contained_with_tables_plots_and_audio(report, tmp_path):
    paths = HtmlReport().write(report, tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert paths[0] == tmp_path / "report.html"
    for reference in ("http://", "https://", 'src="/', "href="):
        assert reference not in page
    # no per-example values here: a t interval over the 2 seeds, and nothing is marked
    assert re.search(r">\s*1\.250\s*<", page) and "2.250 ± 3.177" in page
    assert re.search(r">\s*7\.500\s*<", page)
    assert "<b>1.250" not in page and "<b>7.500" not in page and "<i>1.250" not in page
    assert "net&lt;v2&gt;" in page and "<v2>" not in page
    assert "does not serve &lt;superres&gt;" in page
    # 3 tasks x (NFE, wall time) + 5 sample panels
    assert page.count('src="data:image/png;base64,') == 11
    assert page.count('<audio controls src="data:audio/wav;base64,') == 4

    wavs = sorted(tmp_path.glob("samples/*.wav"))
    pngs = sorted(tmp_path.glob("plots/*.png"))  # the embedded figures, also as files
    assert sorted(paths[1:]) == sorted(pngs + wavs) and len(wavs) == 4 and len(pngs) == 11
    for path in wavs:
        assert re.fullmatch(r"[A-Za-z0-9._=-]+", path.name)
        clip, rate = soundfile.read(path)
        assert rate == RATE and clip.shape == (LENGTH,)
    embedded = re.search(r'data:audio/wav;base64,([^"]+)', page).group(1)
    clip, rate = soundfile.read(io.BytesIO(base64.b64decode(embedded)))
    assert rate == RATE and len(clip) == LENGTH


def test_plots_reporter_writes_pngs_with_safe_names(report, tmp_path):
    paths = Plots().write(report, tmp_path)
    pngs = [path for path in paths if path.suffix == ".png"]
    assert len(pngs) == 11 and all(path.parent == tmp_path / "plots" for path in pngs)
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in pngs)
    assert all(re.fullmatch(r"[A-Za-z0-9._=-]+", path.name) for path in paths)
    assert len([path for path in paths if path.suffix == ".wav"]) == 4


def test_a_lopsided_interval_is_drawn_and_printed_as_an_interval(tmp_path):
    """A 64-sample FID's point estimate can lie outside its bootstrap interval (FID 124.6,
    interval [126.6, 308.0]): the plots draw the interval from its ends, the tables print it."""
    import numpy as np

    from arbench.results.statistics import Measured

    replicates = np.linspace(126.6, 308.0, 200)
    fid = {**Measured(124.6, replicates=replicates).to_record(), "direction": "lower",
           "unit": "digits-classifier"}
    records = [Record.model_validate({**raw_record(f"k{nfe}", "unconditional", "digits",
                                                   "ancestral", nfe), "metrics": {"fid": fid}})
               for nfe in (4, 8)]
    report = build_report(records, LAYOUTS)
    (path, *_) = HtmlReport().write(report, tmp_path)
    assert "124.600 [" in path.read_text() and "± " not in report.tables[0].formatted(
        lambda e: e.text()).to_string()
    assert budget_curves(report)
