"""Bad inputs and broken environments: one line naming the path or value and what to do, no traceback."""

from __future__ import annotations

import errno
import struct
import zlib

import pytest
import torch

from tests.reliability.conftest import FAST


def bomb_png(path, side: int = 50000):
    """A PNG whose header claims side x side pixels (a few hundred bytes on disk)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    )
    return path


def one_line_error(result, *needles: str) -> None:
    assert result.exit_code in (1, 2), result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "internal error" not in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("side", [50000, 9000])
@pytest.mark.parametrize(
    "command",
    [
        ["score", "{img}", "-p", "a star"],
        ["neighbours", "--image", "{img}"],
        ["shuffle-test", "--image", "{img}", "--caption", "a red star"],
        ["nsfw-calibrate", "--safe", "{img}", "-o", "{tmp}/cal.yaml"],
    ],
)
def test_decompression_bomb_is_refused(invoke, tmp_path, command, side):
    img = bomb_png(tmp_path / "bomb.png", side)
    args = [a.format(img=img, tmp=tmp_path) for a in command]
    one_line_error(invoke("--device", "cpu", *args), str(img), "pixels")


@pytest.mark.parametrize(
    "args",
    [
        ["--seed", str(2**64), "invert", "a star"],
        ["--seed", "-1", "invert", "a star"],
        ["invert", "a star", "--seeds", str(2**64)],
    ],
)
def test_seed_beyond_64_bits_is_refused(invoke, tmp_path, args):
    result = invoke("-o", tmp_path, *args, *FAST)
    assert result.exit_code == 2 and "internal error" not in result.stderr, result.output
    assert not (tmp_path / "invert").exists()


def test_experiment_seed_beyond_64_bits_is_refused(invoke, tmp_path):
    exp = tmp_path / "e.yaml"
    exp.write_text(f"steps:\n  - invert: {{prompts: [a star], seeds: '{2**64}'}}\n")
    one_line_error(invoke("-o", tmp_path, "run", exp), f"{exp}:2")


@pytest.mark.parametrize(
    "flag,value", [("--size", "100000"), ("--steps", str(10**12)), ("--copies", "100000"), ("--batch-size", "10000000")]
)
def test_counts_are_bounded(invoke, tmp_path, flag, value):
    result = invoke("-o", tmp_path, "invert", "a star", flag, value)
    one_line_error(result, f"{flag}: Input should be less than or equal to", value)


def test_output_that_is_a_file_fails_before_the_model_loads(invoke, tmp_path, monkeypatch):
    from probe.cli.state import State

    monkeypatch.setattr(State, "session_for", lambda self, model: pytest.fail("the model loaded"))
    blocker = tmp_path / "out"
    blocker.write_text("x")
    one_line_error(invoke("-o", blocker, "invert", "a star", *FAST), str(blocker), "-o")
    one_line_error(
        invoke("-o", blocker, "bias", "--prompts", "shapes", "--labels", "colours", "--n", "1"), str(blocker)
    )


@pytest.mark.slow
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_failed_writes_are_one_line_and_leave_no_partial_file(invoke, tmp_path, monkeypatch, code):
    """A disk that fills up (or turns read-only) while images are saved: a clear error, no half file."""
    import os

    import probe.files.atomic as pio

    real = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith(".png"):
            raise OSError(code, os.strerror(code))
        return real(src, dst)

    monkeypatch.setattr(pio.os, "replace", failing_replace)
    result = invoke("-o", tmp_path, "--device", "cpu", "invert", "a star", *FAST)
    one_line_error(result, "cannot write", os.strerror(code))
    leftovers = [p for p in (tmp_path / "invert").rglob("*") if p.is_file()]
    assert leftovers == []


@pytest.mark.slow
def test_folder_where_an_index_file_should_be(invoke, tmp_path):
    first = invoke("--device", "cpu", "neighbours", "a star", "--vocab", "world", "--json")
    assert first.exit_code == 0, first.output
    from probe.files.cache import cache_dir

    index = next(cache_dir("indexes").glob("*.faiss"))
    index.unlink()
    index.mkdir()
    one_line_error(invoke("--device", "cpu", "neighbours", "a star", "--vocab", "world"), str(index), "folder")


@pytest.mark.parametrize(
    "args",
    [
        ["score", "missing.png", "-p", "a star"],
        ["neighbours", "--image", "missing.png"],
        ["shuffle-test", "--image", "missing.png", "--caption", "a star"],
    ],
)
def test_missing_image_fails_before_torch_is_imported(args, tmp_path):
    """Pre-flight: a missing input file is reported without importing torch, let alone loading a model."""
    import subprocess
    import sys

    code = (
        "import sys; from probe.cli.app import build_app; from typer.testing import CliRunner; "
        f"r = CliRunner().invoke(build_app(), {args!r}); "
        "print(r.exit_code, 'torch' in sys.modules); print(r.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    status, message = out.stdout.split("\n", 1)
    assert status == "1 False", out.stdout
    assert "image not found: missing.png" in message


@pytest.mark.parametrize(
    "command", [["invert", "a star", *FAST], ["bias", "--prompts", "shapes", "--labels", "colours", "--n", "1"]]
)
def test_read_only_output_is_found_before_the_model_loads(invoke, tmp_path, monkeypatch, command):
    """A read-only output folder (faked: the tests run as root) fails before any work, naming the folder."""
    import os
    import tempfile

    from probe.cli.state import State

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    monkeypatch.setattr(State, "session_for", lambda self, model: pytest.fail("the model loaded"))
    one_line_error(invoke("-o", tmp_path, *command), str(tmp_path), os.strerror(errno.EROFS), "-o")


@pytest.mark.parametrize(
    "command",
    [
        ["neighbours", "star", "--k", "1"],
        ["shuffle-test", "a red star left of a blue circle"],
        ["score", "IMAGE", "-p", "a red star"],
    ],
    ids=["neighbours", "shuffle-test", "score"],
)
def test_an_existing_csv_file_is_replaced_only_with_force(invoke, tmp_path, command):
    """`--csv FILE` naming a user's file: refused before any work (exit 2, the file untouched); with
    --force it is replaced by the table."""
    from probe.files.images import write_png

    image = tmp_path / "red.png"
    write_png(image, torch.ones(3, 8, 8) * torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1))
    args = [str(image) if a == "IMAGE" else a for a in command]
    mine = tmp_path / "mine.csv"
    mine.write_text("a year of notes\n")
    refused = invoke(*args, "--csv", mine)
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.strip() == f"Error: {mine} already exists (pick another name, or pass --force to replace it)"
    assert mine.read_text() == "a year of notes\n"
    replaced = invoke(*args, "--csv", mine, "--force")
    assert replaced.exit_code == 0, replaced.output
    assert mine.read_text().count("\n") > 1 and "a year of notes" not in mine.read_text()


def test_models_convert_keeps_a_checksum_file_it_did_not_write(invoke, tmp_path):
    src, dst = tmp_path / "w.pt", tmp_path / "w.safetensors"
    torch.save({"a": torch.zeros(2)}, src)
    (tmp_path / "w.safetensors.sha256").write_text("the user's own sum\n")
    result = invoke("models", "convert", src, dst, "--allow-pickle")
    assert result.exit_code == 2 and "w.safetensors.sha256 already exists" in result.stderr
    assert (tmp_path / "w.safetensors.sha256").read_text() == "the user's own sum\n" and not dst.exists()


@pytest.mark.parametrize(
    "command", [["nsfw", "a star", "--n", "1", "--no-text"], ["bias", "--prompts", "shapes", "--n", "1"]]
)
def test_a_pickle_labeller_is_refused_before_any_model_loads(invoke, tmp_path, monkeypatch, command):
    """`--labeller ARCH@file.pt` without --allow-pickle: refused before the inversions it would label."""
    from probe.cli.state import State

    weights = tmp_path / "labeller.pt"
    weights.write_bytes(b"not read")
    monkeypatch.setattr(State, "session_for", lambda self, model: pytest.fail("a model loaded"))
    result = invoke("-o", tmp_path, *command, "--labeller", f"ViT-B-32@{weights}")
    one_line_error(result, f"refusing to load pickle checkpoint {weights}", "--allow-pickle")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.png"))
