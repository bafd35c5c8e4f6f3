"""`arbench import`: another project's released weights as arbench checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arbench import api
from arbench.cli.app import Names, app, console, fail
from arbench.errors import ArbenchError


@app.command("import")
def import_weights(
    model: Annotated[str, typer.Argument(help="Model with an importer, e.g. pnf-wavenet.")],
    source: Annotated[Path, typer.Argument(help="Folder of the released files, as "
                                                "downloaded.")],
    out: Annotated[Path, typer.Option(help="Where to write the arbench checkpoint(s).")],
    set_: Annotated[Names, typer.Option("--set", help="KEY=VALUE import option.")] = None,
) -> None:
    """Convert released weights, mapping every parameter or refusing with a list."""
    console.print(f"importing {source} as {model} ...")
    try:
        path = api.import_released(model, source, out, set_ or [])
    except ArbenchError as error:
        fail(f"arbench import {model}: {error}")
    console.print(f"wrote {path}; run it with --set {model}.checkpoint={path}")
