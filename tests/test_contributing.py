"""CONTRIBUTING.md's module map and its list of the modules that import Ray match the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import archive_colorizer

PACKAGE_DIR = Path(archive_colorizer.__file__).parent
REPO = PACKAGE_DIR.parent
TEXT = (REPO / "CONTRIBUTING.md").read_text()
LAYOUT = TEXT[TEXT.index("## Layout") : TEXT.index("## Checks and tests")]


def _named_paths() -> set[str]:
    """Every path in the first column of the layout table; a bare name belongs to the folder of the row's first path."""
    named = set()
    for line in LAYOUT.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split(" | ")[0]
        paths = re.findall(r"`([^`]+)`", first)
        folder = str(Path(paths[0]).parent) if "/" in paths[0] else ""
        for path in paths:
            named.add(path if "/" in path or not folder else f"{folder}/{path}")
    return named


def test_every_path_the_map_names_exists():
    missing = [path for path in sorted(_named_paths()) if not (REPO / path).exists()]
    assert missing == []


def test_every_module_and_package_of_the_package_is_in_the_map():
    named = _named_paths()
    parts = [p for p in PACKAGE_DIR.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()]
    unnamed = [
        p.name for p in sorted(parts) if f"archive_colorizer/{p.name}" + ("/" if p.is_dir() else "") not in named
    ]
    assert unnamed == []  # a new module or package needs its row in CONTRIBUTING.md's layout table


def _imports_ray(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        if any(name == "ray" or name.startswith("ray.") for name in names):
            return True
    return False


def test_the_modules_said_to_import_ray_are_those_that_do():
    block = re.search(r"<!-- ray-modules -->(.*?)<!-- /ray-modules -->", TEXT, re.S)
    assert block is not None
    said = set(re.findall(r"`([^`]+)`", block.group(1)))
    actual = {str(p.relative_to(PACKAGE_DIR)) for p in PACKAGE_DIR.rglob("*.py") if _imports_ray(p)}
    assert said == actual


def test_no_module_is_over_450_lines():
    long = {
        str(p.relative_to(PACKAGE_DIR)): n
        for p in PACKAGE_DIR.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 450
    }
    assert long == {}  # split it: a module does one thing
