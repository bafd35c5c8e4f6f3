"""Built-in report formats (`arbench report --format NAME`)."""

from arbench import ReporterSpec, hookimpl

_MODULE = "arbench_plugins.reporters"


@hookimpl
def arbench_reporters() -> list[ReporterSpec]:
    """The built-in report formats and what each writes."""
    return [
        ReporterSpec(name="markdown", factory=f"{_MODULE}.tables:Markdown", output="report.md",
                     description="Paper-style tables, every cell, skipped and failed cells"),
        ReporterSpec(name="latex", factory=f"{_MODULE}.tables:Latex", output="report.tex",
                     description="Paper tables as booktabs LaTeX, best entries in bold"),
        ReporterSpec(name="csv", factory=f"{_MODULE}.tables:Csv", output="tables.csv",
                     description="Paper tables' entries: mean, std, seeds, best"),
        ReporterSpec(name="parquet", factory=f"{_MODULE}.tables:Parquet", output="long.parquet",
                     description="Every value per cell, seed and metric (long format)"),
        ReporterSpec(name="plots", factory=f"{_MODULE}.plots:Plots", output="plots/ samples/",
                     description="Metric vs NFE and sampler time, sample grids, audio, WAVs"),
        ReporterSpec(name="density-plots", factory=f"{_MODULE}.plots:DensityPlots",
                     output="plots/density_<dataset>.png",
                     description="2-D data and model densities side by side (density task)"),
        ReporterSpec(name="html", factory=f"{_MODULE}.html:HtmlReport", output="report.html",
                     description="One self-contained page: tables, plots, samples, audio"),
    ]
