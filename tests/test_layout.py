"""The package's rooms and the direction of their imports: model <- export <- runtime <- bench / cli,
kernels used by runtime, eval independent of model and runtime; no import circle anywhere."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lmeec"

# room -> rooms it may import (besides itself and the shared `lmeec.files`)
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "export": {"model"},
    "kernels": {"model"},
    "runtime": {"model", "export", "kernels"},
    "eval": set(),
    "bench": {"model", "export", "kernels", "runtime", "eval"},
    "scale": {"model", "export", "runtime", "eval"},
    "serve": {"model", "export", "runtime", "eval"},
    "cli": {"model", "export", "kernels", "runtime", "eval", "bench", "scale", "serve"},
}


def module_names() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every lmeec module `name` imports, at any depth of its code (function-local imports included)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for t in targets:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t.startswith("lmeec") and t != name:
                found.add(t)
    return found


def graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports(name, path, modules) for name, path in modules.items()}


def room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def test_rooms_import_only_downstream():
    bad = []
    for mod, targets in graph().items():
        src = room(mod)
        if src is None:
            continue
        for t in targets:
            dst = room(t)
            if dst is not None and dst != src and dst not in ALLOWED[src]:
                bad.append(f"{mod} -> {t}")
    assert not bad, "imports against the layering: " + ", ".join(sorted(bad))


def find_circle(g: dict[str, set[str]]) -> list[str] | None:
    """One import circle of the graph, or None."""
    state: dict[str, int] = {}

    def visit(u: str, path: list[str]) -> list[str] | None:
        state[u] = 1
        for v in sorted(g.get(u, ())):
            if state.get(v) == 1:
                return path[path.index(v) :] + [v]
            if v not in state and (circle := visit(v, path + [v])):
                return circle
        state[u] = 2
        return None

    for m in sorted(g):
        if m not in state and (circle := visit(m, [m])):
            return circle
    return None


def test_circle_finder_finds_circles():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circle():
    # Edges into a package's __init__ are left out: importing `lmeec.x.y` runs `lmeec.x` first by Python's
    # rules, which is not a dependency the code chose.
    modules = module_names()
    g = {m: {t for t in ts if modules[t].name != "__init__.py"} for m, ts in graph().items()}
    assert len(g) > 40  # the walk saw the whole package
    assert find_circle(g) is None


def test_each_cli_verb_has_its_module():
    from lmeec.cli.main import VERBS

    for verb in VERBS:
        assert (PACKAGE / "cli" / f"{verb}.py").is_file(), verb


def test_every_package_says_what_it_holds():
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 40, f"{init} has no docstring"
