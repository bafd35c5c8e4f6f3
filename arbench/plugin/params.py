"""Declared plugin parameters: a type, a default, an allowed range or choices, a doc line.

A plugin lists its parameters once, as ``parameters = {"delta": Param(0.5, "Langevin
step as a fraction of sigma^2", gt=0)}``. Values from ``--set``, ``--sweep`` and YAML
grids are converted to the declared type by pydantic's lax rules (so ``1e9`` is a
float and ``abc`` is not an int) and checked against the range before any cell runs;
`arbench list NAME` prints the schema. A plugin that only gives ``defaults`` (the
older form) gets parameters whose type is inferred from each default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Literal

from arbench.errors import ParameterError, did_you_mean

if TYPE_CHECKING:
    from pydantic import TypeAdapter


_ANY = object  # the type of a parameter whose default says nothing (None)


@dataclass(frozen=True)
class Param:
    """One parameter. `type` defaults to the default's type; a None default makes the
    parameter optional (None means "the plugin's own choice")."""

    default: Any
    doc: str = ""
    type: type | None = None
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    choices: tuple[Any, ...] | None = None
    optional: bool = False

    @property
    def value_type(self) -> Any:  # a class, or the _ANY marker
        if self.type is not None:
            return self.type
        if self.choices:
            return type(self.choices[0])
        return _ANY if self.default is None else type(self.default)

    @property
    def accepts_none(self) -> bool:
        return self.optional or self.default is None

    @cached_property
    def _adapter(self) -> TypeAdapter[Any]:
        from pydantic import Field, TypeAdapter  # imported on first use: listing stays fast

        base: Any = self.value_type
        if self.choices is not None:
            base = Literal[self.choices]
        elif base in (int, float):
            base = Annotated[base, Field(gt=self.gt, ge=self.ge, lt=self.lt, le=self.le)]
        elif base is _ANY:
            base = Any
        return TypeAdapter(base | None if self.accepts_none else base)

    def convert(self, value: Any) -> Any:
        """`value` as the declared type, or a `ParameterError` saying what is allowed."""
        if self.value_type is str and isinstance(value, int | float | os.PathLike) and (
                not isinstance(value, bool)):
            value = str(value)  # a Path, or a name that YAML read as a number
        if self.value_type in (int, float) and isinstance(value, bool):
            raise ParameterError(f"{value!r} is not {self.describe_type()}")
        from pydantic import ValidationError

        try:
            return self._adapter.validate_python(value)
        except ValidationError:
            raise ParameterError(f"{value!r} is not {self.describe_type()}") from None

    def describe_type(self) -> str:
        """E.g. ``a float > 0``, ``one of 'dp', 'naive'``, ``an int >= 1, or None``."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            name = {int: "an int", float: "a float", str: "a string", bool: "true or false",
                    _ANY: "any value"}.get(self.value_type, self.value_type.__name__)
            bounds = [f"{op} {bound:g}" for op, bound in (
                (">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le))
                if bound is not None]
            text = f"{name} {' and '.join(bounds)}".strip()
        return text + (", or None" if self.accepts_none else "")


def inferred(defaults: dict[str, Any]) -> dict[str, Param]:
    """Parameters of a plugin that gives only ``defaults``: each default's own type."""
    return {key: Param(value) for key, value in defaults.items()}


def convert_all(owner: str, schema: dict[str, Param], values: dict[str, Any]) -> dict[str, Any]:
    """`values` converted by `schema`; an unknown key or bad value is a `ParameterError`
    naming `owner` (the plugin), the key, the value and what is allowed."""
    unknown = sorted(set(values) - set(schema))
    if unknown:
        key = unknown[0]
        raise ParameterError(f"{owner} has no parameter '{key}'.{did_you_mean(key, schema)} "
                             f"Its parameters: {', '.join(sorted(schema)) or '(none)'}")
    converted = {}
    for key, value in values.items():
        try:
            converted[key] = schema[key].convert(value)
        except ParameterError as error:
            raise ParameterError(f"{owner}.{key}={value!r}: {error}") from None
    return converted


