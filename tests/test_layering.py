"""Imports run one way: data -> models -> pretext -> engine -> eval -> pipeline -> bench -> cli, and
eval (scoring) knows nothing of engine (training): the pipeline hands it what it needs.

Every module under sslbench/ is parsed (nothing is imported) and every ``sslbench.*`` import counts,
at module level and inside functions alike: a lazy import is still a dependency.
"""

import ast
from pathlib import Path

import sslbench

ROOT = Path(sslbench.__file__).parent
LAYERS = ("data", "models", "pretext", "engine", "eval", "pipeline", "bench", "cli")
#: imported by anything; they themselves import only each other and ``data``
BASE = ("sslbench", "sslbench.errors", "sslbench.registry", "sslbench.config", "sslbench.torchvision_cpu")
#: base modules that reach higher: config checks ``--backbone`` names against smp's encoders (models)
BASE_CEILING = {"sslbench.config": "models"}
#: (package, lower package it must not import all the same)
APART = (("eval", "engine"),)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_time_nodes(node: ast.AST):
    """What runs when the module is imported: not function bodies, nor ``if TYPE_CHECKING:`` blocks."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            yield from (n for stmt in child.orelse for n in [stmt, *import_time_nodes(stmt)])
            continue
        yield child
        yield from import_time_nodes(child)


def sslbench_imports(tree: ast.AST, module: str, at_import_only: bool = False) -> set[str]:
    """The other sslbench modules ``module`` imports (``from sslbench.x import y`` counts y too when
    it is a module); with ``at_import_only`` those imported as soon as ``module`` is."""
    nodes = import_time_nodes(tree) if at_import_only else ast.walk(tree)
    package = module.split(".") if FILES.get(module, Path()).name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            parent = package[:len(package) + 1 - node.level] if node.level else []  # relative: from the package
            base = ".".join([*parent, *([node.module] if node.module else [])])
            found |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    return {name for name in found if name in FILES and name != module}


def layer(module: str) -> str | None:
    """The package a module belongs to; None for a base module. ``__main__`` is the command line."""
    if module == "sslbench.__main__":
        return "cli"
    part = module.split(".")[1] if module.count(".") >= 1 else None
    return part if part in LAYERS else None


FILES = {module_name(p): p for p in ROOT.rglob("*.py") if "_configs" not in p.relative_to(ROOT).parts}
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in FILES.items()}


def test_every_module_is_a_base_module_or_in_a_layer():
    assert {m for m in FILES if layer(m) is None} == set(BASE)


def test_packages_import_only_their_own_layer_or_lower_ones():
    wrong = []
    for module, tree in TREES.items():
        for imported in sslbench_imports(tree, module):
            if imported in BASE:
                continue
            ceiling = BASE_CEILING.get(module, "data") if module in BASE else layer(module)
            if LAYERS.index(layer(imported)) > LAYERS.index(ceiling) or (ceiling, layer(imported)) in APART:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, wrong


def test_no_module_level_import_cycle():
    graph = {module: sslbench_imports(tree, module, at_import_only=True) for module, tree in TREES.items()}
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return path + [imported]
            if imported not in state and (cycle := visit(imported, path + [imported])):
                return cycle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [module])
            assert cycle is None, " -> ".join(cycle)


def test_the_checks_see_lazy_imports_and_tell_them_from_import_time_ones():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sslbench.cli.app\n"
                     "try:\n    from sslbench.data import base\nexcept ImportError:\n    pass\n"
                     "def f():\n    from sslbench.bench.plan import BenchOptions\n")
    assert sslbench_imports(tree, "sslbench.eval.x") == {"sslbench.cli.app", "sslbench.data", "sslbench.data.base",
                                                         "sslbench.bench.plan"}
    assert sslbench_imports(tree, "sslbench.eval.x", at_import_only=True) == {"sslbench.data", "sslbench.data.base"}
