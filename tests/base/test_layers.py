"""core's packages import only from packages before them in the data flow (ARCHITECTURE.md).

A module-level or function-level `import core.X` / `from core.X import` that points at a later
package fails here, naming the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"
BASE = {"errors", "facade", "files", "run_folder", "config", "device"}
LAYERS = ["base", "data", "model", "train", "embed", "index", "quality", "geometry", "retrieval",
          "duplicates", "review", "report", "demo", "runs", "jobs", "cli"]


def layer_of(module: str) -> int | None:
    """Position in LAYERS of a dotted module under core, or None for the facade itself."""
    parts = module.split(".")
    if parts[0] != "core" or len(parts) == 1:
        return None
    head = parts[1]
    if head in BASE:
        return 0
    if head == "__main__":
        return len(LAYERS) - 1
    assert head in LAYERS, f"core.{head} is in no layer: add it to LAYERS or BASE"
    return LAYERS.index(head)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) for every import of core in a file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "core":  # from core import x: x is a package
                found += [(node.lineno, f"core.{a.name}") for a in node.names]
            elif node.module.startswith("core."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("core.")]
    return found


def upward_imports(root: Path = CORE) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        own = layer_of(".".join(parts))
        if own is None:
            continue
        for line, module in imports(path):
            other = layer_of(module)
            if other is not None and other > own:
                bad.append(f"{rel}.py:{line} imports {module} ({LAYERS[other]} is after "
                           f"{LAYERS[own]})")
    return bad


def test_no_package_imports_a_later_one() -> None:
    assert upward_imports() == []


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    """A core tree under tmp_path holding `files` (path under core -> source)."""
    for rel, source in files.items():
        path = tmp_path / "core" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return tmp_path / "core"


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    core = _plant(tmp_path, {"data/dataset.py": "def f():\n    from core.runs.pipeline import train_run\n"})
    assert upward_imports(core) == [
        "core/data/dataset.py:2 imports core.runs.pipeline (runs is after data)"]


def import_circles(root: Path = CORE) -> list[list[str]]:
    """Circles of imports between core's modules (module- or function-level), each as the
    modules along it, the first repeated last. Package `__init__`s (lazy facades that name
    their modules) are left out: a circle through a facade is not a dependency."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        if rel.name != "__init__":
            modules[".".join(rel.parts)] = path
    graph = {m: sorted({i for _, i in imports(p) if i in modules and i != m})
             for m, p in modules.items()}
    circles, state = [], {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = "open"
        for n in graph[m]:
            if state.get(n) == "open":
                circles.append(trail[trail.index(n):] + [n])
            elif n not in state:
                visit(n, [*trail, n])
        state[m] = "done"

    for m in modules:
        if m not in state:
            visit(m, [m])
    return circles


def test_no_circle_of_imports_inside_or_across_packages() -> None:
    assert import_circles() == []


def test_the_check_catches_a_planted_circle(tmp_path: Path) -> None:
    core = _plant(tmp_path, {"embed/__init__.py": "",
                             "embed/shards.py": "def f():\n    from core.embed.ray_engine import g\n",
                             "embed/ray_engine.py": "from core.embed.shards import f\n"})
    assert import_circles(core) == [
        ["core.embed.ray_engine", "core.embed.shards", "core.embed.ray_engine"]]
