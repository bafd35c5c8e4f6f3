"""Which code made a record: source hashes of the plugins a cell uses, and the git state.

A cell's key names its configuration (names, budget, seed, parameters, checkpoint, and
the files of a ``data_dir`` or the ``data_file`` by `data_fingerprint`);
its record also keeps ``code``: a hash per plugin it used (task, dataset, model,
sampler, every metric it computed) and one of arbench's core. A plugin's hash
covers the source file of its class and every module of the same package that
file imports, transitively (read with `ast`, never run; a distribution of several
top-level modules is followed into each of them), plus the package version:
editing PnF's sampler changes the hash of `sampler:pnf` and of nothing that does
not import it. Resume reruns a cell whose record was made by other code, the way
benchopt invalidates its cache when a solver's file changes; `arbench compare`
matches records by key alone, so a changed sampler is compared with its baseline.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import subprocess
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from arbench.plugin.registry import Registry
from arbench.plugin.specs import DatasetSpec, ModelSpec, PluginSpec, SamplerSpec, TaskSpec
from arbench.results.identity import canonical
from arbench.results.record import Record
from arbench.run.cell import Cell, CellPlan, Inputs
from arbench.run.grid import DATA_PATHS

CORE_MODULE = "arbench.run.runner"  # the core is what running a cell imports from arbench


def _source_file(module: str) -> Path | None:
    """The source file `module` is imported from now (not cached: in a long-lived process a
    name may come to mean another file, a plugin installed elsewhere)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imports(path: Path, module: str) -> set[str]:
    """Modules `path` (module `module`) imports, outside ``if TYPE_CHECKING:`` blocks; a
    ``from a import b`` also names ``a.b``, which may be a submodule."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return found


@cache
def _distribution_tops(top: str) -> frozenset[str]:
    """The top-level modules shipped by the distribution(s) that ship `top` (a plugin package
    of flat modules ships several), less arbench's core, which is hashed on its own."""
    import importlib.metadata

    if top == "arbench":
        return frozenset({top})
    names = importlib.metadata.packages_distributions()
    dists = set(names.get(top, []))
    tops = {other for other, owners in names.items() if dists & set(owners)}
    return frozenset((tops | {top}) - {"arbench"})


def _root(top: str) -> Path | None:
    """The folder on sys.path that `top` is found in, where that is a project's own folder
    (a checkout, a folder on PYTHONPATH) and not an environment's site-packages, whose
    modules are told apart by their distributions instead."""
    path = _source_file(top)
    if path is None:
        return None
    root = path.parent.parent if path.name == "__init__.py" else path.parent
    return None if root.name in ("site-packages", "dist-packages") else root


def _follows(top: str, other: str) -> bool:
    """Whether the code hash of a module of `top` follows an import of top-level `other`:
    the same distribution, or (no metadata says) a module beside it in its project folder."""
    if other in _distribution_tops(top):
        return True
    root = _root(top)
    return other != "arbench" and root is not None and _root(other) == root


_FILES: dict[str, tuple[Path | None, tuple[Path, ...], tuple[tuple[int, int], ...]]] = {}


def _stats(paths: tuple[Path, ...]) -> tuple[tuple[int, int], ...]:
    """(size, modification time) of each file: what tells an edited file in a long-lived
    process (tests, the library, persistent workers) without reading it."""
    def stat(path: Path) -> tuple[int, int]:
        try:
            info = path.stat()
        except OSError:
            return (-1, -1)
        return (info.st_size, info.st_mtime_ns)
    return tuple(stat(path) for path in paths)


def module_files(module: str) -> tuple[Path, ...]:
    """The source files of `module` and of the modules of its distribution that it imports,
    transitively (through modules of other top-level names of the same distribution too),
    in a stable order; recomputed when `module` now comes from another file or one of them
    changed since the last call."""
    origin = _source_file(module)
    cached = _FILES.get(module)
    if cached is not None and cached[0] == origin and _stats(cached[1]) == cached[2]:
        return cached[1]
    top = module.split(".")[0]
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _source_file(name)
        if path is None:
            continue
        seen[name] = path
        todo += [m for m in _imports(path, name)
                 if m not in seen and _follows(top, m.split(".")[0])]
    files = tuple(seen[name] for name in sorted(seen))
    _FILES[module] = (origin, files, _stats(files))
    return files


def module_hash(module: str, version: str = "") -> str:
    """sha256 (16 hex digits) of `version` and the files of `module_files(module)`."""
    files = module_files(module)
    return _hash_files(module, version, files, _stats(files))


@cache
def _hash_files(module: str, version: str, files: tuple[Path, ...],
                stats: tuple[tuple[int, int], ...]) -> str:
    digest = hashlib.sha256(f"{module} {version}\n".encode())
    for path in files:
        digest.update(path.name.encode() + b"\n" + path.read_bytes())
    return digest.hexdigest()[:16]


