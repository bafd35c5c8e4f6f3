"""The base of report formats (markdown, LaTeX, HTML, plots): a `Reporter` writes a
`Report` into a folder. Reporters are plugins (`arbench_reporters`)."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path

from arbench.plugin.contracts import Configurable
from arbench.report.build import Report


class Reporter(Configurable):
    """Writes a `Report` in one format (markdown, LaTeX, HTML, plots, ...)."""

    @abstractmethod
    def write(self, report: Report, out_dir: Path) -> list[Path]:
        """Write the report's files under `out_dir` (which exists); return their paths."""
