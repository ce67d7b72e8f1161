"""examples/paper-walk.ipynb runs top to bottom on the built-in model, and is committed without outputs."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "paper-walk.ipynb"


def leftovers(notebook: dict) -> list[str]:
    """Cells that carry outputs or execution counts (which belong in a run, not in git)."""
    return [
        f"cell {i}"
        for i, cell in enumerate(notebook["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]


def test_committed_notebook_has_no_outputs():
    notebook = json.loads(NOTEBOOK.read_text())
    assert leftovers(notebook) == [], "strip the outputs: jupyter nbconvert --clear-output --inplace " + str(NOTEBOOK)
    ran = {"cell_type": "code", "execution_count": 3, "outputs": [{"output_type": "stream", "text": "x"}]}
    assert leftovers({"cells": [{"cell_type": "markdown"}, ran]}) == ["cell 1"]


def text_of(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts += [str(v) for v in out.get("data", {}).values()]
    return "".join(parts)


@pytest.mark.slow
def test_notebook_runs_and_shows_the_planted_bias(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient", reason="nbclient not installed (pip install -e '.[dev]')")
    nbformat = pytest.importorskip("nbformat", reason="nbformat not installed (pip install -e '.[dev]')")
    pytest.importorskip("ipykernel", reason="ipykernel not installed (pip install -e '.[dev]')")
    kernels = tmp_path / "jupyter" / "kernels" / "probe-test"  # a kernel on this interpreter, whatever is installed
    kernels.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "language": "python"}
    (kernels / "kernel.json").write_text(json.dumps({**spec, "display_name": "this interpreter"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="probe-test", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, when a cell fails

    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    warned = [i for i, c in enumerate(code) for o in c.outputs if o.get("name") == "stderr" and "Warning" in o["text"]]
    assert warned == [], f"code cells {warned} print warnings"
    grid = text_of(code[1])
    assert grid.count("<img") == 8 and "a red star · seed 0" in grid  # 4 prompts × 2 seeds, shown as images
    shares = dict(re.findall(r"'(a \w+)': (\d+)%", text_of(code[5])))
    assert set(shares) == {"a star", "a circle"}
    assert int(shares["a star"]) > int(shares["a circle"]), f"the planted bias does not show: {shares}"
