"""The kinds of plugin, declared once: each has one hook (``arbench_{kind}s``, see
`arbench.plugin.hookspecs`) and one spec class (`arbench.plugin.specs`), and a name is
unique across all kinds (``--set NAME.KEY=VALUE`` addresses a plugin by name alone)."""

from __future__ import annotations

from enum import Enum


class Kind(str, Enum):
    """A kind of plugin; its value is the word the CLI and messages use."""

    TASK = "task"
    SAMPLER = "sampler"
    MODEL = "model"
    DATASET = "dataset"
    METRIC = "metric"
    REPORTER = "reporter"
    EXECUTOR = "executor"

    @property
    def hook(self) -> str:
        """The hook a package implements to register plugins of this kind."""
        return f"arbench_{self.value}s"

    @property
    def configures_cells(self) -> bool:
        """Whether a grid's ``params`` and ``sweeps`` may set this kind's parameters (the
        plugins that make up a cell)."""
        return self in (Kind.TASK, Kind.SAMPLER, Kind.MODEL, Kind.DATASET)

    def __str__(self) -> str:
        return self.value
