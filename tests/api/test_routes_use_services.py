"""API routes parse, call the service layer and shape: they open no database connection
nor transaction of their own (the import contracts keep storage modules out of them;
this keeps the store's engine out)."""

from __future__ import annotations

import ast
from importlib import resources
from pathlib import Path

ROUTES = Path(str(resources.files("api").joinpath("routes")))
DATABASE_ATTRIBUTES = {"engine", "begin", "connect", "execute"}


def _database_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.name}:{node.lineno} .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in DATABASE_ATTRIBUTES
    ]


def test_no_route_reaches_the_database() -> None:
    modules = sorted(ROUTES.glob("*.py"))
    assert len(modules) >= 8
    assert [use for m in modules for use in _database_uses(m)] == []


def test_the_check_sees_a_route_that_does(tmp_path: Path) -> None:
    route = tmp_path / "bad.py"
    route.write_text("def f(store):\n    with store.engine.begin() as conn:\n        pass\n")
    assert sorted(_database_uses(route)) == ["bad.py:2 .begin", "bad.py:2 .engine"]
