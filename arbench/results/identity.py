"""What names a cell and the groups it belongs to, computed one way.

Every identity arbench keeps (a cell's key, the setting two cells share, the entry a
table pools seeds into) is `identity` of the parts that make it: their canonical
JSON, hashed. Two records belong together exactly when those parts are equal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from typing import Any

KEY_DIGITS = 16  # hex digits of a key: 64 bits, no collision among millions of cells


def canonical(parts: Any) -> str:
    """`parts` as JSON with sorted keys (a value JSON lacks, such as a path, as its text):
    equal configurations give equal text."""
    return json.dumps(parts, sort_keys=True, default=str)


def identity(parts: Any) -> str:
    """The one identity function: sha256 of `canonical(parts)`, `KEY_DIGITS` hex digits."""
    return hashlib.sha256(canonical(parts).encode()).hexdigest()[:KEY_DIGITS]


def variant_label(swept: Mapping[str, Mapping[str, Any]], task: str,
                  omit: Collection[str | None] = ()) -> str:
    """The swept parameters as text: ``ratio=8`` for the task's own, ``ardm.policy=dp``
    for another plugin's, and no prefix for a plugin in `omit` (one named beside the
    label: ``made-mol / mixtures=6``)."""
    return ",".join(
        f"{key}={value}" if plugin == task or plugin in omit else f"{plugin}.{key}={value}"
        for plugin, values in swept.items() for key, value in values.items()
    )


def cell_label(task: str, dataset: str, model: str | None, sampler: str, variant: str,
               budget: int | None, seed: int) -> str:
    """``task/dataset/model/sampler variant budget=B seed=S``: a cell as progress lines and
    the compare gate name it, planned or recorded."""
    shown = f" {variant}" if variant else ""
    return (f"{task}/{dataset}/{model or '-'}/{sampler}{shown} "
            f"budget={'default' if budget is None else budget} seed={seed}")
