"""Text snapshots: the text encoder saved so text-only commands start without open_clip. They must
give the session's exact embeddings, be refused whenever they might not, and never break a command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from probe.encoding import snapshot as text_snapshot
from probe.encoding.snapshot import open_text_snapshot, save_text_snapshot
from probe.files.cache import cache_dir
from probe.session import Session

TEXTS = ["a red star", "blue", "a green circle at the top left, small", "Hugh Jackman"]


def test_snapshot_encodes_exactly_like_the_session(builtin_session):
    assert save_text_snapshot(builtin_session) is not None
    snapshot = open_text_snapshot("shapes-tiny", device="cpu")
    assert snapshot is not None
    assert snapshot.fingerprint == builtin_session.fingerprint
    assert snapshot.describe() == builtin_session.describe()
    assert torch.equal(snapshot.encode_text(TEXTS), builtin_session.encode_text(TEXTS))
    assert torch.equal(snapshot.encode_text(TEXTS, batch_size=1), builtin_session.encode_text(TEXTS, batch_size=1))
    assert torch.equal(snapshot.tokenize(TEXTS), builtin_session.tokenize(TEXTS))


def test_snapshot_refuses_over_long_prompts_like_the_session(builtin_session):
    save_text_snapshot(builtin_session)
    snapshot = open_text_snapshot("shapes-tiny", device="cpu")
    long = " ".join(["star"] * 40)
    with pytest.raises(Exception, match="longer than the model's 14-token context"):
        snapshot.encode_text([long])
    with pytest.warns(UserWarning, match="truncated"):
        cut = snapshot.encode_text([long], truncate=True)
    with pytest.warns(UserWarning):
        assert torch.equal(cut, builtin_session.encode_text([long], truncate=True))


def test_no_snapshot_where_it_might_not_apply(builtin_session, tiny_spec):
    save_text_snapshot(builtin_session)
    assert open_text_snapshot("shapes-tiny", device="cpu") is not None
    assert open_text_snapshot("shapes-tiny", device="cpu", precision="bf16") is None
    assert open_text_snapshot("shapes-tiny", device="cuda") is None
    assert open_text_snapshot(tiny_spec, device="cpu") is None  # a model that never saved one


def test_other_weights_do_not_find_a_snapshot(tiny_spec, tmp_path):
    from tests.conftest import write_tiny_model

    assert save_text_snapshot(Session.open(tiny_spec, device="cpu")) is not None  # local-dir models work too
    assert open_text_snapshot(tiny_spec, device="cpu") is not None
    other = f"local-dir:{write_tiny_model(tmp_path, seed=5)}"
    assert open_text_snapshot(other, device="cpu") is None


def test_damaged_or_foreign_snapshots_are_ignored(builtin_session):
    pt = save_text_snapshot(builtin_session)
    meta_path = pt.with_suffix(".json")
    pt.write_bytes(pt.read_bytes()[:1000])  # truncated
    assert open_text_snapshot("shapes-tiny", device="cpu") is None
    assert not meta_path.exists()  # its marker dropped: the next full run writes the pair again
    pt = save_text_snapshot(builtin_session)
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps(dict(meta, torch="1.0.0")))
    assert open_text_snapshot("shapes-tiny", device="cpu") is None


def test_unknown_tokenizers_get_no_snapshot(builtin_session, monkeypatch):
    monkeypatch.setattr(builtin_session, "tokenizer", lambda texts: builtin_session.tokenize(texts))
    assert save_text_snapshot(builtin_session) is None


def test_a_snapshot_that_disagrees_is_not_saved(builtin_session, monkeypatch):
    monkeypatch.setattr(
        text_snapshot.TextSnapshot, "encode_text", lambda self, texts, **kw: torch.zeros(len(texts), 128)
    )
    assert save_text_snapshot(builtin_session) is None
    assert open_text_snapshot("shapes-tiny", device="cpu") is None


@pytest.mark.slow
def test_neighbours_uses_the_snapshot_with_the_same_answer(invoke, monkeypatch):
    first = invoke("neighbours", "a red star", "a blue circle", "--k", "5", "--json")
    assert first.exit_code == 0, first.output
    assert open_text_snapshot("shapes-tiny", device="cpu") is not None  # written by the first run

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded although a text snapshot exists")

    monkeypatch.setattr(Session, "open", no_model)
    second = invoke("neighbours", "a red star", "a blue circle", "--k", "5", "--json")
    assert second.exit_code == 0, second.output
    before, after = json.loads(first.stdout), json.loads(second.stdout)
    assert after["results"] == before["results"] and after["model"] == before["model"]
    assert [v["status"] for v in after["vocabs"]] == ["cached"]


@pytest.mark.slow
def test_image_queries_still_load_the_model(invoke, tmp_path):
    from probe.files.images import write_png

    assert invoke("neighbours", "a red star", "--json").exit_code == 0
    path = tmp_path / "x.png"
    write_png(path, torch.rand(3, 64, 64))
    result = invoke("neighbours", "--image", str(path), "--k", "3", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["query"] == str(path)


@pytest.mark.slow
def test_cold_text_query_does_not_import_open_clip(invoke):
    assert invoke("neighbours", "a red star", "--json").exit_code == 0  # writes the snapshot and index
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('IMPORTED', 'open_clip' in sys.modules, 'torchvision' in sys.modules, "
        "file=sys.stderr))\n"
        "from probe.cli.app import main\n"
        "sys.argv = ['probe', 'neighbours', 'a red star', '--k', '3']\n"
        "main()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ), timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "star" in out.stdout
    assert "IMPORTED False False" in out.stderr


def test_empty_input_and_the_switch(builtin_session, monkeypatch):
    save_text_snapshot(builtin_session)
    assert open_text_snapshot("shapes-tiny", device="cpu").encode_text([]).shape == (0, 128)
    monkeypatch.setenv("PROBE_TEXT_SNAPSHOTS", "0")
    assert open_text_snapshot("shapes-tiny", device="cpu") is None
    assert save_text_snapshot(builtin_session) is None


def test_only_models_found_by_their_files_get_snapshots():
    assert save_text_snapshot(Session.open("shapes-tiny@random", device="cpu")) is None
    assert not any(cache_dir("text-snapshots").glob("*.pt"))


def test_a_failed_attempt_is_remembered_not_retried(builtin_session, monkeypatch):
    def cannot_compile(module):
        raise Exception("this tower cannot be scripted")  # TorchScript's own errors are not RuntimeErrors either

    monkeypatch.setattr(torch.jit, "script", cannot_compile)
    assert save_text_snapshot(builtin_session) is None
    [meta] = cache_dir("text-snapshots").glob("*.json")
    assert (
        json.loads(meta.read_text())["usable"] is False
        and "cannot be scripted" in json.loads(meta.read_text())["reason"]
    )

    def must_not_run(module):
        raise AssertionError("scripted again")

    monkeypatch.setattr(torch.jit, "script", must_not_run)
    assert save_text_snapshot(builtin_session) is None
    assert open_text_snapshot("shapes-tiny", device="cpu") is None


def test_neighbours_answers_even_when_no_snapshot_can_be_made(invoke, monkeypatch):
    def cannot_compile(module):
        raise Exception("this tower cannot be scripted")  # TorchScript's own errors are not RuntimeErrors either

    monkeypatch.setattr(torch.jit, "script", cannot_compile)
    result = invoke("neighbours", "a red star", "--k", "3", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["results"][0]["neighbours"]) == 3


def test_pickle_only_local_dir_with_allow_pickle(invoke, tiny_model_dir, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text((tiny_model_dir / "open_clip_config.json").read_text())
    torch.save(load_file(str(tiny_model_dir / "open_clip_model.safetensors")), folder / "open_clip_pytorch_model.bin")
    vocab = tmp_path / "v.txt"
    vocab.write_text("tree\nsunset\nhouse\n", encoding="utf-8")
    args = [
        "--allow-pickle",
        "--model",
        f"local-dir:{folder}",
        "neighbours",
        "a photo",
        "--vocab",
        str(vocab),
        "--json",
    ]
    first = invoke(*args)
    assert first.exit_code == 0, first.output

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded although a text snapshot exists")

    monkeypatch.setattr(Session, "open", no_model)
    second = invoke(*args)  # from the snapshot the first run wrote
    assert second.exit_code == 0, second.output
    assert json.loads(first.stdout)["results"] == json.loads(second.stdout)["results"]
    assert open_text_snapshot(f"local-dir:{folder}", device="cpu", allow_pickle=True) is not None
    assert open_text_snapshot(f"local-dir:{folder}", device="cpu") is None  # refused weights: no snapshot either


def test_local_dir_fingerprint_covers_every_weights_file(tmp_path):
    import shutil

    from probe.models.fingerprints import fingerprint_without_loading
    from probe.models.specs import parse_model_spec
    from tests.conftest import write_tiny_model

    folder = write_tiny_model(tmp_path, seed=1)
    shutil.copy(folder / "open_clip_model.safetensors", folder / "a-backup.safetensors")  # sorts first
    spec = parse_model_spec(f"local-dir:{folder}")
    before = fingerprint_without_loading(spec)
    write_tiny_model(folder, seed=2)  # open_clip loads open_clip_model.safetensors: new weights
    assert fingerprint_without_loading(spec) != before
    assert Session.open(f"local-dir:{folder}", device="cpu").fingerprint == fingerprint_without_loading(spec)


def test_auto_device_with_a_gpu_loads_the_model(builtin_session, monkeypatch):
    save_text_snapshot(builtin_session)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert open_text_snapshot("shapes-tiny", device="auto") is None
    assert open_text_snapshot("shapes-tiny", device="cpu") is not None


def test_a_damaged_module_is_written_again_by_the_next_full_run(builtin_session):
    pt = save_text_snapshot(builtin_session)
    pt.write_bytes(b"x")
    assert open_text_snapshot("shapes-tiny", device="cpu") is None
    assert save_text_snapshot(builtin_session) == pt
    assert open_text_snapshot("shapes-tiny", device="cpu") is not None


def test_a_cache_in_the_way_never_breaks_saving(builtin_session, tmp_path, monkeypatch):
    monkeypatch.setenv("PROBE_CACHE_DIR", str(tmp_path))
    (tmp_path / "text-snapshots").write_text("not a folder")
    assert save_text_snapshot(builtin_session) is None


def test_the_snapshot_reports_its_own_device(builtin_session):
    save_text_snapshot(Session.open("shapes-tiny", device="cpu:0"))
    assert open_text_snapshot("shapes-tiny", device="cpu").describe()["device"] == "cpu"
