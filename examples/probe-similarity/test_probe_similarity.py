"""The plugin's own tests, written with the guide's recipe: they pass whether or not the package is
also installed (the module given to `run_cli` / `loaded_plugins` stands in for the installed copy)."""

import probe_similarity
import pytest

import probe
from probe.plugin import loaded_plugins, run_cli


def test_the_command_prints_one_row_per_text():
    result = run_cli("--device", "cpu", "similarity", "a red star", "a star", plugins={"similarity": probe_similarity})
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert [r[0] for r in rows] == ["a red star", "a star"]
    assert float(rows[0][1]) == pytest.approx(1.0, abs=1e-3) and float(rows[1][2]) == pytest.approx(1.0, abs=1e-3)


def test_the_python_api_function_is_reachable_as_probe_similarity():
    with loaded_plugins({"similarity": probe_similarity}):
        assert "similarity" in probe.api()
        session = probe.open("shapes-tiny", device="cpu")
        matrix = probe.similarity(session, ["a red star", "a blue circle"])
    assert len(matrix) == 2 and matrix[0][0] == pytest.approx(1.0, abs=1e-3)
    assert matrix[0][1] == pytest.approx(matrix[1][0], abs=1e-6)
