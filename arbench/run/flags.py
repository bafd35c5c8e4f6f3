"""What the command line and grid files give as text, made into values: ``KEY=VALUE``
assignments, budgets, seeds and run names. Every error names the flag and an example."""

from __future__ import annotations

from typing import Any

from arbench.errors import GridError, ParameterError

MAX_BUDGET = 10_000_000  # far above any sampler's need; a typo must not run for days
MAX_SEED = 2**32 - 1
MAX_CELLS = 20_000
"""The most cells a run expands unless told otherwise (`arbench run --max-cells`): a typo
in a sweep must not spend minutes and gigabytes before its first cell."""


def parse_budget(text: str) -> int | None:
    """A positive integer NFE budget, or "default" for the sampler's own choice."""
    if text.strip().lower() in ("default", "none"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise GridError(f"budget '{text}' is not a whole number; e.g. --budget 64,32") from None
    if value <= 0:
        raise GridError(f"budget {value} must be a positive number of network calls (NFE)")
    if value > MAX_BUDGET:
        raise GridError(f"budget {value} is above arbench's limit of {MAX_BUDGET:,} network "
                        "calls per cell")
    return value


def parse_seed(text: str) -> int:
    """A seed in numpy's range, from the command line's or a grid file's text."""
    try:
        value = int(text)
    except ValueError:
        raise GridError(f"seed '{text}' is not a whole number") from None
    if not 0 <= value <= MAX_SEED:
        raise GridError(f"seed {value} must lie in 0..{MAX_SEED} (the range numpy seeds take)")
    return value


def check_run_name(name: Any) -> str:
    """`name` as a folder directly inside the results folder, or a GridError: never a
    path that leads elsewhere."""
    if not isinstance(name, str) or not name.strip():
        raise GridError(f"run name {name!r} must be a non-empty string")
    if name.startswith(".") or any(sep in name for sep in ("/", "\\", "\0")):
        raise GridError(f"run name {name!r} must be a plain folder name inside the results "
                        "folder: no '/', '\\', leading '.' or '..'")
    if not name.isprintable():  # a newline or a control character breaks logs and tables
        raise GridError(f"run name {name!r} has a newline or other unprintable character; "
                        "use letters, digits, '-', '_' and '.'")
    return name


def parse_assignments(items: list[str], flag: str, dotted: bool = False,
                      as_list: bool = False) -> dict[str, Any]:
    """The one KEY=VALUE parser (``--set``, ``--sweep``, ``--executor-set``, ``arbench
    train --set``): values read as YAML (typed later by the plugin's schema). With
    `dotted` keys are ``PLUGIN.KEY`` and the result nests by plugin; with `as_list` a
    value is a comma-separated list."""
    import yaml

    parsed: dict[str, Any] = {}
    example = "superres.ratio=8" if dotted else "lr=0.001"
    for item in items:
        target, sep, text = item.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not target or (dotted and not (dot and name and key)):
            shape = "PLUGIN.KEY=VALUE" if dotted else "KEY=VALUE"
            raise ParameterError(f"{flag} '{item}' must look like {shape}, e.g. {example}")
        try:
            value = ([yaml.safe_load(v) for v in text.split(",")] if as_list
                     else yaml.safe_load(text))
        except yaml.YAMLError:
            value = text
        if dotted:
            parsed.setdefault(name, {})[key] = value
        else:
            parsed[target] = value
    return parsed
