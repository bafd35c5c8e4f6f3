"""The public API is `arbench` itself: what the example package and the guide import, and
what every name in it is."""

from __future__ import annotations

import ast
import importlib
import inspect

import pytest
from conftest import REPO

import arbench

EXAMPLES = sorted((REPO / "examples").rglob("*.py"))
GUIDES = sorted((REPO / "docs").glob("*.md"))


def arbench_imports(source: str) -> list[str]:
    """The arbench modules `source` imports (``arbench`` for the package itself)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
    return [name for name in found if name == "arbench" or name.startswith("arbench.")]


def python_blocks(text: str) -> list[str]:
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


def test_the_example_packages_and_the_guides_import_arbench_alone():
    sources = {str(path): path.read_text() for path in EXAMPLES}
    sources |= {f"{path}[{index}]": block for path in GUIDES
                for index, block in enumerate(python_blocks(path.read_text()))}
    assert len(sources) >= 3, "nothing found to check"
    for where, source in sources.items():
        inner = [name for name in arbench_imports(source) if name != "arbench"]
        assert not inner, f"{where} imports {inner}; import from `arbench` itself"


def test_the_import_reader_sees_inner_imports():
    assert arbench_imports("from arbench.run.runner import Runner\nimport arbench") == [
        "arbench.run.runner", "arbench"]


def test_every_public_name_loads_and_says_why_it_exists():
    names = [name for name in arbench.__all__ if not name.startswith("_")]
    assert len(names) > 50
    for name in names:
        value = getattr(arbench, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"arbench.{name} has no docstring"


def test_importing_arbench_imports_no_heavy_module():
    code = ("import sys, arbench; from arbench import SamplerSpec, hookimpl; "
            "print(sorted(m for m in ('torch', 'pandas', 'pydantic') if m in sys.modules))")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("module", ["arbench_plugins.samplers.ancestral",
                                    "arbench_plugins.models.pixelcnn.model"])
def test_built_in_plugins_import_arbench_alone(module):
    """(The whole of plugins/ is held to it by the import-linter contract in CI.)"""
    source = inspect.getsource(importlib.import_module(module))
    assert set(arbench_imports(source)) == {"arbench"}


def _modules(package):
    import pkgutil

    yield package.__name__
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not info.name.endswith("__main__"):
            yield info.name


def _documented_elsewhere() -> set[str]:
    """Methods a capability Protocol (or the Constraint of conditions) documents: a model
    implementing one needs no docstring of its own, as an override of a base needs none."""
    from arbench.plugin.capabilities import PROTOCOLS, Reconstructs, SourcePriors
    from arbench.plugin.conditions import Constraint

    return {name for protocol in [*PROTOCOLS.values(), Reconstructs, SourcePriors, Constraint]
            for name, value in vars(protocol).items()
            if not name.startswith("_") and (value.__doc__ if isinstance(value, property)
                                              else inspect.getdoc(value))}


def test_every_public_symbol_of_the_core_and_the_plugins_has_a_docstring():
    """Its own, a base's it overrides (`inspect.getdoc`), or the capability's it implements."""
    import arbench_plugins

    elsewhere = _documented_elsewhere()
    missing = []
    for package in (arbench, arbench_plugins):
        for name in _modules(package):
            module = importlib.import_module(name)
            for attr, obj in vars(module).items():
                if attr.startswith("_") or getattr(obj, "__module__", None) != name:
                    continue
                if (inspect.isclass(obj) or inspect.isfunction(obj)) and not inspect.getdoc(obj):
                    missing.append(f"{name}.{attr}")
                for member, value in (vars(obj).items() if inspect.isclass(obj) else ()):
                    raw = value.__func__ if isinstance(value, classmethod | staticmethod) else value
                    documented = (raw.__doc__ if isinstance(raw, property)
                                  else inspect.getdoc(getattr(obj, member)))
                    if (not member.startswith("_") and member not in elsewhere and not documented
                            and (inspect.isfunction(raw) or isinstance(raw, property))):
                        missing.append(f"{name}.{attr}.{member}")
    assert not missing, f"{len(missing)} public symbols without a docstring: {missing}"
