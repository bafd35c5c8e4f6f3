"""The ``arbench`` command line: `run`, `list` and `train` in commands_run, and
`report`, `compare` and `leaderboard` in commands_results."""

from arbench.cli import commands_results, commands_run  # noqa: F401 (registers the commands)
from arbench.cli.app import app

__all__ = ["app"]
