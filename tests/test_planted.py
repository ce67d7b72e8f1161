"""`make plant`'s bug patches stay plantable: each one applies to today's code exactly once and names
tests that exist, so a refactoring that moves the code under a patch is noticed here, not in a run."""

from __future__ import annotations

import pytest

from tools.plant import (
    AREAS,
    ROOT,
    Edit,
    Patch,
    PatchError,
    apply,
    check_tests_exist,
    read_patch,
    read_patches,
    restore,
)

PATCHES = read_patches()


def test_there_are_at_least_twenty_patches_across_the_areas():
    assert len(PATCHES) >= 20
    assert {p.area for p in PATCHES} >= set(AREAS)


@pytest.mark.parametrize("patch", PATCHES, ids=[p.name for p in PATCHES])
def test_each_patch_applies_exactly_once_and_names_existing_tests(patch: Patch):
    check_tests_exist(patch)
    for edit in patch.edits:
        text = (ROOT / edit.file).read_text(encoding="utf-8")
        assert text.count(edit.search) == 1, f"{patch.name}: the search text is not found once in {edit.file}"
        assert edit.search != edit.replace


def test_planting_and_restoring_leave_the_file_as_it_was(tmp_path):
    (tmp_path / "m.py").write_text("x = a or b\ny = 1\n")
    patch = Patch("p", "bug", "breaks", "cli", [], [Edit("m.py", "a or b", "b or a")])
    originals = apply(patch, tmp_path)
    assert (tmp_path / "m.py").read_text() == "x = b or a\ny = 1\n"
    restore(originals)
    assert (tmp_path / "m.py").read_text() == "x = a or b\ny = 1\n"
    (tmp_path / "m.py").write_text("x = a or b\nx = a or b\n")
    with pytest.raises(PatchError, match="occurs 2 times"):
        apply(patch, tmp_path)


def test_a_malformed_patch_file_is_refused_with_its_name(tmp_path):
    (tmp_path / "bad.yaml").write_text("bug: x\narea: nowhere\n")
    with pytest.raises(PatchError, match=r"bad\.yaml: missing"):
        read_patch(tmp_path / "bad.yaml")
    (tmp_path / "bad.yaml").write_text(
        "bug: x\nbreaks: y\narea: nowhere\ntests: [a]\nedits: [{file: f, search: s, replace: r}]\n"
    )
    with pytest.raises(PatchError, match="area 'nowhere'"):
        read_patch(tmp_path / "bad.yaml")
