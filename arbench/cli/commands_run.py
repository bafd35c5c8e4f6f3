"""`arbench run`, `arbench list` and `arbench train`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from arbench import api
from arbench.cli.app import Names, app, console, fail, option, print_out, split_names
from arbench.cli.progress import EXIT_CELLS_FAILED, Progress
from arbench.errors import ArbenchError

KINDS = [kind.value for kind in api.Kind]


@app.command()
def run(
    task: Annotated[Names, option("Task name(s), comma separated.")] = None,
    sampler: Annotated[Names, option("Sampler name(s); default: every one that can run.")] = None,
    dataset: Annotated[Names, option("Dataset(s); default: the task's.")] = None,
    model: Annotated[Names, option("Model(s); default: every compatible one.")] = None,
    budget: Annotated[Names, option("NFE budget(s), e.g. 64,32; default: the sampler's.")] = None,
    seed: Annotated[Names, option("Seed(s), e.g. 0,1,2.")] = None,
    grid: Annotated[Path | None, option("YAML grid file instead of the flags above.")] = None,
    suite: Annotated[str | None, option("A suite (e.g. smoke) or its suite.yaml.")] = None,
    name: Annotated[str | None, option("Run name; default derived from the grid.")] = None,
    results_dir: Annotated[Path, option("Where run folders go.")] = Path("results"),
    device: Annotated[str | None, option("cpu, cuda or cuda:N; default: cuda if any.")] = None,
    force: Annotated[bool, option("Recompute finished cells.")] = False,
    set_: Annotated[Names, typer.Option("--set", help="PLUGIN.KEY=VALUE, repeatable.")] = None,
    sweep: Annotated[Names, option("PLUGIN.KEY=V1,V2,...: one cell per value.")] = None,
    data_dir: Annotated[Path | None, option("Data folder for --dataset, e.g. wavdir.")] = None,
    data_file: Annotated[Path | None, option("Data file for --dataset, e.g. prompts (a "
                                             "Spec-Bench question.jsonl).")] = None,
    baselines: Annotated[bool, option("Add each task's reference samplers.")] = True,
    executor: Annotated[str | None, option("Where cells run, e.g. local, ray, slurm (`arbench "
                                           "list executor`); default: local.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Cells at a time (local: worker "
                                      "processes, one device each).")] = 1,
    executor_set: Annotated[Names, typer.Option(
        "--executor-set", help="KEY=VALUE executor option, repeatable (e.g. address=auto, "
                               "partition=gpu).")] = None,
    wait: Annotated[bool, option("If another process is writing this run, wait for it "
                                 "instead of exiting.")] = False,
    max_cells: Annotated[int, option("Refuse grids that could hold more cells than this.")
                         ] = api.MAX_CELLS,
    timing_repeats: Annotated[int | None, option(
        "Timed rounds of each sampler call under 10 s, each in turn with the task's "
        "reference sampler (the speed-ups' intervals; the samples come from the counted "
        "call before them); 0: no timing. Default: the suite's, else 3.")] = None,
) -> None:
    """Run a task x sampler x budget x seed grid; finished cells are never recomputed.

    Exit codes: 0 every cell ok or skipped; 2 bad input, an unusable results folder, or
    another process writing the same run; 3 some cells failed (a rerun retries them);
    130 interrupted (finished cells are kept)."""
    progress = Progress(executor, jobs)
    try:
        asked = api.request(
            tasks=split_names(task), samplers=split_names(sampler),
            datasets=split_names(dataset), models=split_names(model),
            budgets=split_names(budget), seeds=split_names(seed), grid=grid, suite=suite,
            name=name, set_=set_ or [], sweep=sweep or [], data_dir=data_dir,
            baselines=baselines, data_file=data_file)
        with progress.shown():
            outcome = api.run(asked, results_dir, device=device, executor=executor, jobs=jobs,
                              executor_options=executor_set or [], force=force, wait=wait,
                              timing_repeats=timing_repeats, max_cells=max_cells,
                              on_start=progress.started, on_record=progress.done)
        text, written = api.run_report(outcome)
    except ArbenchError as error:
        fail(str(error))
    print_out(text)
    for path in written[1:]:
        console.print(f"wrote {path}", highlight=False)
    if outcome.failed:
        console.print(f"[red]{outcome.failed} cell(s) failed[/] (their records say why; "
                      "a rerun retries them)", highlight=False)
        raise typer.Exit(EXIT_CELLS_FAILED)


@app.command("list")
def list_plugins(
    kind: Annotated[str | None, typer.Argument(
        help=f"One of {', '.join(KINDS)}, or a plugin's name for its parameters.")] = None,
) -> None:
    """Show every plugin (name, package, description, capabilities), or one plugin's
    parameters with their types, ranges and defaults."""
    from rich.markup import escape
    from rich.table import Table

    out = Console()
    try:
        if kind is not None and kind.removesuffix("s") not in KINDS:
            _show_plugin(out, api.plugin(kind))
            return
        for each, specs in api.plugins(kind).items():
            table = Table(title=f"{each}s", title_justify="left", show_lines=False)
            for column in ("name", "package", "description", "capabilities"):
                table.add_column(column, overflow="fold")
            for spec in specs:
                table.add_row(spec.name, f"{spec.package} {spec.version}", spec.description,
                              escape(spec.capabilities()))
            out.print(table)
    except ArbenchError as error:
        fail(str(error))


def _show_plugin(out: Console, spec: api.PluginSpec[Any]) -> None:
    """One plugin: what it is, what it offers or needs, and its declared parameters."""
    from rich.markup import escape
    from rich.table import Table

    out.print(f"[bold]{spec.name}[/] ({spec.kind}, {spec.package} {spec.version}): "
              f"{escape(spec.description)}", highlight=False)
    if spec.capabilities():
        out.print(escape(spec.capabilities()), highlight=False)
    parameters = api.plugin_parameters(spec)
    if not parameters:
        out.print("no parameters")
        return
    table = Table(title=f"parameters (--set {spec.name}.KEY=VALUE)", title_justify="left")
    for column in ("key", "type and range", "default", "description"):
        table.add_column(column, overflow="fold")
    for row in parameters:
        table.add_row(*(escape(text) for text in row))
    out.print(table)


@app.command()
def train(
    model: Annotated[str, typer.Argument(help="Model name, see `arbench list model`.")],
    dataset: Annotated[str, typer.Option(help="Dataset to train on.")],
    out: Annotated[Path | None, option("Checkpoint path; default: the shipped one.")] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    set_: Annotated[Names, typer.Option(
        "--set", help="KEY=VALUE training option, or DATASET.KEY=VALUE dataset parameter."
    )] = None,
    data_dir: Annotated[Path | None, option("Data folder, for datasets read from disk.")] = None,
    device: Annotated[str | None, option("cpu, cuda or cuda:N; default: cuda if any.")] = None,
    nproc: Annotated[int, typer.Option(
        min=1, help="Train in N processes on this machine (runs torchrun; one GPU each on "
                    "cuda). For several nodes, run torchrun yourself (docs/slurm).")] = 1,
) -> None:
    """Train a model and write its checkpoint with a sha256 sidecar."""
    resume = ("run the same command again: training resumes from the last finished epoch "
              "or evaluation (its .partial.pt beside the checkpoint)")
    try:
        if nproc > 1:
            api.training_target(model, dataset, out, data_dir)  # before any process starts
            code = api.run_torchrun(nproc, _without_nproc(sys.argv[sys.argv.index("train") + 1:]),
                                    device, set_ or [])
            if code:
                fail(f"distributed training stopped (torchrun exited {code}; its workers' "
                     f"messages are above); once fixed, {resume}",
                     code=130 if code in (-2, 130) else 1)
            return  # its rank 0 said what it wrote
        path = api.train(model, dataset, out, seed, set_ or [], data_dir, device)
    except ArbenchError as error:
        fail(str(error))
    except KeyboardInterrupt:
        fail(f"interrupted; {resume}", code=130)
    if api.is_main_process():
        console.print(f"wrote {path}")


def _without_nproc(argv: list[str]) -> list[str]:
    """The command line less its ``--nproc N`` (torchrun starts each copy without it)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            kept.append(arg)
    return kept
