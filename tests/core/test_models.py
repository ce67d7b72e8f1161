import os

import pytest
import torch
from safetensors.torch import save_file

from probe.errors import ModelError
from probe.models.specs import list_models, parse_model_spec
from probe.session import Session


def test_spec_syntax():
    assert parse_model_spec("shapes-tiny").kind == "builtin"
    assert parse_model_spec("ViT-B-16@openai").kind == "pretrained"
    assert parse_model_spec("ViT-B-16@random").kind == "random"
    spec = parse_model_spec("ViT-B-16@/x/w.safetensors")
    assert (spec.kind, spec.arch, spec.weights) == ("file", "ViT-B-16", "/x/w.safetensors")
    assert parse_model_spec("hf-hub:org/repo").kind == "hf-hub"
    assert parse_model_spec("local-dir:/x").kind == "local-dir"


def test_unknown_names_suggest_close_ones():
    with pytest.raises(ModelError, match="did you mean ViT-B-16"):
        parse_model_spec("ViT-B-1")
    with pytest.raises(ModelError, match=r"needs weights.*ViT-B-16@openai"):
        parse_model_spec("ViT-B-16")
    with pytest.raises(ModelError, match=r"unknown pretrained tag 'opnai'.*openai"):
        parse_model_spec("ViT-B-16@opnai")


def test_list_models_has_builtin_first():
    assert list_models(include_pretrained=False)[0] == "shapes-tiny"
    assert "ViT-B-16@openai" in list_models()


def _tiny_weights(tiny_session):
    return {k: v.contiguous() for k, v in tiny_session.model.state_dict().items()}


def test_pickle_checkpoints_need_opt_in(tiny_session, tmp_path):
    # the arch for a file spec must be an open_clip name; register the tiny config under one
    state = Session.open("shapes-tiny@random", device="cpu").model.state_dict()
    path = tmp_path / "w.pt"
    torch.save(state, path)
    with pytest.raises(ModelError, match="refusing to load pickle"):
        Session.open(f"shapes-tiny@{path}")
    s = Session.open(f"shapes-tiny@{path}", allow_pickle=True)
    assert s.encode_text(["a"]).shape[0] == 1


def test_safetensors_file_and_mismatch(tiny_session, tmp_path):
    good = tmp_path / "good.safetensors"
    state = Session.open("shapes-tiny@random", device="cpu").model.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(good))
    assert Session.open(f"shapes-tiny@{good}").spec.kind == "file"
    bad = tmp_path / "bad.safetensors"
    save_file(_tiny_weights(tiny_session), str(bad))
    with pytest.raises(ModelError, match="do not fit this architecture"):
        Session.open(f"shapes-tiny@{bad}")
    with pytest.raises(ModelError, match="not found"):
        Session.open(f"shapes-tiny@{tmp_path / 'missing.safetensors'}")
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(good.read_bytes()[:100])
    with pytest.raises(ModelError, match="cannot read weights"):
        Session.open(f"shapes-tiny@{trunc}")


def test_uncached_pretrained_weights_fail_fast_and_clearly():
    with pytest.raises(ModelError, match=r"not cached and cannot be downloaded.*shapes-tiny"):
        Session.open("RN50@openai")


@pytest.mark.slow
def test_models_convert_needs_allow_pickle_and_writes_safetensors_with_its_sum(invoke, tmp_path):
    import hashlib

    state = Session.open("shapes-tiny@random", device="cpu").model.state_dict()
    src = tmp_path / "w.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, src)
    dst = tmp_path / "w.safetensors"
    refused = invoke("models", "convert", src, dst)
    assert refused.exit_code == 1 and "refusing to read pickle" in refused.stderr and not dst.exists()
    result = invoke("models", "convert", src, dst, "--allow-pickle", "--json")
    assert result.exit_code == 0, result.stderr
    digest = hashlib.sha256(dst.read_bytes()).hexdigest()
    assert (tmp_path / "w.safetensors.sha256").read_text() == f"{digest}  w.safetensors\n"
    mask = os.umask(0)
    os.umask(mask)
    assert dst.stat().st_mode & 0o777 == 0o666 & ~mask  # the usual permissions, as any other output
    again = invoke("models", "convert", src, dst, "--allow-pickle")
    assert again.exit_code == 2 and "already exists" in again.stderr
    loaded = Session.open(f"shapes-tiny@{dst}", device="cpu").model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert invoke("models", "--json").exit_code == 0