def factory_module(factory: Any) -> str:
    """The module defining a spec's factory (``"module:Class"`` or the class itself)."""
    if isinstance(factory, str):
        return factory.partition(":")[0]
    module = inspect.getmodule(factory)
    return module.__name__ if module else ""


def spec_hash(spec: Any) -> str:
    """The code hash of one plugin spec."""
    return module_hash(factory_module(spec.factory), spec.version)


def core_hash() -> str:
    """The code hash of arbench's core: what running a cell imports of it, with its version."""
    from arbench import __version__

    return module_hash(CORE_MODULE, __version__)


def code_of(specs: list[Any]) -> dict[str, str]:
    """``{"core": ..., "KIND:NAME": ...}`` for the plugins a cell uses."""
    return {"core": core_hash(), **{f"{spec.kind}:{spec.name}": spec_hash(spec)
                                    for spec in specs}}


def take(plans: Iterable[CellPlan], registry: Registry) -> list[Cell]:
    """Each planned cell with what it reads fingerprinted: the step that turns a plan into
    cells with keys. A checkpoint's sha256 (its sidecar's) and a data folder's fingerprint
    are taken once per configuration; skipped cells load nothing, so they keep none."""
    checkpoints: dict[str, str] = {}
    folders: dict[str, str] = {}

    def sha(model: str, dataset: str, params: Mapping[str, Any]) -> str:
        key = canonical([model, dataset, params])
        if key not in checkpoints:
            checkpoints[key] = registry.get(ModelSpec, model).checkpoint_sha256(
                dataset, dict(params))
        return checkpoints[key]

    cells = []
    for plan in plans:
        used: list[PluginSpec[Any]] = [
            registry.get(TaskSpec, plan.task), registry.get(DatasetSpec, plan.dataset),
            registry.get(SamplerSpec, plan.sampler),
            *([registry.get(ModelSpec, plan.model)] if plan.model else [])]
        checkpoint = ""
        if plan.skip_reason is None:
            # per variant: a model parameter may pick the checkpoint (mixtures=6)
            checkpoint = sha(plan.model, plan.dataset, plan.params[plan.model]) \
                if plan.model else ""
            checkpoint += "".join(f"+{name}:{sha(name, plan.dataset, params)}"
                                  for name, params in plan.helpers.items())
        given = plan.params.get(plan.dataset, {})
        folder = next((given[key] for key in DATA_PATHS if given.get(key) is not None), None)
        if folder is not None and folder not in folders:
            folders[folder] = data_fingerprint(Path(folder))
        inputs = Inputs(
            checkpoint_sha256=checkpoint,
            data_fingerprint=folders[folder] if folder is not None else "",
            code=code_of([*used, *(registry.get(ModelSpec, name) for name in plan.helpers)]),
            versions={f"{spec.kind}:{spec.name}": f"{spec.package}=={spec.version}"
                      for spec in used})
        cells.append(Cell.of(plan, inputs))
    return cells


def is_current(record: Record, registry: Registry) -> bool:
    """True when every plugin hash in `record.code` is today's: the record was made by
    the code that would run now (a record without hashes is from before they existed)."""
    code = record.provenance.code
    if not code:
        return False
    for label, recorded in code.items():
        if label == "core":
            now = core_hash()
        else:
            kind, _, name = label.partition(":")
            spec = registry.find(name)
            if spec is None or spec.kind != kind:  # a plugin that is gone made it
                return False
            now = spec_hash(spec)
        if now != recorded:
            return False
    return True


def data_fingerprint(folder: Path) -> str:
    """sha256 (16 hex digits) of the relative name, size and modification time of every
    file under `folder` (a dataset's ``data_dir``, or its ``data_file`` itself): replacing,
    adding or removing a file changes it, without reading the data. Empty when `folder`
    does not exist (the dataset says so when it loads)."""
    folder = Path(folder).expanduser()
    if not folder.exists():
        return ""
    digest = hashlib.sha256()
    files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
    for path in files:
        stat = path.stat()
        name = path.name if path == folder else path.relative_to(folder).as_posix()
        digest.update(f"{name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def data_fingerprint_of(owner: Any, folder: Path) -> str:
    """`data_fingerprint(folder)`, taken once per `owner`: a dataset instance stands for one
    configuration (the runner caches it), so its readers need not walk the folder again
    on every `load`."""
    taken: dict[Path, str] = owner.__dict__.setdefault("_data_fingerprints", {})
    if folder not in taken:
        taken[folder] = data_fingerprint(folder)
    return taken[folder]


@cache
def git_state() -> tuple[str, bool | None]:
    """(commit, dirty) of the arbench checkout; ("", None) when not installed from git."""
    here = Path(__file__).parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=here, capture_output=True, text=True,
                              timeout=10, check=True).stdout

    try:
        return git("rev-parse", "HEAD").strip(), bool(git("status", "--porcelain").strip())
    except (OSError, subprocess.SubprocessError):
        return "", None
