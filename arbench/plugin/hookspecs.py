"""The hooks a plugin package implements. Each returns a list of specs.

A package registers a module under the ``arbench`` entry-point group; arbench
calls every ``arbench_*`` function that module defines with ``@hookimpl``.
Every hook here is documented in docs/plugins.md (a test checks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from arbench.plugin.specs import (
        DatasetSpec,
        ExecutorSpec,
        MetricSpec,
        ModelSpec,
        ReporterSpec,
        SamplerSpec,
        TaskSpec,
    )

PROJECT = "arbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def arbench_datasets() -> list[DatasetSpec]:
    """Return the datasets this package provides."""


@hookspec
def arbench_models() -> list[ModelSpec]:
    """Return the model families this package provides."""


@hookspec
def arbench_samplers() -> list[SamplerSpec]:
    """Return the samplers this package provides."""


@hookspec
def arbench_tasks() -> list[TaskSpec]:
    """Return the tasks this package provides."""


@hookspec
def arbench_metrics() -> list[MetricSpec]:
    """Return the metrics this package provides (name, direction, unit)."""


@hookspec
def arbench_reporters() -> list[ReporterSpec]:
    """Return the report formats this package provides (markdown, LaTeX, HTML, ...)."""


@hookspec
def arbench_executors() -> list[ExecutorSpec]:
    """Return the executors this package provides (where cells run: processes, clusters)."""
