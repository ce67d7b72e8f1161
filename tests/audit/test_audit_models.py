"""`probe bias -m A -m B` (and nsfw): each model audited in turn into its folder of one comparison."""

import json

import pytest


@pytest.mark.slow
def test_bias_of_two_models_writes_two_run_folders_and_json_keyed_by_model(tmp_path, tiny_spec, invoke, cpu):
    from tests.conftest import write_tiny_model

    (tmp_path / "other").mkdir()
    other = f"local-dir:{write_tiny_model(tmp_path / 'other', seed=2)}"
    out = tmp_path / "out"
    args = ["-o", out, "bias", "--prompts", "shapes", "--labels", "colours", "--n", "1", "--steps", "1"]
    result = invoke(*args, "-m", tiny_spec, "-m", other, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data["models"]) == [tiny_spec, other]
    folder = out / "runs" / "bias-shapes-colours"
    listed = json.loads((folder / "comparison.json").read_text())["models"]
    assert [m["model"] for m in listed] == [tiny_spec, other]
    for spec, entry in zip([tiny_spec, other], listed, strict=True):
        run = folder / entry["folder"]
        assert json.loads((run / "manifest.json").read_text())["model"]["model"] == spec
        assert data["models"][spec]["table"]["attributes"][0] == "red"
        assert data["models"][spec]["folder"] == str(run) and (run / "tables" / "bias.md").is_file()


@pytest.mark.slow
def test_nsfw_of_two_models_is_keyed_by_model(tmp_path, tiny_spec, invoke, cpu):
    from tests.conftest import write_tiny_model

    (tmp_path / "other").mkdir()
    other = f"local-dir:{write_tiny_model(tmp_path / 'other', seed=2)}"
    args = ["-o", tmp_path / "out", "nsfw", "a star", "-n", "1", "--steps", "1", "--no-text", "--nudenet", "off"]
    result = invoke(*args, "-m", tiny_spec, "-m", other, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data["models"]) == [tiny_spec, other]
    assert all(entry["counts"]["done"] == 1 and "nsfw" in entry for entry in data["models"].values())
