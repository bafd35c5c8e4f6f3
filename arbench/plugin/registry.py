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
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from arbench.errors import PluginError, UnknownPluginError, did_you_mean
from arbench.plugin import hookspecs
from arbench.plugin.kinds import Kind
from arbench.plugin.specs import SPEC_TYPES, ModelSpec, PluginSpec

if TYPE_CHECKING:
    import torch

    from arbench.plugin.contracts import Dataset, Model

ENTRY_POINT_GROUP = "arbench"
STRICT_ENV = "ARBENCH_STRICT_PLUGINS"


S = TypeVar("S", bound=PluginSpec[Any])


class PluginImportWarning(UserWarning):
    """A plugin package failed to import; the rest of arbench still works."""


class Registry:
    """Specs of every discovered plugin, indexed by kind and name."""

    def __init__(self, plugin_manager: pluggy.PluginManager, packages: dict[str, tuple[str, str]]):
        self.plugin_manager = plugin_manager
        self._specs: dict[Kind, dict[str, PluginSpec[Any]]] = {kind: {} for kind in Kind}
        for kind in Kind:
            for impl in getattr(plugin_manager.hook, kind.hook).get_hookimpls():
                package, version = packages.get(impl.plugin_name, (impl.plugin_name, ""))
                for spec in _specs_of(impl, kind, package):
                    self._add(kind, spec, package, version)

    def _add(self, kind: Kind, spec: PluginSpec[Any], package: str, version: str) -> None:
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

    def names(self, kind: Kind) -> list[str]:
        """The registered names of `kind`, sorted."""
        return sorted(self._specs[kind])

    def of_kind(self, kind: Kind) -> list[PluginSpec[Any]]:
        """Every spec of `kind`, by name (untyped: for listing)."""
        return [self._specs[kind][name] for name in self.names(kind)]

    def all(self, spec_type: type[S]) -> list[S]:
        """Every spec of the kind of `spec_type` (e.g. `ModelSpec`), by name."""
        specs = self._specs[spec_type.kind]
        return [specs[name] for name in sorted(specs)]  # type: ignore[misc]

    def get(self, spec_type: type[S], name: str) -> S:
        """The spec of `name` among the kind of `spec_type`, or an error listing the known
        names and the closest match."""
        try:
            return self._specs[spec_type.kind][name]  # type: ignore[return-value]
        except KeyError:
            raise UnknownPluginError(unknown_name_message(spec_type.kind, name,
                                                          self.names(spec_type.kind))) from None

    def kind_of(self, name: str) -> Kind | None:
        """The kind of the plugin called `name` (names are unique across kinds), or None."""
        return next((kind for kind, specs in self._specs.items() if name in specs), None)

    def find(self, name: str) -> PluginSpec[Any] | None:
        """The spec called `name`, whatever its kind, or None."""
        kind = self.kind_of(name)
        return None if kind is None else self._specs[kind][name]


def unknown_name_message(kind: Kind, name: str, known: Iterable[str]) -> str:
    """``unknown sampler 'x'. Did you mean 'y'? Known samplers: ...``."""
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


def _specs_of(impl: Any, kind: Kind, package: str) -> list[PluginSpec[Any]]:
    """The specs one hook implementation returns; a hook that raises, returns something
    other than a list, or lists something other than specs of its kind is skipped."""
    hook = kind.hook
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


def load_model(name: str, dataset: Dataset, device: torch.device, option: str | None = None,
               **params: Any) -> Model:
    """The registered model `name` for `dataset` on `device`, its checkpoint resolved and
    verified as a cell's is: for a plugin that uses another model (a speculative draft,
    a feature network). `option` names the parameter that takes its checkpoint
    (``speculative.draft_checkpoint``), for the hint when the file is missing."""
    return registry().get(ModelSpec, name).load_model(dataset, device, params, option)
