"""Plugin discovery: entry points, broken plugins, duplicate names, suggestions."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest
from conftest import entry_point, make_dist, run_process

from arbench import Kind, SamplerSpec
from arbench.plugin.registry import (
    ENTRY_POINT_GROUP,
    PluginError,
    PluginImportWarning,
    UnknownPluginError,
    build_registry,
)


def test_builtins_are_discovered_through_entry_points():
    names = {ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert "arbench_plugins.samplers" in names
    reg = build_registry()
    assert "ancestral" in reg.names(Kind.SAMPLER)
    assert reg.get(SamplerSpec, "ancestral").package == "arbench"


def test_unknown_name_lists_known_names_and_closest_match(test_registry):
    with pytest.raises(UnknownPluginError) as info:
        test_registry.get(SamplerSpec, "ancestrl")
    message = str(info.value)
    assert "Did you mean 'ancestral'?" in message
    assert "toy" in message and "ancestral" in message


def test_plugin_that_fails_to_import_warns_and_the_rest_works(monkeypatch):
    monkeypatch.delenv("ARBENCH_STRICT_PLUGINS", raising=False)
    broken = entry_point("broken", "no_such_module_xyz")
    builtins = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    with pytest.warns(PluginImportWarning, match="no_such_module_xyz"):
        reg = build_registry([*builtins, broken])
    assert "ancestral" in reg.names(Kind.SAMPLER)


def test_strict_mode_turns_a_broken_plugin_into_an_error(monkeypatch):
    monkeypatch.setenv("ARBENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="failed to import"):
        build_registry([entry_point("broken", "no_such_module_xyz")])


@pytest.mark.parametrize(("hook", "spec", "clash"), [
    ("arbench_samplers", "SamplerSpec", "two plugins claim the sampler name 'ancestral'"),
    ("arbench_models", "ModelSpec", "the name 'ancestral' is both a"),  # across kinds
])
def test_two_plugins_with_one_name_is_an_error_naming_both(tmp_path, hook, spec, clash):
    source = (
        f"from arbench import {spec}, hookimpl\n"
        "@hookimpl\n"
        f"def {hook}():\n"
        f"    return [{spec}(name='ancestral', factory='x:Y', description='impostor')]\n"
    )
    module = f"impostor_{spec.lower()}"  # a fresh module per case (imports are cached)
    site = make_dist(tmp_path, "impostor-pkg", {module: source}, {"impostor": module})
    sys.path.insert(0, str(site))
    try:
        eps = [*importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)]
        eps = [ep for ep in eps if ep.dist is None or ep.dist.name in ("arbench", "impostor-pkg")]
        with pytest.raises(PluginError) as info:
            build_registry(eps)
    finally:
        sys.path.remove(str(site))
    assert "'arbench'" in str(info.value) and "'impostor-pkg'" in str(info.value)
    assert clash in str(info.value)


def test_arbench_list_survives_a_broken_plugin_package(tmp_path):
    site = make_dist(tmp_path / "site", "broken-pkg",
                     {"broken_plugin": "raise ImportError('missing dependency foo')\n"},
                     {"broken": "broken_plugin"})
    result = run_process(["list", "sampler"], cwd=tmp_path, extra_path=[site])
    assert result.returncode == 0, result.stderr
    assert "ancestral" in result.stdout
    assert "broken-pkg" in result.stderr and "missing dependency foo" in result.stderr


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"]])
def test_help_does_not_import_torch(argv):
    """(`arbench list` does: capabilities and modalities are read from the classes.)"""
    code = (
        "import sys\n"
        "from arbench.cli import app\n"
        f"try:\n    app({argv!r})\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'pandas' not in sys.modules, 'pandas was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
