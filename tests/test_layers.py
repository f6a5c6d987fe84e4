"""DESIGN.md's import direction: the domain never imports the transports.

Modules under pixelwand/ other than the composition roots (pixelwand/app.py,
pixelwand/cli.py, pixelwand/web/) never import strawberry, starlette, `schema` or
`compat_rest` — at module level or inside a function. Read from the syntax tree, so a
comment or a string naming them does not count, and an import inside a function does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pixelwand"
COMPOSITION_ROOTS = {PACKAGE / "app.py", PACKAGE / "cli.py"}
FORBIDDEN = {"strawberry", "starlette", "schema", "compat_rest"}


def _domain_modules() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if path not in COMPOSITION_ROOTS and (PACKAGE / "web") not in path.parents
    )


def imported_packages(source: str) -> set[str]:
    """The top-level packages an absolute import in `source` names."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", _domain_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_module_does_not_import_the_transports(path: Path) -> None:
    wrong = imported_packages(path.read_text()) & FORBIDDEN
    assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_the_walk_covers_the_domain() -> None:
    modules = {str(p.relative_to(PACKAGE)) for p in _domain_modules()}
    assert {"errors.py", "services/assets.py", "storage/s3.py", "imaging/pipeline.py"} <= modules
    assert not any(m.startswith("web/") for m in modules)
    assert "app.py" not in modules and "cli.py" not in modules


def test_imports_inside_functions_count_and_comments_do_not() -> None:
    source = (
        "# import strawberry\n"
        "import os.path\n"
        "from pixelwand import errors\n"
        "def f():\n"
        "    from starlette.responses import Response\n"
        "    import schema.context as c\n"
        "x = 'import compat_rest'\n"
    )
    assert imported_packages(source) == {"os", "pixelwand", "starlette", "schema"}
