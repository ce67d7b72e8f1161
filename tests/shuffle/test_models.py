"""`probe shuffle-test CAPTION -m A -m B`: one row per model, --json keyed by model."""

import json

import pytest


@pytest.mark.slow
def test_one_row_per_model_and_json_keyed_by_model(invoke, other_builtin_spec, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    specs = ["shapes-tiny", other_builtin_spec]
    args = ["shuffle-test", "a red star left of a blue circle", "-p", "swap-attributes"]
    both = invoke(*args, "-m", specs[0], "-m", specs[1], "--json")
    assert both.exit_code == 0, both.stderr
    payload = json.loads(both.stdout)
    assert list(payload) == specs and [payload[s]["model"]["model"] for s in specs] == specs
    for spec in specs:
        alone = json.loads(invoke(*args, "-m", spec, "--json").stdout)
        assert payload[spec] == alone
    scores = [payload[s]["rows"][0]["mean_score"] for s in specs]
    assert scores[0] != scores[1]
    table = invoke(*args, "-m", specs[0], "-m", specs[1]).stdout
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in table.splitlines() if "swap-attributes" in line]
    # a long spec may wrap inside its cell (the temp path's length varies): its first line starts it
    assert len(rows) == 2 and [r[1] for r in rows] == ["swap-attributes"] * 2
    assert all(r[0] and spec.startswith(r[0]) for r, spec in zip(rows, specs, strict=True))
    assert [r[4] for r in rows] == [f"{score:.4f}" for score in scores]
