"""The installed plugins, by kind or by name, and their declared parameters."""

from __future__ import annotations

from typing import Any

from arbench.errors import UsageError, did_you_mean
from arbench.plugin.kinds import Kind
from arbench.plugin.specs import PluginSpec


def plugins(kind: str | None = None) -> dict[Kind, list[PluginSpec[Any]]]:
    """Every installed plugin by kind, or those of `kind` (``sampler`` or ``samplers``)."""
    from arbench.plugin.registry import registry

    if kind is None:
        return {each: registry().of_kind(each) for each in Kind}
    try:
        chosen = Kind(kind.removesuffix("s"))
    except ValueError:
        raise UsageError(f"'{kind}' is not a kind of plugin: one of "
                         f"{', '.join(each.value for each in Kind)}") from None
    return {chosen: registry().of_kind(chosen)}


def plugin(name: str) -> PluginSpec[Any]:
    """The plugin called `name`, whatever its kind, or an error suggesting the closest."""
    from arbench.plugin.registry import registry

    found = registry().find(name)
    if found is None:
        names = [spec.name for each in Kind for spec in registry().of_kind(each)]
        raise UsageError(f"'{name}' is neither a kind ({', '.join(each.value for each in Kind)})"
                         f" nor a plugin name.{did_you_mean(name, names)}")
    return found


def plugin_parameters(spec: PluginSpec[Any]) -> list[tuple[str, str, str, str]]:
    """A plugin's declared parameters: (key, type and range, default, description)."""
    from arbench.plugin.params import describe

    schema = spec.load().Params
    return [(key, describe(field), repr(field.default), field.description or "")
            for key, field in schema.model_fields.items()]
