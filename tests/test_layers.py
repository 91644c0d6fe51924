"""The package reads as the pipeline: documents -> chunks -> store -> search -> answer -> web.

The store is the bottom of it: ingest writes into it through its interface and search reads from it.

Each subpackage may import only from the layers below it (never from a layer above, not even
under TYPE_CHECKING), no module imports another in a cycle, nothing outside `store/` touches a raw
Chroma collection, and every module stays small enough to read on a few screens.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "assistant"

# Bottom to top. A module may import from its own layer and from any layer listed before it.
LAYERS = [
    {"config", "audience", "identity"},  # settings and who may read what: everyone's vocabulary
    {"store"},  # Chroma, the ingest records, the SQL engine, locks, embeddings
    {"ingest"},  # files -> documents -> chunks and units -> into the store
    {"search"},  # hybrid retrieval, lexical analysis, validity
    {"answering"},  # questions -> answers with citations
    {"evaluation"},  # question sets and the harness
    {"records"},  # audit log, feedback, conversations, regression set, retention
    {"admin"},  # uploads, usage reports, knowledge gaps
    {"services"},  # the parts assembled from the settings (CLI, app and tests build through it)
    {"web"},  # the app
    {"cli", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
MAX_LINES = 420  # about 400: a module a reader can hold in mind


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def dotted(path: Path) -> str:
    return ".".join(("assistant", *path.relative_to(PACKAGE).with_suffix("").parts))


def imports(path: Path) -> set[str]:
    """Every `assistant.*` module a file imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("assistant"):
            if node.module == "assistant":
                found.update(f"assistant.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("assistant."))
    return found


def layer(module: str) -> int:
    return RANK[module.split(".")[1]]


def test_every_module_has_a_layer():
    assert {dotted(p).split(".")[1] for p in modules()} <= set(RANK)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_from_a_layer_above(path):
    here = dotted(path)
    above = sorted(m for m in imports(path) if m.count(".") and layer(m) > layer(here))
    assert not above, f"{here} (layer {layer(here)}) imports from above: {above}"


def test_no_import_cycle():
    graph = {dotted(p): {m for m in imports(p) if m != dotted(p)} for p in modules()}
    seen: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(node) :] + [node]))
        if node in seen or node not in graph:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, [*path, node])
        seen.add(node)

    for node in sorted(graph):
        visit(node, [])


def test_only_the_store_touches_chroma_collections():
    outside = [
        f"{p.relative_to(PACKAGE)}:{n.lineno}"
        for p in modules()
        if p.parent.name != "store"
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(n, ast.Attribute) and n.attr in {"collection", "_collection"}
    ]
    assert not outside, f"raw Chroma collection used outside store/: {outside}"


def test_modules_stay_small():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, long


def test_long_functions_say_why():
    """A function over 60 lines carries a `# Long: <reason>` comment right above it."""
    unexplained = []
    for path in modules():
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if node.end_lineno - node.lineno + 1 > 60 and not lines[
                    first - 2
                ].strip().startswith("# Long:"):
                    unexplained.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert not unexplained, unexplained
