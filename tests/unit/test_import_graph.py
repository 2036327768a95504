"""The backend's layers stay as docs/architecture.md draws them: read from the source (every
import, at the top or inside a function; not those under `if TYPE_CHECKING:`), no module
imports one of a higher layer, the task pipeline imports nothing but itself, and no two
modules import each other, however long the way round."""

import ast
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[2] / "python-backend"

# Low to high; a module belongs to the longest prefix listed. A module may import its own
# layer and those below.
LAYERS = [
    ["aios.settings", "aios.netutil", "aios.open_files", "aios.broker_patch", "aios.net",
     "aios.files", "aios.approvals.policy", "aios.metrics", "aios.tokens"],
    ["aios.tasks", "aios.providers", "aios.sandbox", "aios.approvals", "aios.logs"],
    ["aios.deps", "aios.tools", "aios.mcp"],
    ["aios.agent"],
    ["aios.kinds"],
    ["aios.resources", "aios.celery_app", "aios.worker_logs", "aios.metrics.worker"],
    ["aios.web", "aios.metrics.web", "aios.cli", "aios.cli_api", "aios.cli_files",
     "aios.cli_approvals", "aios.mcp.server", "aios.__main__", "aios"],
]
# The pipeline runs what it is handed: it imports no kind, model, tool, file or sandbox code
PIPELINE = "aios.tasks"


def modules() -> dict[str, Path]:
    found = {}
    for path in (BACKEND / "aios").rglob("*.py"):
        parts = list(path.relative_to(BACKEND).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _runtime_nodes(tree: ast.AST):
    """The tree's nodes, leaving out `if TYPE_CHECKING:` blocks (imports for types only)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def imports(known: dict[str, Path]) -> dict[str, set[str]]:
    graph = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
            else:
                continue
            for candidate in candidates:
                while candidate and candidate not in known:
                    candidate = candidate.rpartition(".")[0]
                if candidate and candidate != name:
                    targets.add(candidate)
                    break
        graph[name] = targets
    return graph


def layer_of(module: str) -> int:
    best = max((prefix for layer in LAYERS for prefix in layer
                if module == prefix or module.startswith(prefix + ".")), key=len)
    return next(index for index, layer in enumerate(LAYERS) if best in layer)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} -> {target}" for module, targets in graph.items()
                  for target in targets if layer_of(target) > layer_of(module))


def pipeline_leaks(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} -> {target}" for module, targets in graph.items()
                  if module.startswith(PIPELINE) for target in targets
                  if not target.startswith(PIPELINE))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm). A package's
    __init__ importing its own modules is left out: that is how a package lists them."""
    edges = {m: {t for t in ts if not m or not t.startswith(m + ".")} for m, ts in graph.items()}
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_module_has_a_layer():
    for module in modules():
        layer_of(module)  # raises when no prefix matches


def test_no_module_imports_a_higher_layer():
    assert upward_imports(imports(modules())) == []


def test_the_pipeline_imports_no_kind_model_tool_or_file_code():
    assert pipeline_leaks(imports(modules())) == []


def test_there_is_no_import_cycle():
    assert cycles(imports(modules())) == []


def test_the_checks_see_what_they_look_for():
    graph = {"aios.tasks.runner": {"aios.kinds.chat", "aios.tasks.store"},
             "aios.kinds.chat": {"aios.tasks.runner"}, "aios.tasks.store": set()}
    assert upward_imports(graph) == ["aios.tasks.runner -> aios.kinds.chat"]
    assert pipeline_leaks(graph) == ["aios.tasks.runner -> aios.kinds.chat"]
    assert cycles(graph) == [["aios.kinds.chat", "aios.tasks.runner"]]
