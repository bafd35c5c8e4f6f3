"""What names a cell and the groups it belongs to: labels of its swept parameters."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any


def variant_label(swept: Mapping[str, Mapping[str, Any]], task: str,
                  omit: Collection[str | None] = ()) -> str:
    """The swept parameters as text: ``ratio=8`` for the task's own, ``ardm.policy=dp``
    for another plugin's, and no prefix for a plugin in `omit` (one named beside the
    label: ``made-mol / mixtures=6``)."""
    return ",".join(
        f"{key}={value}" if plugin == task or plugin in omit else f"{plugin}.{key}={value}"
        for plugin, values in swept.items() for key, value in values.items()
    )
