"""The floor plan (docs/design.md, "Layout"): imports run downward only, function-level imports follow the
stated policy, one import circle at most, no folder over 15 % of the package. Read from the source with ``ast``."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import prfnet

PACKAGE = Path(prfnet.__file__).resolve().parent

#: each room (a sub-package or a top-level module) and its layer: a room imports only rooms of LOWER layers (and
#: itself); rooms of one layer do not import each other
LAYERS = {
    "errors": 0,
    "_version": 0,
    "ioutil": 0,
    "sqlite_file": 0,
    "images": 1,
    "memory": 1,
    "cache": 1,
    "store": 1,
    "hub": 1,
    "outputs": 1,
    "model": 2,
    "api": 3,
    "data": 3,
    "stats": 3,
    "report": 3,
    "trainer_settings": 3,
    "baselines": 4,
    "integrations": 4,
    "synth": 4,
    "fetch": 4,
    "scoring": 5,
    "protocol": 6,
    "evaluation": 7,
    "training": 7,
    "rd": 7,
    "tune": 7,
    "view": 7,
    "demo": 8,
    "cli": 9,
    "__main__": 10,
}
#: where a function-level import of prfnet's own code is allowed (docs/design.md, import policy): the command
#: bodies of the CLI and the lazy attributes of the package (both keep `prfnet --help` free of torch), and the
#: viewer, which starts without torch (a 20,000-triplet page in under 2 s) and loads the model at the first score map
LAZY_ROOMS = {"cli", "__init__", "view"}
#: the one import circle the policy accepts: a checkpoint reader builds the model it reads
ALLOWED_CIRCLE = {"prfnet.model.prfnet", "prfnet.model.checkpoint"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(absolute prfnet module imported, at module top?) for every import of prfnet code in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "prfnet":
                continue
            for alias in node.names:  # `from . import x` imports the module prfnet.x
                sub = f"{target}.{alias.name}"
                is_module = (PACKAGE.parent / sub.replace(".", "/")).with_suffix(".py").exists() or (
                    PACKAGE.parent / sub.replace(".", "/")
                ).is_dir()
                found.append((sub if is_module else target, id(node) in top))
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names if a.name.split(".")[0] == "prfnet"]
    return found


def _graph() -> dict[str, list[tuple[str, bool]]]:
    return {_module(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_room_has_a_layer():
    rooms = {_room(m) for m in _graph()} - {"__init__"}
    assert rooms <= set(LAYERS), f"rooms without a layer in this test (add them): {sorted(rooms - set(LAYERS))}"


def test_imports_run_downward_only():
    upward = []
    for module, imports in _graph().items():
        room = _room(module)
        if room == "__init__":
            continue
        for target, _ in imports:
            other = _room(target)
            if other == room or other == "__init__" and target == "prfnet":
                continue
            if LAYERS[other] >= LAYERS[room]:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that do not run downward:\n" + "\n".join(upward)


def test_function_level_imports_of_prfnet_code_only_where_the_policy_allows():
    lazy = [
        f"{module} -> {target}"
        for module, imports in _graph().items()
        for target, at_top in imports
        if not at_top and _room(module) not in LAZY_ROOMS and {module, target} != ALLOWED_CIRCLE
    ]
    assert not lazy, "function-level imports of prfnet modules outside cli/ and prfnet/__init__:\n" + "\n".join(lazy)


def test_at_most_the_one_allowed_import_circle():
    edges = defaultdict(set)
    modules = set(_graph())
    for module, imports in _graph().items():
        for target, _ in imports:
            while target not in modules and "." in target:  # `from prfnet.x import name` of a package
                target = target.rsplit(".", 1)[0]
            if target != module and not module.startswith(target + "."):  # a package's own __init__ re-exports
                edges[module].add(target)
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(component)

    for v in sorted(modules):
        if v not in index:
            visit(v)
    assert all(c == ALLOWED_CIRCLE for c in circles), f"import circles: {[sorted(c) for c in circles]}"


def test_no_folder_holds_more_than_15_percent_of_the_lines():
    lines = defaultdict(int)
    for path in PACKAGE.rglob("*.py"):
        lines[_room(_module(path))] += len(path.read_text(encoding="utf-8").splitlines())
    total = sum(lines.values())
    big = {room: f"{n / total:.1%}" for room, n in lines.items() if n > 0.15 * total}
    assert not big, f"rooms over 15 % of {total} lines: {big}"


def test_no_module_over_about_400_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 410
    }
    assert not long, f"modules over 410 lines (split them): {long}"
