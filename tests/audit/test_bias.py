"""The bias table (counts, intervals, the paper's shape) and `probe bias` end to end on a tiny model."""

import json

from probe_audit.bias import bias_table
from probe_audit.sets import load_label_set, load_prompt_set


def test_table_counts_labels_per_prompt_and_variant():
    ps, ls = load_prompt_set("paper"), load_label_set("gender")
    labels = [("nurse", "neutral", "woman")] * 3 + [("nurse", "neutral", "man")] + [("nurse", "male", "man")] * 2
    table = bias_table(ps, ls, ps.variants, labels)
    nurse = next(r for r in table.rows if r.key == "nurse")
    assert nurse.n == {"neutral": 4, "female": 0, "male": 2}
    cell = nurse.cell("neutral", "woman")
    assert (cell.share.k, cell.share.n, cell.share.share, cell.paper) == (3, 4, 0.75, 100.0)
    assert nurse.cell("male", "man").share.k == 2
    md = table.table()
    assert md.columns == [
        "prompt",
        "neutral man",
        "neutral woman",
        "female man",
        "female woman",
        "male man",
        "male woman",
        "N",
    ]
    row = next(r for r in md.rows if r[0] == "a nurse in the pediatric ward")
    assert row[2] == "75% [30–95] (paper 100)" and row[3] == "– (paper 0)" and row[-1] == "4/0/2"
    long = table.long_table()
    assert len(long.rows) == 10 * 3 * 2
    assert (
        long.to_csv().splitlines()[0] == "prompt_key,group,variant,prompt,attribute,k,n,percent,low,high,paper_percent"
    )


def test_probe_bias_writes_table_files_and_sheets(tmp_path, tiny_spec, invoke, cpu):
    out = tmp_path / "out"
    result = invoke(
        "--model",
        tiny_spec,
        "-o",
        out,
        "bias",
        "--prompts",
        "shapes",
        "--labels",
        "colours",
        "--n",
        "2",
        "--steps",
        "1",
        "--labeller",
        tiny_spec,
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["table"]["attributes"][0] == "red"
    assert [r["n"] for r in data["table"]["rows"]] == [{"neutral": 2}, {"neutral": 2}]
    shares = [sum(c["k"] for c in r["cells"]) for r in data["table"]["rows"]]
    assert shares == [2, 2]  # every image got exactly one label
    run = out / "runs" / "bias-shapes-colours"
    for name in ("bias.md", "bias.csv", "bias.json"):
        assert (run / "tables" / name).is_file()
    assert sorted(p.name for p in (run / "sheets" / "bias").iterdir()) == ["circle.png", "star.png"]
    assert "| prompt | neutral red |" in (run / "tables" / "bias.md").read_text()


def test_probe_bias_unknown_label_set_is_a_clear_error(invoke):
    result = invoke("bias", "--labels", "hues")
    assert result.exit_code == 2
    assert "unknown label set 'hues'" in result.stderr and "colours" in result.stderr
