"""`probe neighbours -m A -m B`: one table with a column block per model, --json and --csv keyed by model,
one model loaded at a time."""

import csv
import json

import pytest

WIDE = "400"  # a console wide enough that no table of two models wraps or splits


@pytest.mark.slow
def test_json_is_keyed_by_model_and_each_block_equals_that_models_own_answer(
    invoke, other_builtin_spec, tmp_path, monkeypatch
):
    from probe.cli import state as cli_state

    held: list[int] = []  # models held (sessions and text snapshots) when each model loads
    real = cli_state.State.text_session_for

    def counting(self, model):
        if model not in self._sessions and model not in self._snapshots:
            held.append(len(self._sessions) + sum(1 for s in self._snapshots.values() if s is not None))
        return real(self, model)

    monkeypatch.setattr(cli_state.State, "text_session_for", counting)
    specs = ["shapes-tiny", other_builtin_spec]
    args = ["neighbours", "star", "a red circle", "-k", "3", "--vocab", "world"]
    both = invoke(*args, "-m", specs[0], "-m", specs[1], "--json", "--csv", tmp_path / "n.csv")
    assert both.exit_code == 0, both.stderr
    assert held == [0, 0]  # the first model was released before the second loaded
    payload = json.loads(both.stdout)
    assert list(payload) == specs
    assert [payload[s]["model"]["model"] for s in specs] == specs
    for spec in specs:
        alone = json.loads(invoke(*args, "-m", spec, "--json").stdout)
        assert payload[spec]["results"] == alone["results"]
    cosines = [[n["score"] for n in payload[s]["results"][0]["neighbours"]] for s in specs]
    assert cosines[0] != cosines[1]  # two real models, not one under two names
    rows = list(csv.reader((tmp_path / "n.csv").open()))
    assert rows[0] == ["model", "group", "query", "rank", "word", "cosine", "vocab", "flagged"]
    assert [r[0] for r in rows[1:]] == [specs[0]] * 6 + [specs[1]] * 6


@pytest.mark.slow
def test_table_has_one_column_block_per_model(invoke, other_builtin_spec, monkeypatch):
    monkeypatch.setenv("COLUMNS", WIDE)
    specs = ["shapes-tiny", other_builtin_spec]
    args = ["neighbours", "star", "-k", "2", "--vocab", "world", "-m", specs[0], "-m", specs[1]]
    payload = json.loads(invoke(*args, "--json").stdout)
    table = invoke(*args).stdout
    assert table.count("star — 2 models") == 1
    lines = table.splitlines()
    head = lines[next(i for i, line in enumerate(lines) if line.startswith("┏")) + 1 :]
    head = head[: next(i for i, line in enumerate(head) if line.startswith("┡"))]
    cells = [[c.strip() for c in line.split("┃")[1:-1]] for line in head]
    columns = ["".join(parts) for parts in zip(*cells, strict=True)]
    assert columns == ["#", specs[0], "cosine", specs[1], "cosine"]  # a long spec wraps inside its header
    first = next(line for line in table.splitlines() if line.startswith("│ 1 "))
    cells = [c.strip() for c in first.split("│")[1:-1]]
    expected = [f"{payload[s]['results'][0]['neighbours'][0]['score']:.3f}" for s in specs]
    assert cells[2] == expected[0] and cells[4] == expected[1]
    assert cells[1] == payload[specs[0]]["results"][0]["neighbours"][0]["word"]
    assert cells[3] == payload[specs[1]]["results"][0]["neighbours"][0]["word"]


@pytest.mark.slow
def test_flag_rates_get_a_column_per_model(invoke, other_builtin_spec, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", WIDE)
    vocab = tmp_path / "v.txt"
    vocab.write_text("naked\nstar\ncircle\nred\n", encoding="utf-8")
    specs = ["shapes-tiny", other_builtin_spec]
    args = ["neighbours", "star", "-k", "2", "--vocab", vocab, "--flag-rate", "-m", specs[0], "-m", specs[1]]
    payload = json.loads(invoke(*args, "--json").stdout)
    table = invoke(*args).stdout
    row = next(line for line in table.splitlines() if line.startswith("│ arguments "))
    shares = [c.strip() for c in row.split("│")[3:5]]
    assert shares == [f"{payload[s]['flag_rate']['arguments']['overall']:.0%}" for s in specs]
    per_group = [line for line in table.splitlines() if "/" in line and "arguments" in line and "%" in line]
    first, second = (line.split("│")[1].strip() for line in per_group[-2:])
    assert first == specs[0] and second != specs[0] and specs[1].startswith(second)  # one row per model (wrapped)
