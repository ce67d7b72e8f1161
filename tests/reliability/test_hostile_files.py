"""Files and names an attacker (or an accident) hands to `probe`: pipes and devices where a file is
read, names that are not UTF-8, outputs where a folder or file stands, read-only or full disks, and
plugins that raise or exit. Each is one line saying what to do, at once, with nothing half written."""

from __future__ import annotations

import errno
import json
import os
import sys
import types

import pytest

from tests.reliability.conftest import run_probe


def one_line(stderr: str, *needles: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert "internal error" not in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


def _local_dir_with_weights(folder, make_weights) -> str:
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": {"embed_dim": 8}, "preprocess_cfg": {}}))
    make_weights(folder / "open_clip_model.safetensors")
    return f"local-dir:{folder}"


@pytest.mark.slow
@pytest.mark.parametrize(
    "case", ["config-fifo", "local-dir-fifo", "local-dir-dev-zero", "weights-dev-zero", "prompts-fifo"]
)
def test_pipes_and_devices_are_refused_at_once(case, tmp_path, probe_env):
    """Reading a FIFO waits for a writer forever and /dev/zero never ends: refused before opening."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.safetensors"
    zero.symlink_to("/dev/zero")
    args = {
        "config-fifo": ["-c", fifo, "models"],
        "local-dir-fifo": ["-m", _local_dir_with_weights(tmp_path / "a", os.mkfifo), "neighbours", "a"],
        "local-dir-dev-zero": [
            "-m",
            _local_dir_with_weights(tmp_path / "b", lambda p: p.symlink_to("/dev/zero")),
            "neighbours",
            "a",
        ],
        "weights-dev-zero": ["-m", f"shapes-tiny@{zero}", "neighbours", "a"],
        "prompts-fifo": ["invert", "--prompts", fifo],
    }[case]
    done = run_probe(args, probe_env, tmp_path, timeout=60)
    assert done.returncode in (1, 2)
    kind = "device" if "zero" in case else "named pipe (FIFO)"
    one_line(done.stderr, kind, "not a")


@pytest.mark.parametrize(
    "args",
    [
        ["invert", "a red\udcffstar", "--steps", "1"],
        ["shuffle-test", "a red\udcffstar left of a blue circle"],
        ["score", "x.png", "-p", "a red\udcffstar"],
    ],
    ids=["invert", "shuffle-test", "score"],
)
def test_prompts_that_are_not_utf8_are_refused(invoke, args, tmp_path, monkeypatch):
    """Undecodable bytes on the command line arrive as surrogates: no output can write them."""
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    result = invoke("-o", tmp_path / "out", *args)
    assert result.exit_code == 2
    one_line(result.stderr, "not UTF-8")


@pytest.fixture
def pickle_checkpoint(tmp_path):
    import torch

    torch.save({"w": torch.zeros(3)}, tmp_path / "w.pt")
    return tmp_path / "w.pt"


def _no_partial(folder) -> None:
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.suffix == ".safetensors"], list(
        folder.rglob("*")
    )


def test_convert_onto_a_folder_or_an_undecodable_name(invoke, pickle_checkpoint, tmp_path):
    (tmp_path / "out.safetensors").mkdir()
    onto_folder = invoke(
        "models", "convert", pickle_checkpoint, tmp_path / "out.safetensors", "--allow-pickle", "--force"
    )
    assert onto_folder.exit_code == 2
    one_line(onto_folder.stderr, "is a folder")
    bad_name = invoke("models", "convert", pickle_checkpoint, tmp_path / "b\udcff.safetensors", "--allow-pickle")
    assert bad_name.exit_code == 2
    one_line(bad_name.stderr, "not a UTF-8 file name")


def test_convert_onto_a_full_disk_leaves_nothing(invoke, pickle_checkpoint, tmp_path, monkeypatch):
    import safetensors.torch

    def full(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half")
        raise safetensors.SafetensorError("Error while serializing: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    out = tmp_path / "new"
    result = invoke("models", "convert", pickle_checkpoint, out / "x.safetensors", "--allow-pickle")
    assert result.exit_code == 1
    one_line(result.stderr, "cannot write", os.strerror(errno.ENOSPC))
    _no_partial(out)


def test_convert_into_a_read_only_folder(invoke, pickle_checkpoint, tmp_path, monkeypatch):
    """Read-only is faked (the tests run as root): the check fails before the pickle is read."""
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    result = invoke("models", "convert", pickle_checkpoint, tmp_path / "ro" / "x.safetensors", "--allow-pickle")
    assert result.exit_code == 1
    one_line(result.stderr, str(tmp_path / "ro"), os.strerror(errno.EROFS))
    _no_partial(tmp_path)


def test_merge_into_a_file(invoke, tmp_path):
    (tmp_path / "taken").write_text("mine\n")
    result = invoke("merge", tmp_path / "shard-a", tmp_path / "shard-b", "-o", tmp_path / "taken")
    assert result.exit_code == 2
    one_line(result.stderr, "is a file, not a folder")
    assert (tmp_path / "taken").read_text() == "mine\n"


def test_run_dir_under_a_read_only_parent(invoke, tmp_path, monkeypatch):
    """The run folder is writable but its parent is not, so the run's lock file beside it cannot be
    made (faked: the tests run as root)."""
    from tests.conftest import EXPERIMENT

    (tmp_path / "exp.yaml").write_text(EXPERIMENT)
    (tmp_path / "ro").mkdir()
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if os.path.dirname(str(path)) == str(tmp_path / "ro") and str(path).endswith(".lock"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    result = invoke("--device", "cpu", "run", tmp_path / "exp.yaml", "--run-dir", tmp_path / "ro" / "run")
    assert result.exit_code == 1
    one_line(result.stderr, str(tmp_path / "ro"), os.strerror(errno.EROFS))


def test_a_plugin_calling_sys_exit_at_import_cannot_end_the_process(invoke):
    def exits():
        sys.exit(3)

    listed = invoke("plugins", "--json", extra_plugins={"quitter": exits})
    assert listed.exit_code == 0, listed.stderr
    row = next(p for p in json.loads(listed.stdout)["plugins"] if p["name"] == "quitter")
    assert row["status"] == "failed" and "sys.exit(3)" in row["reason"]
    assert invoke("models", extra_plugins={"quitter": exits}).exit_code == 0


def test_a_plugin_model_loader_that_raises_is_named(invoke):
    from probe.plugin import hookimpl

    module = types.ModuleType("loaderbug")

    def load(target, allow_pickle=False):
        raise ZeroDivisionError("oops")

    @hookimpl
    def register_model_loaders(register):
        register("bug:", load, "raises")

    module.register_model_loaders = register_model_loaders  # type: ignore[attr-defined]
    result = invoke("--device", "cpu", "-m", "bug:x", "neighbours", "a", extra_plugins={"lb": lambda: module})
    assert result.exit_code == 1
    one_line(result.stderr, "plugin 'lb'", "register_model_loaders", "ZeroDivisionError")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
def test_a_stop_signal_ends_probe_run_as_it_ends_invert(tmp_path, probe_env, how):
    """The first SIGTERM or Ctrl-C stops `probe run` after its chunk: the finished items are kept, the
    same notes as `probe invert` say so, and the exit status is 130 (not the signal's own)."""
    import signal
    import subprocess
    import time

    from tests.reliability.conftest import probe_exe

    exp = tmp_path / "exp.yaml"
    exp.write_text(
        "name: stop\nsteps:\n  - invert: {prompts: [a red star, a blue circle, a green square], seeds: 0-1, "
        "settings: {steps: 4, size: 32, copies: 1, resize_at: []}, batch: 2}\n"
    )
    proc = subprocess.Popen(
        [probe_exe(), "-o", str(tmp_path), "run", str(exp)],
        env=probe_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    records = tmp_path / "runs" / "stop" / "items" / "invert"
    deadline = time.monotonic() + 300
    while len(list(records.glob("*.json"))) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first chunk never finished"
        time.sleep(0.02)
    proc.send_signal(getattr(signal, how))
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Stopping after this chunk" in stderr
    kept = len(list(records.glob("*.json")))
    assert 2 <= kept < 6 and f"Interrupted: kept {kept} finished item(s)" in " ".join(stderr.split())


def test_a_huge_prompt_file_asks_for_yes_with_the_work_stated(invoke, tmp_path, monkeypatch):
    from probe.cli.state import State

    monkeypatch.setattr(State, "session_for", lambda self, model: pytest.fail("the model loaded"))
    prompts = tmp_path / "many.txt"
    prompts.write_text("".join(f"a red star number {i}\n" for i in range(600)))
    result = invoke("-o", tmp_path, "invert", "--prompts", prompts, "--seeds", "0-1", "--steps", "30")
    assert result.exit_code == 2
    one_line(result.stderr, "1,200 images (600 prompts x 2 seeds) at 30 steps each: 36,000 image-steps", "--yes")
    assert "probe run" in result.stderr
    assert not (tmp_path / "invert").exists()
