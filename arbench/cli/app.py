"""The typer app and the helpers every command shares. Heavy imports (torch,
pandas) happen inside commands, so ``arbench --help`` and ``arbench list`` start fast."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from arbench.specs import TableLayout

app = typer.Typer(help="Benchmark samplers of autoregressive models.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
console = Console(stderr=True)

Names = list[str] | None


def split_names(values: list[str] | None) -> list[str]:
    """Accept both ``--x a,b`` and ``--x a --x b``."""
    return [item.strip() for value in values or [] for item in value.split(",") if item.strip()]


def fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def warn_damaged(damaged: dict[Any, str], what: str) -> None:
    """One line per damaged record (at most 5), saying what happens to them."""
    if not damaged:
        return
    console.print(f"[yellow]{len(damaged)} damaged record(s) {what}:[/]", highlight=False)
    for reason in list(damaged.values())[:5]:
        console.print(f"  {reason}", highlight=False)


def option(help_text: str) -> Any:
    """A typer option with only a help text (typer's own return type is Any)."""
    return typer.Option(help=help_text)


def layouts() -> dict[str, TableLayout]:
    """Paper-style table layouts of the installed tasks: by task name, and by
    ``task:modality`` where a modality has a table of its own."""
    from arbench.registry import registry

    found: dict[str, TableLayout] = {}
    for spec in registry().all("task"):
        if spec.table:
            found[spec.name] = spec.table
        found |= {f"{spec.name}:{modality}": layout
                  for modality, layout in spec.modality_tables.items()}
    return found
