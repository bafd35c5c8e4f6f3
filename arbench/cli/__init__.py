"""The ``arbench`` command line: `run`, `list` and `train` in commands_run,
`report`, `compare` and `leaderboard` in commands_results, `import` in commands_import,
`certify` in commands_certify."""

from arbench.cli import (  # noqa: F401 (registers the commands)
    commands_certify,
    commands_import,
    commands_results,
    commands_run,
)
from arbench.cli.app import app

__all__ = ["app"]
