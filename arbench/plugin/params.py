"""A plugin's parameters, declared once as a typed model and validated once, at planning.

A plugin declares them as a nested `Params` class, one field per parameter, each with
its default, a doc line and its range::

    class PnF(Sampler):
        class Params(Sampler.Params):
            delta: float = Param(0.5, "Langevin step as a fraction of sigma^2", gt=0)
            policy: Literal["dp", "naive"] = Param("dp", "how the budget is split")

        params: Params  # what `self.params.delta` reads, typed

Values from ``--set``, ``--sweep`` and YAML grids are converted to the declared type
by pydantic's lax rules (``1e9`` is a float, ``abc`` is not an int, YAML's ``8`` for a
string parameter is ``"8"``, a boolean is never a number) and checked against the
range before any cell runs; an error names the plugin, the key, the value and what is
allowed. `arbench list NAME` prints the schema (`describe`).
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo

from arbench.errors import ParameterError, did_you_mean


class Params(BaseModel):
    """The parameters of a plugin: subclass it as the plugin's nested ``Params`` and
    declare each parameter as a field with `Param`. Instances are frozen (a plugin's
    configuration does not change under it), forbid unknown keys and take finite
    numbers only (``inf`` and ``nan`` are no setting)."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True,
                              validate_default=False, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _plain_values(cls, values: Any) -> Any:
        """A path given for a string is its text; a boolean is never a number."""
        if not isinstance(values, dict):
            return values
        plain = dict(values)
        for key, value in values.items():
            field = cls.model_fields.get(key)
            if field is None:
                continue
            if isinstance(value, os.PathLike):
                plain[key] = os.fspath(value)
            elif isinstance(value, bool) and _base_type(field) in (int, float):
                raise ValueError(f"{key}: {value!r} is not {describe(field)}")
        return plain


def Param(default: Any, doc: str = "", *, gt: float | None = None, ge: float | None = None,
          lt: float | None = None, le: float | None = None) -> Any:
    """One parameter's default, one-line doc and range: a pydantic field that `arbench
    list` and the error messages describe."""
    return Field(default, description=doc, gt=gt, ge=ge, lt=lt, le=le)


# The most positions a size parameter (speculative k, a window) may name: more than any
# sequence arbench runs, small enough that a typo (k=1000000000) is refused while the grid
# is planned. A sampler proposes or updates no more positions than the data has left.
MAX_POSITIONS = 65_536

P = TypeVar("P", bound=Params)


def validate(owner: str, schema: type[P], values: Mapping[str, Any]) -> P:
    """`values` as `schema`, or a `ParameterError` naming `owner` (the plugin), the key,
    the value and what is allowed."""
    unknown = sorted(set(values) - set(schema.model_fields))
    if unknown:
        key = unknown[0]
        known = ", ".join(sorted(schema.model_fields)) or "(none)"
        raise ParameterError(f"{owner} has no parameter '{key}'."
                             f"{did_you_mean(key, schema.model_fields)} Its parameters: {known}")
    try:
        return schema(**values)
    except ValidationError as error:
        first = error.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else next(iter(values), "")
        field = schema.model_fields.get(key)
        allowed = describe(field) if field is not None else first["msg"]
        raise ParameterError(f"{owner}.{key}={values.get(key)!r}: {values.get(key)!r} is not "
                             f"{allowed}") from None


def given(params: Params) -> dict[str, Any]:
    """The values set explicitly (not defaults), as JSON-able values: what a cell's key
    and record keep, so a plugin's new default is no new configuration."""
    return params.model_dump(mode="json", exclude_unset=True)


_NAMES = {int: "an int", float: "a float", str: "a string", bool: "true or false"}
_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def describe(field: FieldInfo) -> str:
    """E.g. ``a float > 0``, ``one of 'dp', 'naive'``, ``an int >= 1, or None``."""
    base = _base_type(field)
    if typing.get_origin(base) is Literal:
        text = "one of " + ", ".join(repr(choice) for choice in typing.get_args(base))
    else:
        name = _NAMES.get(base) or ("any value" if base is Any else getattr(base, "__name__",
                                                                              str(base)))
        bounds = [f"{symbol} {getattr(meta, attr):g}" for meta in field.metadata
                  for attr, symbol in _BOUNDS if getattr(meta, attr, None) is not None]
        text = f"{name} {' and '.join(bounds)}".strip()
    return text + (", or None" if _optional(field) else "")


def _optional(field: FieldInfo) -> bool:
    annotation = field.annotation
    return annotation is Any or (typing.get_origin(annotation) in (Union, types.UnionType)
                                 and type(None) in typing.get_args(annotation))


def _base_type(field: FieldInfo) -> Any:
    """The field's type without its ``| None``."""
    annotation = field.annotation
    if typing.get_origin(annotation) in (Union, types.UnionType):
        rest = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation
