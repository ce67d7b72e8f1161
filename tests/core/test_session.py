import json

import pytest
import torch
from safetensors.torch import save_file

from probe.devices import resolve_device
from probe.errors import ModelError, UsageError
from probe.session import Session


def test_encode_image_any_size_is_normalised(tiny_session):
    for size in (17, 32, 100):
        emb = tiny_session.encode_image(torch.rand(2, 3, size, size + 3))
        assert emb.shape == (2, 32)
        assert torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_encode_image_gradients_only_when_asked(tiny_session):
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    assert not tiny_session.encode_image(x).requires_grad
    tiny_session.encode_image(x, grad=True).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in tiny_session.model.parameters())


def test_session_knows_preprocessing_of_its_model(tiny_session):
    assert tiny_session.image_size == 32
    assert tiny_session.context_length == 16
    assert tiny_session.mean.flatten().tolist() == pytest.approx([0.48145466, 0.4578275, 0.40821073])


def test_fingerprint_is_stable_and_tracks_weights(tiny_spec, tiny_model_dir, tmp_path):
    a = Session.open(tiny_spec, device="cpu").fingerprint
    assert a == Session.open(tiny_spec, device="cpu").fingerprint
    other = tmp_path / "other"
    other.mkdir()
    (other / "open_clip_config.json").write_text((tiny_model_dir / "open_clip_config.json").read_text())
    state = Session.open(tiny_spec, device="cpu").model.state_dict()
    state = {k: (v + 0.01 if "proj" in k else v).contiguous() for k, v in state.items()}
    save_file(state, str(other / "open_clip_model.safetensors"))
    assert Session.open(f"local-dir:{other}", device="cpu").fingerprint != a


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(UsageError):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA"):
            resolve_device("cuda")


def test_fp16_on_cpu_is_refused(tiny_spec):
    with pytest.raises(UsageError, match="fp16"):
        Session.open(tiny_spec, device="cpu", precision="fp16")


def test_bf16_autocast_runs_on_cpu(tiny_spec):
    s = Session.open(tiny_spec, device="cpu", precision="bf16")
    emb = s.encode_text(["a red circle"])
    assert emb.dtype == torch.float32 and emb.shape == (1, 32)


def test_random_arch_is_deterministic():
    a = Session.open("shapes-tiny@random", device="cpu")
    b = Session.open("shapes-tiny@random", device="cpu")
    assert a.fingerprint == b.fingerprint
    assert torch.equal(a.encode_text(["star"]), b.encode_text(["star"]))


def test_local_dir_errors(tmp_path):
    with pytest.raises(ModelError, match=r"no open_clip_config\.json"):
        Session.open(f"local-dir:{tmp_path}")
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": {}}))
    with pytest.raises(ModelError, match="no weights"):
        Session.open(f"local-dir:{tmp_path}")


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_an_absent_device_is_reported_before_the_model_libraries_load():
    """`probe --device cuda invert ...` on a CPU machine: one line, exit 2, and no open_clip import
    (the check comes before inputs are read or a model loads, not after seconds of loading)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from probe.plugin import run_cli\n"
        "r = run_cli('--device', 'cuda', 'invert', 'a star', '--steps', '1')\n"
        "print(r.exit_code, 'open_clip' in sys.modules)\n"
        "print(r.output.strip())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120).stdout
    status, output = out.split("\n", 1)
    assert status == "2 False"
    assert output.strip() == "Error: device cuda requested but no CUDA GPU is available (use --device cpu or auto)"


def test_a_model_with_damaged_weights_is_refused_with_one_line(invoke, tmp_path):
    """All-NaN weights used to print an empty neighbours table with exit 0: now one line, exit 1."""
    from importlib import resources

    from safetensors.torch import load_file

    state = load_file(str(resources.files("probe.models").joinpath("weights/shapes-tiny.safetensors")))
    damaged = tmp_path / "nan.safetensors"
    save_file({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}, damaged)
    result = invoke("-m", f"shapes-tiny@{damaged}", "neighbours", "star")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip() == (
        f"Error: shapes-tiny@{damaged}: its text embeddings are not finite (NaN or inf) "
        "(its weights are damaged: check or re-download the checkpoint)"
    )


def test_a_tokenizer_that_cannot_tell_texts_apart_is_refused(monkeypatch):
    """A tokenizer without its files (every text the same ids) makes every word score cosine 1.000."""
    session = Session.open("shapes-tiny@random", device="cpu")
    session.check_working()  # a working model passes
    monkeypatch.setattr(
        session, "tokenize", lambda texts, truncate=False: torch.zeros(len(texts), 77, dtype=torch.long)
    )
    with pytest.raises(ModelError, match="its tokenizer gives different texts the same tokens"):
        session.check_working()


def test_non_finite_image_embeddings_are_refused_outside_inversion(builtin_session, monkeypatch):
    images = torch.rand(2, 3, 8, 8)
    assert torch.isfinite(builtin_session.encode_image(images)).all()
    monkeypatch.setattr(builtin_session, "preprocess", lambda x: torch.full((2, 3, 64, 64), float("nan")))
    with pytest.raises(ModelError, match="its image embeddings are not finite"):
        builtin_session.encode_image(images, fast=False)
    assert builtin_session.encode_image(images, grad=True, fast=False).shape[0] == 2  # inversion: its own checks
