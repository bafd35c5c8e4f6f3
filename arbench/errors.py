"""Every error arbench raises on purpose, under one base: ``except ArbenchError``.

A user's mistake (a bad flag, an unknown plugin, an unreadable results folder)
and a plugin's (a contract it breaks) each have a class here, so the CLI can
print the message and exit 2 instead of a traceback, and so no core module has
to import another only for its exception.
"""

from __future__ import annotations

from typing import Any


class ArbenchError(Exception):
    """Base of arbench's own errors; the message says what to do."""


class ParameterError(ArbenchError, ValueError):
    """A parameter value outside its declared type or range; the message says which."""


class GridError(ArbenchError, ValueError):
    """The grid file or flags are malformed; the message names the bad key."""


class CompareError(ArbenchError, ValueError):
    """The inputs cannot be compared (a bad minimum effect, unreadable results)."""


class UsageError(ArbenchError, ValueError):
    """Input that cannot be run as given (a bad option, an unwritable folder)."""


class PluginError(ArbenchError):
    """A plugin problem the user must fix (unknown name, duplicate name, broken plugin)."""


class UnknownPluginError(PluginError, KeyError):
    """No plugin of that kind has that name (the message suggests the nearest)."""

    def __str__(self) -> str:
        return str(self.args[0])


class ContractError(PluginError):
    """A plugin class does not implement what it declares (the CLI exits 2 naming it)."""


class Incompatible(ArbenchError):
    """This cell cannot run with this combination; recorded as skipped, not failed."""


class ContractViolation(ArbenchError):
    """A plugin returned something its contract does not allow; the cell fails."""


class CheckpointError(ArbenchError):
    """A checkpoint is missing or does not match its recorded sha256."""


class StoreError(ArbenchError):
    """A results folder or record cannot be read."""


class RunBusy(StoreError):
    """Another process holds the run folder's lock."""


def did_you_mean(name: str, known: Any) -> str:
    """`` Did you mean 'x'?`` for the closest of `known`, or an empty string: every
    unknown-name message in arbench uses this one."""
    import difflib

    close = difflib.get_close_matches(str(name), sorted(str(k) for k in known), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


class TooLarge(ArbenchError):
    """An allocation that cannot fit the device's free memory, refused before it is made;
    the message says how much, what it is for and which parameter makes it smaller."""
