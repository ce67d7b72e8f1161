"""Ensembles: several models' text terms averaged in one inversion, reported per model, resumed only as the
same ensemble."""

import json
from pathlib import Path

import pytest
import torch
from probe_invert.objectives import L1, Context, TextMatch
from probe_invert.render import build_objective, invert, text_targets
from probe_invert.settings import load_preset

from probe.errors import UsageError
from tests.conftest import write_tiny_model


@pytest.fixture(scope="module")
def other_spec(tmp_path_factory) -> str:
    return f"local-dir:{write_tiny_model(tmp_path_factory.mktemp('tiny-clip-2'), seed=2)}"


def fast(**kw):
    return load_preset("default", steps=3, size=8, resize_at=[], copies=2, batch_size=4).with_overrides(**kw)


def test_loss_is_the_mean_of_each_models_text_term_plus_priors():
    images = torch.full((1, 3, 2, 2), 0.75)
    t0, t1 = torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[0.0, 1.0, 0.0]]])
    w = torch.ones(1, 1)
    f0, f1 = torch.tensor([[0.6, 0.8]]), torch.tensor([[0.0, 1.0, 0.0]])
    settings = load_preset("default", loss="cosine", priors={"l1": {"weight": 0.5, "center": 0.5}})
    matches, total = build_objective(settings, [(t0, w), (t1, w)])
    ctx = Context(images, f0, 1, (f1,))
    assert [m.model for m in matches] == [0, 1]
    assert total(ctx).item() == pytest.approx((-0.6 - 1.0) / 2 + 0.5 * 12 * 0.25)
    assert TextMatch(t1, w, "cosine", model=1)(ctx).item() == pytest.approx(-1.0)
    assert L1(0.5)(ctx).item() == pytest.approx(3.0)


def test_ensemble_inversion_reports_each_models_cosine(tiny_session, other_spec):
    from probe.session import Session

    other_session = Session.open(other_spec, device="cpu")
    res = invert(tiny_session, ["a red star"], [0], fast(), ensemble=[other_session])[0]
    assert len(res.model_cosines) == 2 and res.cosine == pytest.approx(sum(res.model_cosines) / 2, abs=1e-6)
    for session, reported in zip((tiny_session, other_session), res.model_cosines, strict=True):
        targets, _ = text_targets(session, ["a red star"])
        own = (session.encode_image(res.image[None]) @ targets[0, 0]).item()  # each model scores the final image itself
        assert reported == pytest.approx(own, abs=1e-5)
    alone = invert(tiny_session, ["a red star"], [0], fast())[0]
    assert not torch.equal(alone.image, res.image)  # the second model changed the optimisation


def test_a_model_twice_is_refused(tiny_session, tiny_spec):
    from probe.session import Session

    with pytest.raises(UsageError, match="twice"):
        invert(tiny_session, ["a"], [0], fast(), ensemble=[Session.open(tiny_spec, device="cpu")])


@pytest.mark.slow
def test_cli_ensemble_sidecar_and_resume(invoke, tiny_spec, other_spec, tmp_path):
    args = ["--model", tiny_spec, "-o", tmp_path, "invert", "a red star", "--steps", "2", "--size", "8", "--json"]
    first = invoke(*args, "--ensemble", other_spec)
    assert first.exit_code == 0, first.stderr
    out = json.loads(first.stdout)
    assert [m["model"] for m in out["ensemble"]] == [other_spec] and len(out["images"][0]["model_cosines"]) == 2
    sidecar = json.loads(Path(out["images"][0]["sidecar"]).read_text())
    assert (
        sidecar["ensemble"][0]["fingerprint"] == out["ensemble"][0]["fingerprint"]
        and len(sidecar["model_cosines"]) == 2
    )
    again = json.loads(invoke(*args, "--ensemble", other_spec).stdout)
    alone = invoke(*args)
    assert again["images"][0]["skipped"] is True  # a different ensemble is not resumed, nor silently replaced:
    assert alone.exit_code == 2 and "other settings or another model" in alone.stderr
    twice = invoke(*args, "--ensemble", tiny_spec)
    assert twice.exit_code == 2 and "twice" in twice.stderr


def test_same_folder_spelled_differently_is_one_model(tiny_session, tiny_model_dir):
    from probe.session import Session

    respelled = Session.open(f"local-dir:{tiny_model_dir}/", device="cpu")
    with pytest.raises(UsageError, match="twice"):
        invert(tiny_session, ["a"], [0], fast(), ensemble=[respelled])


def test_png_metadata_and_resumed_rows_name_the_ensemble(invoke, tiny_spec, other_spec, tmp_path):
    from PIL import Image

    args = [
        "--model",
        tiny_spec,
        "-o",
        tmp_path,
        "invert",
        "a red star",
        "--steps",
        "2",
        "--size",
        "8",
        "--json",
        "--ensemble",
        other_spec,
    ]
    run = json.loads(invoke(*args).stdout)
    first = run["images"][0]
    text = Image.open(first["png"]).text  # type: ignore[attr-defined]  # a PNG: one text chunk per key, JSON values
    assert json.loads(text["ensemble"]) == [{"model": other_spec, "fingerprint": run["ensemble"][0]["fingerprint"]}]
    assert json.loads(text["model_cosines"]) == first["model_cosines"]
    resumed = json.loads(invoke(*args).stdout)["images"][0]
    assert resumed["skipped"] is True and resumed["model_cosines"] == first["model_cosines"]


def test_an_ensemble_is_one_device_and_each_model_once():
    """Models are told apart by fingerprint; "cpu" and "cpu:0" are one device."""
    from types import SimpleNamespace

    from probe_invert.render import check_ensemble

    def model(name: str, fingerprint: str, device: str):
        spec = SimpleNamespace(text=name, kind="builtin", arch=name, weights=None)
        return SimpleNamespace(spec=spec, fingerprint=fingerprint, device=torch.device(device))

    first = model("a", "fa", "cpu")
    assert check_ensemble(first, [model("b", "fb", "cpu:0")])[1].spec.text == "b"
    with pytest.raises(UsageError) as error:
        check_ensemble(first, [model("b", "fb", "cpu"), model("a-again", "fa", "cpu")])
    assert str(error.value) == "the ensemble has model 'a-again' twice (same as 'a') (give each model once)"
    with pytest.raises(UsageError) as error:
        check_ensemble(first, [model("c", "fc", "meta")])
    assert str(error.value) == "ensemble model 'c' is on meta, the session on cpu (open every model on the same device)"


def test_a_folder_spelled_from_the_home_directory_is_the_same_model(tiny_session, tiny_model_dir, monkeypatch):
    from probe.session import Session

    monkeypatch.setenv("HOME", str(tiny_model_dir.parent))
    from_home = Session.open(f"local-dir:~/{tiny_model_dir.name}/", device="cpu")
    with pytest.raises(UsageError, match="twice"):
        invert(tiny_session, ["a"], [0], fast(), ensemble=[from_home])


def test_a_folder_reached_through_a_link_is_the_same_model(tiny_session, tiny_model_dir, tmp_path):
    from probe.session import Session

    link = tmp_path / "same-model"
    link.symlink_to(tiny_model_dir, target_is_directory=True)
    with pytest.raises(UsageError, match="twice"):
        invert(tiny_session, ["a"], [0], fast(), ensemble=[Session.open(f"local-dir:{link}", device="cpu")])
