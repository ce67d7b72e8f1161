"""The benchmarks page's performance table is exactly what benchmarks/table.py renders from benchmarks/results/*.json,
so no number in it can drift from the benchmark output it came from."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("perf_table", ROOT / "benchmarks" / "table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("document", ["docs/benchmarks.md"])
def test_the_performance_table_is_the_render_of_the_results(table, document):
    docs = table.load()
    assert docs, "no benchmarks/results/*.json"
    rendered = table.render(docs)
    assert table.section((ROOT / document).read_text()) == rendered, (
        f"{document}'s performance table differs from its results: "
        "python benchmarks/table.py --write docs/benchmarks.md"
    )


def test_every_results_file_renders_and_names_its_machine(table):
    files = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    assert {f.stem for f in files} <= set(table.RENDERERS), "a results file without a renderer"
    for f in files:
        doc = json.loads(f.read_text())
        assert doc["benchmark"] == f.stem and doc["command"].startswith(f"python benchmarks/{f.stem}.py")
        assert doc["machine"]["cpu"] and doc["machine"]["cores"]
        assert table.RENDERERS[f.stem](doc["results"]), f"{f.name} renders no row"


def test_a_changed_number_is_caught(table):
    """A number edited in the page, or in a results file, no longer matches."""
    docs = table.load()
    page = table.replace((ROOT / "docs" / "benchmarks.md").read_text(), table.render(docs))
    assert table.section(page) == table.render(docs)
    world = next(d for d in docs if d["benchmark"] == "bench_world")
    rate = world["results"]["scenes_per_second_wall"]
    assert f"{rate:,} scenes/s" in table.render(docs)
    world["results"]["scenes_per_second_wall"] = rate + 1
    assert table.section(page) != table.render(docs)
