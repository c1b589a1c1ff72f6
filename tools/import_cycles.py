"""Import cycles between the feature packages of stethoscope/.

    .venv/bin/python tools/import_cycles.py

Reads every module with ``ast`` (nothing is imported), resolves relative
imports, and maps each to its top-level subpackage of stethoscope/ (a
module at the top, such as stethoscope.db, belongs to none: it is below
every feature). Prints each cycle between packages, shortest first, with
one import that makes each step of it; exits 1 when there is one.

Imports flow downward (docs STYLE.md): a feature may use what is below it,
never a sibling that uses it back. tests/unit/test_import_cycles.py runs
this on every test run.
"""

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "stethoscope"
PACKAGE = "stethoscope"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported(path: Path) -> set[str]:
    """The stethoscope modules ``path`` imports, absolute."""
    name = module_name(path)
    # The package a relative import is relative to.
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # ``from . import views``: the submodules too.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {module for module in found if module.split(".")[0] == PACKAGE}


def feature(module: str) -> str | None:
    """The top-level subpackage of ``module``; None for the shared modules."""
    parts = module.split(".")
    if len(parts) < 2 or not (ROOT / parts[1]).is_dir():
        return None
    return parts[1]


def package_imports() -> dict[str, dict[str, str]]:
    """For each feature, the features it imports, with one example each
    ("module -> imported module")."""
    edges: dict[str, dict[str, str]] = defaultdict(dict)
    for path in sorted(ROOT.rglob("*.py")):
        source = module_name(path)
        owner = feature(source)
        if owner is None:
            continue
        for target in sorted(imported(path)):
            other = feature(target)
            if other is not None and other != owner:
                edges[owner].setdefault(other, f"{source} -> {target}")
    return edges


def cycles(edges: dict[str, dict[str, str]]) -> list[list[str]]:
    """Every elementary cycle, each once, as a list starting at its least
    package; shortest first."""
    found = []
    for start in sorted(edges):
        # Only cycles whose least package is ``start``: each is found once.
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(edges.get(node, {})):
                if nxt == start:
                    found.append(path)
                elif nxt > start and nxt not in path:
                    stack.append((nxt, [*path, nxt]))
    return sorted(found, key=lambda cycle: (len(cycle), cycle))


def describe(cycle: list[str], edges: dict[str, dict[str, str]]) -> str:
    steps = [
        f"  {edges[a][b]}" for a, b in zip(cycle, [*cycle[1:], cycle[0]], strict=True)
    ]
    return " <-> ".join(cycle) + "\n" + "\n".join(steps)


def main() -> int:
    edges = package_imports()
    found = cycles(edges)
    for cycle in found:
        print(describe(cycle, edges))
    if not found:
        print("no import cycles between stethoscope's packages")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
