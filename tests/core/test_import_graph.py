"""Built-in plugins use only the public plugin API: no built-in imports another built-in's modules,
and none imports a core module other than `probe.plugin` (and the shapes world, `probe.world`)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = sorted(p for p in (ROOT / "plugins").iterdir() if p.is_dir() and p.name.startswith("probe_"))
ALLOWED_CORE = ("probe.plugin", "probe.world", "probe.files")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, `from X import Y` giving X (and X.Y for `from probe import Y`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "probe":
                found += [(node.lineno, f"probe.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call):
            func = getattr(node.func, "id", "") or getattr(node.func, "attr", "")
            if func == "__import__":
                found.append((node.lineno, "__import__"))
            elif func in ("import_module", "files") and node.args and isinstance(node.args[0], ast.Constant):
                found.append((node.lineno, str(node.args[0].value)))  # modules and package data by name
    return found


def violations(package: Path) -> list[str]:
    bad = []
    for path in sorted(package.rglob("*.py")):
        for line, module in _imports(path):
            top = module.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{line}: {module}"
            if (
                module == "__import__"
                or (top.startswith("probe_") and top != package.name)
                or (top == "probe" and not module.startswith(ALLOWED_CORE))
            ):
                bad.append(where)
    return bad


def test_built_in_plugins_import_only_the_public_api():
    assert PLUGINS, "no built-in plugins found"
    bad = [v for package in PLUGINS for v in violations(package)]
    assert bad == []


def test_the_check_catches_both_kinds_of_import(tmp_path):
    package = tmp_path / "probe_fake"
    package.mkdir()
    (package / "a.py").write_text(
        "from probe.models.loading import load_model\nimport probe_invert.render\nfrom probe.plugin import hookimpl\n"
        "import probe\nfiles('probe.vocab')\nimport_module('probe_invert.render')\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert violations(package) == [
            "probe_fake/a.py:1: probe.models.loading",
            "probe_fake/a.py:2: probe_invert.render",
            "probe_fake/a.py:4: probe",
            "probe_fake/a.py:5: probe.vocab",
            "probe_fake/a.py:6: probe_invert.render",
        ]
    finally:
        ROOT = saved
