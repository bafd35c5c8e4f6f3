"""The typer app and the helpers every command shares. Heavy imports (torch,
pandas) happen inside commands, so ``arbench --help`` and ``arbench list`` start fast."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

app = typer.Typer(help="Benchmark samplers of autoregressive models.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)


def _silence(fd: int) -> None:
    """Point file descriptor `fd` at /dev/null: its reader is gone (``| head``), and the work
    goes on without printing (nor a BrokenPipeError when Python flushes at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


class _Stderr:
    """sys.stderr, looked up at each write (tests capture it), surviving a closed pipe:
    ``arbench run ... 2>&1 | head -1`` still runs every cell."""

    def write(self, text: str) -> int:
        try:
            return sys.stderr.write(text)
        except BrokenPipeError:
            _silence(sys.stderr.fileno())
            return len(text)

    def flush(self) -> None:
        try:
            sys.stderr.flush()
        except BrokenPipeError:
            _silence(sys.stderr.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(sys.stderr, name)


console = Console(file=_Stderr())  # type: ignore[arg-type]


def print_out(text: str) -> None:
    """Print `text` on stdout; a closed stdout (``| head``) silences it instead of ending
    the command with a traceback."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        _silence(sys.stdout.fileno())


Names = list[str] | None


def split_names(values: list[str] | None) -> list[str]:
    """Accept both ``--x a,b`` and ``--x a --x b``."""
    return [item.strip() for value in values or [] for item in value.split(",") if item.strip()]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print the error unwrapped (a path in it stays whole, to copy) and exit with `code`."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn_damaged(damaged: dict[Any, str], what: str, kind: str = "record(s)") -> None:
    """One line per damaged record or artifact (at most 5), saying what happens to them."""
    if not damaged:
        return
    console.print(f"[yellow]{len(damaged)} damaged {kind} {what}:[/]", highlight=False)
    for reason in list(damaged.values())[:5]:
        console.print(f"  {reason}", highlight=False, soft_wrap=True)


def option(help_text: str) -> Any:
    """A typer option with only a help text (typer's own return type is Any)."""
    return typer.Option(help=help_text)
