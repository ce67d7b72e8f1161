"""`probe world train` refuses bad fine-tune input before any training starts."""

from __future__ import annotations


def test_init_from_a_missing_file_is_a_one_line_usage_error(invoke, tmp_path):
    result = invoke("world", "train", "--init-from", tmp_path / "nope.safetensors", "--checkpoints", tmp_path / "ck",
                    "--output", tmp_path / "w.safetensors")
    assert result.exit_code == 2
    assert "no such weights file" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "ck").exists() and not (tmp_path / "w.safetensors").exists()


def test_bad_training_numbers_are_one_line_usage_errors(invoke, tmp_path):
    for flags in (["--adversarial-steps", "0"], ["--lr", "0"], ["--adversarial-from", "2"]):
        result = invoke("world", "train", *flags, "--checkpoints", tmp_path / "ck", "--output", tmp_path / "w.safetensors")
        assert result.exit_code == 2, flags
        assert "must be" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "ck").exists()
