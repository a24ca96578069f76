"""The package's modules import each other without a circle.

Every import statement counts, also those inside functions (a lazy import only hides a circle
until the day it runs first), except those under ``if TYPE_CHECKING:``. ``from P import m``
is an edge to the module ``P.m`` when there is one, else to ``P``; a submodule's implicit
import of its parent package is not an edge.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import archive_colorizer

PACKAGE_DIR = Path(archive_colorizer.__file__).parent
PACKAGE = "archive_colorizer"


def _module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _under_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    modules = _module_names()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if _under_type_checking(node, parents):
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                    )
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_graph_sees_the_imports_it_must():
    graph = import_graph()
    assert "archive_colorizer.s3" in graph["archive_colorizer.storage"]  # a lazy import, inside open_url
    assert "archive_colorizer.figures" in graph["archive_colorizer.evaluate.report"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_circle_in_the_package():
    assert find_cycle(import_graph()) is None


def test_every_job_folder_holds_its_config_and_its_run():
    from archive_colorizer import cli

    for command in cli.COMMANDS:
        folder = PACKAGE_DIR / command.name
        assert (folder / "config.py").is_file() and (folder / "job.py").is_file(), command.name
        config_cls, run = command.load()
        assert config_cls.__module__ == f"archive_colorizer.{command.name}.config"
        assert run.__module__ == f"archive_colorizer.{command.name}.job"
        assert importlib.import_module(f"archive_colorizer.{command.name}").run is run


def test_the_command_line_imports_neither_ray_nor_torch_until_a_job_runs():
    code = (
        "import sys\nfrom archive_colorizer import cli\ncli.build_parser()\n"
        "print(sorted(m for m in ('ray', 'torch', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        ("archive_colorizer.config", "ColorizeConfig", "archive_colorizer.colorize.config"),
        ("archive_colorizer.config", "PlanConfig", "archive_colorizer.plan.config"),
        ("archive_colorizer.config", "DEMO_TRAIN_SETTINGS", "archive_colorizer.demo.config"),
        ("archive_colorizer.train.export", "export_checkpoint", "archive_colorizer.export.job"),
        ("archive_colorizer.imageio", "GRAY_CHROMA_THRESHOLD", "archive_colorizer.images"),
        ("archive_colorizer.storage", "iter_files", "archive_colorizer.folders"),
        ("archive_colorizer.signing", "make_test_credentials", "archive_colorizer.credentials"),
    ],
)
def test_old_import_paths_work_for_one_release_with_a_deprecation_warning(old, name, new):
    if old.endswith(".export") or old.endswith(".imageio"):  # a shim module warns when first imported, the others
        # (a module __getattr__) at every access
        sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)
