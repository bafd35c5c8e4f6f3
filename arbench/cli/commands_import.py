"""`arbench import`: another project's released weights as arbench checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arbench.cli.app import Names, app, console, fail


@app.command("import")
def import_weights(
    model: Annotated[str, typer.Argument(help="Model with an importer, e.g. pnf-wavenet.")],
    source: Annotated[Path, typer.Argument(help="Folder of the released files, as "
                                                "downloaded.")],
    out: Annotated[Path, typer.Option(help="Where to write the arbench checkpoint(s).")],
    set_: Annotated[Names, typer.Option("--set", help="KEY=VALUE import option.")] = None,
) -> None:
    """Convert released weights, mapping every parameter or refusing with a list."""
    from arbench.checkpoints import CheckpointError
    from arbench.params import ParameterError, parse_assignments
    from arbench.registry import PluginError, registry

    if not source.exists():
        fail(f"arbench import {model}: {source} does not exist; give the folder of the "
             "released files as downloaded")
    if source.is_dir() and not any(source.iterdir()):
        fail(f"arbench import {model}: {source} is empty; give the folder of the released "
             "files as downloaded")
    if out.exists() and not out.is_dir():
        fail(f"arbench import {model}: --out {out} is an existing file; the import writes a "
             "folder (a bank of checkpoints): give a new path")
    try:
        model_class = registry().get("model", model).load()
        options = parse_assignments(set_ or [], "--set")
        console.print(f"importing {source} as {model} ...")
        path = model_class.import_released(source, out, **options)
    except (ValueError, CheckpointError, PluginError, ParameterError) as error:
        fail(f"arbench import {model}: {error}")
    except OSError as error:  # an unwritable --out, a full disk
        fail(f"arbench import {model}: cannot write {error.filename or out} "
             f"({error.strerror or error}); give a writable --out with free space")
    console.print(f"wrote {path}; run it with --set {model}.checkpoint={path}")
