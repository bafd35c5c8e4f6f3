"""arbench: a benchmark suite for sampling from autoregressive models.

Importing this package is cheap (no torch): plugins import `hookimpl` and the
spec classes from here in their registration modules, and `arbench --help`
stays fast.
"""

from arbench.hookspecs import hookimpl
from arbench.specs import (
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

__all__ = [
    "DatasetSpec",
    "ExecutorSpec",
    "MetricSpec",
    "ModelSpec",
    "ReporterSpec",
    "SamplerSpec",
    "TableLayout",
    "TaskSpec",
    "__version__",
    "hookimpl",
]
