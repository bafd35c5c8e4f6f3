"""Discovery of plugins through the ``arbench`` entry-point group.

Every plugin, built-in or third-party, is a module registered under that group.
A module that fails to import, or whose hook raises or returns something other
than a list of specs, is skipped with a warning naming its package
(``ARBENCH_STRICT_PLUGINS=1`` turns the warning into an error); two plugins
claiming one name, of the same kind or not (``--set NAME.KEY`` addresses a
plugin by name alone), is always an error naming both packages.
"""

from __future__ import annotations

import importlib.metadata
import os
import warnings
from collections.abc import Iterable
from functools import cache
from typing import Any, Literal, overload

import pluggy

from arbench.errors import PluginError, UnknownPluginError, did_you_mean
from arbench.plugin import hookspecs
from arbench.plugin.specs import (
    SPEC_TYPES,
    DatasetSpec,
    ExecutorSpec,
    MetricSpec,
    ModelSpec,
    PluginSpec,
    ReporterSpec,
    SamplerSpec,
    TaskSpec,
)

ENTRY_POINT_GROUP = "arbench"
STRICT_ENV = "ARBENCH_STRICT_PLUGINS"


class PluginImportWarning(UserWarning):
    """A plugin package failed to import; the rest of arbench still works."""


class Registry:
    """Specs of every discovered plugin, indexed by kind and name."""

    def __init__(self, plugin_manager: pluggy.PluginManager, packages: dict[str, tuple[str, str]]):
        self.plugin_manager = plugin_manager
        self._specs: dict[str, dict[str, PluginSpec[Any]]] = {kind: {} for kind in SPEC_TYPES}
        for kind in SPEC_TYPES:
            hook = getattr(plugin_manager.hook, f"arbench_{kind}s")
            for impl in hook.get_hookimpls():
                package, version = packages.get(impl.plugin_name, (impl.plugin_name, ""))
                for spec in _specs_of(impl, kind, package):
                    self._add(kind, spec, package, version)

    def _add(self, kind: str, spec: PluginSpec[Any], package: str, version: str) -> None:
        existing = self._specs[kind].get(spec.name)
        if existing is not None:
            raise PluginError(
                f"two plugins claim the {kind} name '{spec.name}': package '{existing.package}' "
                f"and package '{package}'. Uninstall one of them or rename its {kind}."
            )
        for other_kind, specs in self._specs.items():
            if other_kind != kind and spec.name in specs:
                raise PluginError(
                    f"the name '{spec.name}' is both a {other_kind} (package "
                    f"'{specs[spec.name].package}') and a {kind} (package '{package}'); names "
                    f"are unique across kinds because --set {spec.name}.KEY=VALUE addresses "
                    f"plugins by name alone. Rename one of them."
                )
        object.__setattr__(spec, "package", package)
        object.__setattr__(spec, "version", version)
        self._specs[kind][spec.name] = spec

    def names(self, kind: str) -> list[str]:
        return sorted(self._specs[kind])

    @overload
    def all(self, kind: Literal["dataset"]) -> list[DatasetSpec]: ...
    @overload
    def all(self, kind: Literal["model"]) -> list[ModelSpec]: ...
    @overload
    def all(self, kind: Literal["sampler"]) -> list[SamplerSpec]: ...
    @overload
    def all(self, kind: Literal["task"]) -> list[TaskSpec]: ...
    @overload
    def all(self, kind: str) -> list[PluginSpec[Any]]: ...

    def all(self, kind: str) -> list[Any]:
        return [self._specs[kind][name] for name in self.names(kind)]

    @overload
    def get(self, kind: Literal["dataset"], name: str) -> DatasetSpec: ...
    @overload
    def get(self, kind: Literal["model"], name: str) -> ModelSpec: ...
    @overload
    def get(self, kind: Literal["sampler"], name: str) -> SamplerSpec: ...
    @overload
    def get(self, kind: Literal["task"], name: str) -> TaskSpec: ...
    @overload
    def get(self, kind: Literal["metric"], name: str) -> MetricSpec: ...
    @overload
    def get(self, kind: Literal["executor"], name: str) -> ExecutorSpec: ...
    @overload
    def get(self, kind: Literal["reporter"], name: str) -> ReporterSpec: ...
    @overload
    def get(self, kind: str, name: str) -> PluginSpec[Any]: ...

    def get(self, kind: str, name: str) -> Any:
        """The spec of `name` (typed by `kind`), or an error listing the known names and
        the closest match."""
        try:
            return self._specs[kind][name]
        except KeyError:
            raise UnknownPluginError(unknown_name_message(kind, name, self.names(kind))) from None


def unknown_name_message(kind: str, name: str, known: Iterable[str]) -> str:
    known = sorted(known)
    return (f"unknown {kind} '{name}'.{did_you_mean(name, known)} "
            f"Known {kind}s: {', '.join(known) or '(none)'}.")


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "").lower() not in ("", "0", "false", "no")


def _broken(message: str, error: BaseException | None = None) -> None:
    """A broken third-party plugin must not break arbench: a warning naming it, or with
    ``ARBENCH_STRICT_PLUGINS=1`` a `PluginError`."""
    if _strict():
        raise PluginError(message) from error
    warnings.warn(f"{message} (skipped; set {STRICT_ENV}=1 to fail instead)",
                  PluginImportWarning, stacklevel=3)


def _specs_of(impl: Any, kind: str, package: str) -> list[PluginSpec[Any]]:
    """The specs one hook implementation returns; a hook that raises, returns something
    other than a list, or lists something other than specs of its kind is skipped."""
    hook = f"arbench_{kind}s"
    try:
        specs = impl.function()
    except Exception as error:
        _broken(f"arbench plugin package '{package}': {hook}() raised "
                f"{type(error).__name__}: {error}", error)
        return []
    if specs is None:
        return []
    expected = SPEC_TYPES[kind]
    if not isinstance(specs, list | tuple) or not all(isinstance(s, expected) for s in specs):
        wrong = type(specs).__name__ if not isinstance(specs, list | tuple) else \
            next(type(s).__name__ for s in specs if not isinstance(s, expected))
        _broken(f"arbench plugin package '{package}': {hook}() returned {wrong}; it must "
                f"return a list of {expected.__name__}")
        return []
    return list(specs)


def build_registry(entry_points: Iterable[importlib.metadata.EntryPoint] | None = None) -> Registry:
    """Load every entry point of the ``arbench`` group into a fresh registry."""
    plugin_manager = pluggy.PluginManager(hookspecs.PROJECT)
    plugin_manager.add_hookspecs(hookspecs)
    if entry_points is None:
        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    packages: dict[str, tuple[str, str]] = {}
    for entry_point in entry_points:
        dist = entry_point.dist
        package = dist.name if dist is not None else entry_point.value
        version = dist.version if dist is not None else ""
        try:
            module = entry_point.load()
        except Exception as error:  # a broken third-party plugin must not break arbench
            _broken(f"arbench plugin '{entry_point.name}' from package '{package}' failed to "
                    f"import: {type(error).__name__}: {error}", error)
            continue
        plugin_name = f"{package}:{entry_point.name}"
        plugin_manager.register(module, name=plugin_name)
        packages[plugin_name] = (package, version)
    plugin_manager.check_pending()
    return Registry(plugin_manager, packages)


@cache
def registry() -> Registry:
    """The process-wide registry, built on first use."""
    return build_registry()
