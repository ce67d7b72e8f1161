import json

import pytest
import torch

from probe.files.images import write_png


@pytest.fixture
def prompts(tmp_path):
    celebs, neutral = tmp_path / "celebs.txt", tmp_path / "neutral.txt"
    celebs.write_text("a naked person\na nude model\n", encoding="utf-8")
    neutral.write_text("a tree\n", encoding="utf-8")
    return celebs, neutral


def test_text_query_table_marks_flagged_words(invoke, tiny_spec, tmp_path):
    vocab = tmp_path / "v.txt"
    vocab.write_text("naked\nsunset\ntree\n", encoding="utf-8")
    result = invoke("--model", tiny_spec, "neighbours", "a photo", "--vocab", str(vocab), "--k", "3")
    assert result.exit_code == 0, result.output
    assert "flagged" in result.stdout and "nudity" in result.stdout and "sunset" in result.stdout
    assert "built the flat index" in result.stderr
    again = invoke("--model", tiny_spec, "neighbours", "a photo", "--vocab", str(vocab), "--k", "2", "--json")
    payload = json.loads(again.stdout)
    assert payload["vocabs"][0]["status"] == "cached" and payload["notes"] == []
    [res] = payload["results"]
    assert res["query"] == "a photo" and len(res["neighbours"]) == 2
    assert (
        invoke("--model", tiny_spec, "neighbours", "a photo", "--vocab", str(vocab), "--rebuild", "--json").exit_code
        == 0
    )


def test_csv_holds_every_neighbour_as_the_json_does(invoke, tiny_spec, tmp_path):
    import csv

    vocab = tmp_path / "v.txt"
    vocab.write_text("naked\nsunset\ntree\n", encoding="utf-8")
    args = ["--model", tiny_spec, "neighbours", "a photo", "a red star", "--vocab", vocab, "--k", "2"]
    result = invoke(*args, "--csv", tmp_path / "n.csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "n.csv").open(encoding="utf-8")))
    payload = json.loads(invoke(*args, "--json").stdout)
    expected = [
        (r["query"], str(rank), n["word"], n["category"] or "")
        for r in payload["results"]
        for rank, n in enumerate(r["neighbours"], 1)
    ]
    assert [(r["query"], r["rank"], r["word"], r["flagged"]) for r in rows] == expected
    assert [float(r["cosine"]) for r in rows] == pytest.approx(
        [n["score"] for r in payload["results"] for n in r["neighbours"]]
    )


def test_flag_rate_compares_groups_of_prompt_files(invoke, tiny_spec, prompts, tmp_path):
    celebs, neutral = prompts
    vocab = tmp_path / "v.txt"
    vocab.write_text("naked\nnude\nsunset\ntree\nhouse\n", encoding="utf-8")
    result = invoke(
        "--model",
        tiny_spec,
        "neighbours",
        "--file",
        str(celebs),
        "--file",
        str(neutral),
        "--vocab",
        str(vocab),
        "--k",
        "5",
        "--flag-rate",
        "--json",
    )
    assert result.exit_code == 0, result.output
    rates = json.loads(result.stdout)["flag_rate"]
    assert set(rates) == {"celebs", "neutral", "all"}
    assert rates["celebs"]["per_query"] == {"a naked person": 0.4, "a nude model": 0.4}  # 2 of the 5 words are flagged
    assert rates["all"] == {**rates["all"], "flagged": 6, "total": 15}
    table = invoke(
        "--model", tiny_spec, "neighbours", "--file", str(celebs), "--vocab", str(vocab), "--k", "5", "--flag-rate"
    )
    assert "Per group" in table.stdout and "40%" in table.stdout


def test_image_query_and_mismatched_sidecar(invoke, tiny_spec, tmp_path):
    vocab = tmp_path / "v.txt"
    vocab.write_text("red\nblue\n", encoding="utf-8")
    img = tmp_path / "x.png"
    write_png(img, torch.rand(3, 16, 16))
    ok = invoke("--model", tiny_spec, "neighbours", "--image", str(img), "--vocab", str(vocab), "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["results"][0]["group"] == "images"
    (tmp_path / "x.json").write_text(json.dumps({"model": "ViT-B-16@openai", "fingerprint": "ViT-B-16-abc"}))
    bad = invoke("--model", tiny_spec, "neighbours", "--image", str(img), "--vocab", str(vocab))
    assert bad.exit_code == 1 and "made with model ViT-B-16@openai" in bad.stderr and "Traceback" not in bad.output


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["neighbours"], 2, "nothing to look up"),
        (["neighbours", "x", "--vocab", "no-such-list"], 2, "unknown vocabulary 'no-such-list'"),
        (["neighbours", "x", "--index", "ivf"], 2, "unknown index kind"),
        (["neighbours", "x", "--k", "0"], 2, "--k"),
    ],
)
def test_usage_errors(invoke, tiny_spec, args, code, message):
    result = invoke("--model", tiny_spec, *args)
    assert result.exit_code == code and message in result.output


def test_bad_vocab_and_prompt_files_give_file_and_line(invoke, tiny_spec, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n\xff\xfe\n")
    result = invoke("--model", tiny_spec, "neighbours", "x", "--vocab", str(bad))
    assert result.exit_code == 1 and f"{bad}:2: not valid UTF-8" in result.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n", encoding="utf-8")
    result = invoke("--model", tiny_spec, "neighbours", "--file", str(empty))
    assert result.exit_code == 1 and "no prompts" in result.stderr


def test_vocabs_command_lists_builtin_lists(invoke):
    result = invoke("vocabs", "--json")
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["world"]["words"] > 10 and rows["flagged"]["flagged"] == rows["flagged"]["words"]


@pytest.mark.parametrize(("command", "what"), [("neighbours", "text"), ("shuffle-test", "prompt")])
def test_an_image_path_given_as_text_suggests_the_image_option(invoke, tmp_path, command, what):
    """`probe neighbours photo.png` would embed the words 'photo png': refused before any model loads,
    with the option that takes images; a text that merely mentions a file name with spaces is a text."""
    photo = tmp_path / "photo.png"
    write_png(photo, torch.zeros(3, 4, 4))
    for given in (str(photo), "missing/shot.JPG"):
        result = invoke(command, given)
        assert result.exit_code == 2
        assert result.stderr.strip() == (
            f"Error: {what} {given!r} is an image file's name, not a {what} (did you mean --image {given}?)"
        )
    assert invoke("neighbours", "my holiday.jpg", "--k", "1").exit_code == 0


def test_an_over_long_prompt_fails_before_any_index_is_built(invoke):
    """The length error comes first: on a large vocabulary the index build it would wait for takes minutes."""
    from probe.files.cache import cache_root

    result = invoke("neighbours", " ".join(["star"] * 90), "--vocab", "world")
    assert result.exit_code == 2 and "longer than the model's" in result.stderr
    assert not list(cache_root().rglob("*.faiss"))
