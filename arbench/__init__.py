"""arbench: a benchmark suite for sampling from autoregressive models.

Importing this package is cheap (no torch): plugins import `hookimpl` and the
spec classes from here in their registration modules, and `arbench --help`
stays fast.
"""

from arbench.plugin.hookspecs import hookimpl
from arbench.plugin.specs import (
    DatasetSpec,
    ExecutorSpec,
    MetricSpec,
    ModelSpec,
    ReporterSpec,
    SamplerSpec,
    TableLayout,
    TaskSpec,
)

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """`arbench.Record`, the typed result record, imported on first use (pydantic)."""
    if name == "Record":
        from arbench.results.record import Record

        return Record
    raise AttributeError(f"module 'arbench' has no attribute {name!r}")

__all__ = [
    "DatasetSpec",
    "ExecutorSpec",
    "MetricSpec",
    "ModelSpec",
    "Record",
    "ReporterSpec",
    "SamplerSpec",
    "TableLayout",
    "TaskSpec",
    "__version__",
    "hookimpl",
]
