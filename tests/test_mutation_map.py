"""`make mutate`'s module -> test map is read from the tests' imports, so it cannot go stale."""

from __future__ import annotations

import pytest

from tools.mutate import MODULES, ROOT, subset_for


def _write(root, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_every_import_form_puts_a_test_file_in_the_subset_and_nothing_else_does(tmp_path):
    _write(
        tmp_path,
        {
            "tests/a/test_from.py": "from probe_x.mod import f\n",
            "tests/a/test_member.py": "from probe_x import mod\n",
            "tests/b/test_inside.py": "def test():\n    import probe_x.mod\n",
            "tests/b/test_sibling.py": "from probe_x.other import mod\nimport probe_x\n",  # another module's `mod`
            "tests/b/helpers.py": "import probe_x.mod\n",  # not a test file
        },
    )
    assert subset_for("plugins/probe_x/mod.py", root=tmp_path) == [
        "tests/a/test_from.py",
        "tests/a/test_member.py",
        "tests/b/test_inside.py",
        "-m",
        "not slow",
    ]
    _write(tmp_path, {"tests/test_core.py": "from probe.encoding.text import encode\n"})
    assert subset_for("probe/encoding/text.py", root=tmp_path)[:-2] == ["tests/test_core.py"]


def test_a_module_no_test_imports_is_refused(tmp_path):
    _write(tmp_path, {"tests/test_a.py": "import probe_x.other\n"})
    with pytest.raises(SystemExit, match=r"no test file imports probe_x\.mod"):
        subset_for("plugins/probe_x/mod.py", root=tmp_path)


@pytest.mark.parametrize("module", MODULES)
def test_each_mutated_module_exists_and_has_tests_in_its_subset(module):
    assert (ROOT / module).is_file()
    files = subset_for(module)[:-2]
    assert files and all((ROOT / f).is_file() for f in files)
