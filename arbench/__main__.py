"""``python -m arbench`` is the same as the ``arbench`` command."""

from arbench.cli import app

app()
