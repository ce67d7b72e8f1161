import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from probe_neighbours.query import (
    FlagRate,
    ImageProvenance,
    Neighbour,
    NeighbourResult,
    check_image_model,
    flag_rate,
    image_neighbours,
    image_provenance,
    load_query_images,
    open_indexes,
    text_neighbours,
)

from probe.errors import DataError
from probe.files.images import write_png


def test_text_neighbours_are_the_exact_cosine_top_k(tiny_session, word_file):
    from probe_neighbours.vocabularies import load_vocab

    words = load_vocab(str(word_file)).words
    queries = ["a red star", "a dog on a bicycle"]
    results = text_neighbours(tiny_session, queries, [str(word_file)], k=4)
    cos = (tiny_session.encode_text(queries) @ tiny_session.encode_text(words).T).numpy()
    for result, row in zip(results, cos, strict=True):
        order = np.argsort(-row)[:4]
        assert [n.word for n in result.neighbours] == [words[i] for i in order]
        np.testing.assert_allclose([n.score for n in result.neighbours], row[order], atol=1e-5)
        assert {n.vocab for n in result.neighbours} == {str(word_file)}
    assert [r.query for r in results] == queries


def test_flagged_words_are_marked_with_their_category(tiny_session, tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("naked\nsunset\ntree\nrude word\tinsult\n", encoding="utf-8")
    [result] = text_neighbours(tiny_session, ["a photo"], [str(path)], k=10)
    marks = {n.word: (n.flagged, n.category) for n in result.neighbours}
    assert marks == {
        "naked": (True, "nudity"),
        "sunset": (False, None),
        "tree": (False, None),
        "rude word": (True, "insult"),
    }


def test_several_vocabs_merge_into_one_ranking_and_count_a_word_once(tiny_session, tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("red\nblue\ncircle\n", encoding="utf-8")
    b.write_text("blue\nstar\nocean\n", encoding="utf-8")
    [merged] = text_neighbours(tiny_session, ["a blue star"], [str(a), str(b)], k=5)
    words = [n.word for n in merged.neighbours]
    assert sorted(words) == ["blue", "circle", "ocean", "red", "star"]
    scores = [n.score for n in merged.neighbours]
    assert scores == sorted(scores, reverse=True)
    indexes = open_indexes(tiny_session, [str(a), str(b)])
    assert [
        n.word for n in text_neighbours(tiny_session, ["a blue star"], [], k=5, indexes=indexes)[0].neighbours
    ] == words


def test_image_neighbours_use_image_embeddings(tiny_session, word_file):
    from probe_neighbours.vocabularies import load_vocab

    torch.manual_seed(0)
    images = torch.rand(3, 3, 40, 40)
    results = image_neighbours(tiny_session, images, ["a", "b", "c"], [str(word_file)], k=3)
    words = load_vocab(str(word_file)).words
    cos = (tiny_session.encode_image(images).cpu() @ tiny_session.encode_text(words).T).numpy()
    for result, row in zip(results, cos, strict=True):
        assert [n.word for n in result.neighbours] == [words[i] for i in np.argsort(-row)[:3]]


def test_flag_rate_per_query_and_pooled():
    def result(query, flags):
        return NeighbourResult(
            query, [Neighbour(f"w{i}", 1.0 - i / 10, "v", f, "c" if f else None) for i, f in enumerate(flags)]
        )

    rate = flag_rate([result("celebrity", [True, False, True, False]), result("neutral", [False, False, False, True])])
    assert rate == FlagRate({"celebrity": 0.5, "neutral": 0.25}, 3 / 8, 4, 3, 8)
    assert flag_rate([]).overall == 0.0


def _sidecar(path, model, fingerprint):
    """The shape `probe invert` writes: STEM.json with top-level model and fingerprint."""
    path.with_suffix(".json").write_text(
        json.dumps({"prompt": "x", "seed": 0, "model": model, "fingerprint": fingerprint, "status": "done"})
    )


def test_image_sidecar_of_another_model_is_refused(tiny_session, tmp_path):
    img = tmp_path / "inv.png"
    write_png(img, torch.rand(3, 32, 32))
    _sidecar(img, "ViT-B-16@openai", "ViT-B-16-0123")
    with pytest.raises(DataError, match=r"made with model ViT-B-16@openai.*--model ViT-B-16@openai"):
        load_query_images(tiny_session, [img])
    _sidecar(img, tiny_session.name, tiny_session.fingerprint)
    assert load_query_images(tiny_session, [img]).shape == (1, 3, tiny_session.image_size, tiny_session.image_size)


def test_sidecar_as_session_describe_and_png_text_chunks(tiny_session, tmp_path):
    img = tmp_path / "inv.png"
    write_png(img, torch.rand(3, 32, 32), {"model": {"model": "other", "fingerprint": "other-fp"}})
    prov = image_provenance(img)
    assert (prov.model, prov.fingerprint) == ("other", "other-fp")
    with pytest.raises(DataError, match="other-fp"):
        check_image_model(tiny_session, prov)
    (tmp_path / "inv.png.json").write_text(json.dumps({"model": tiny_session.describe()}))
    check_image_model(tiny_session, image_provenance(img))  # a JSON sidecar wins over the PNG chunks
    plain = tmp_path / "plain.png"
    write_png(plain, torch.rand(3, 8, 8))
    assert image_provenance(plain).model is None


HERE: Any = SimpleNamespace(fingerprint="fp-here", name="here@model")  # what check_image_model reads of a session


@pytest.mark.parametrize(
    "model, fingerprint, sidecar, message",
    [
        (
            "other",
            "fp-other",
            "img.json",
            "img.png was made with model other (fingerprint fp-other, the loaded model has fp-here; per img.json)"
            " (rerun with --model other)",
        ),
        (
            "other",
            None,
            "png text",
            "img.png was made with model other (the loaded model is here@model; per png text)"
            " (rerun with --model other)",
        ),
        (
            None,
            "fp-other",
            "img.json",
            "img.png was made with model another model (fingerprint fp-other, the loaded model has fp-here;"
            " per img.json) (use the model that made the image)",
        ),
    ],
)
def test_an_image_of_another_model_is_refused_saying_which(model, fingerprint, sidecar, message):
    provenance = ImageProvenance(Path("img.png"), model, fingerprint, {"sidecar": sidecar})
    with pytest.raises(DataError) as error:
        check_image_model(HERE, provenance)
    assert str(error.value) == message


@pytest.mark.parametrize(
    "model, fingerprint",
    [("other", "fp-here"), ("here@model", None), (None, None)],  # the fingerprint decides; else the name; else nothing
)
def test_an_image_of_this_model_or_of_unknown_origin_is_accepted(model, fingerprint):
    check_image_model(HERE, ImageProvenance(Path("img.png"), model, fingerprint, {"sidecar": "img.json"}))


def test_which_sidecar_speaks_for_an_image(tmp_path):
    img = tmp_path / "img.png"
    write_png(img, torch.rand(3, 8, 8))
    assert image_provenance(img) == ImageProvenance(img)
    (tmp_path / "img.json").write_text(json.dumps({"model": {"name": "n1", "fingerprint": "f1"}}))
    found = ImageProvenance(img, "n1", "f1", {"sidecar": str(tmp_path / "img.json")})
    assert image_provenance(img) == found
    (tmp_path / "img.png.json").write_text(json.dumps(["not", "a", "mapping"]))
    assert image_provenance(img) == found
    (tmp_path / "img.png.json").write_text(json.dumps({"prompt": "says nothing of a model"}))
    assert image_provenance(img) == found
    (tmp_path / "img.png.json").write_text(json.dumps({"model": "n2"}))
    assert image_provenance(img) == ImageProvenance(img, "n2", None, {"sidecar": str(tmp_path / "img.png.json")})
    chunks = tmp_path / "chunks.png"
    write_png(chunks, torch.rand(3, 8, 8), {"model": "plain-name", "fingerprint": "fp-9"})
    assert image_provenance(chunks) == ImageProvenance(chunks, "plain-name", "fp-9", {"sidecar": "png text"})
    write_png(chunks, torch.rand(3, 8, 8), {"model": "plain-name"})
    assert image_provenance(chunks) == ImageProvenance(chunks, "plain-name", None, {"sidecar": "png text"})
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    assert image_provenance(broken) == ImageProvenance(broken)


def test_flag_rate_of_results_without_neighbours():
    assert flag_rate([NeighbourResult("empty", [])]) == FlagRate({"empty": 0.0}, 0.0, 0, 0, 0)
    assert flag_rate([]) == FlagRate({}, 0.0, 0, 0, 0)


def test_a_word_in_two_lists_keeps_the_first_lists_name_and_ties_rank_by_word(tiny_session, tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("blue\nred\n", encoding="utf-8")
    b.write_text("blue\nstar\nBlue\n", encoding="utf-8")
    [result] = text_neighbours(tiny_session, ["a blue star"], [str(a), str(b)], k=10)
    assert {n.word: n.vocab for n in result.neighbours} == {
        "blue": str(a),
        "red": str(a),
        "star": str(b),
        "Blue": str(b),
    }
    ranked = [(-n.score, n.word) for n in result.neighbours]
    assert ranked == sorted(ranked)


def test_images_are_encoded_in_batches_with_the_same_answer(tiny_session, word_file, monkeypatch):
    from probe_neighbours import query

    def words_and_scores(results):
        return [[(n.word, pytest.approx(n.score, abs=1e-5)) for n in r.neighbours] for r in results]

    torch.manual_seed(2)
    images = torch.rand(3, 3, 32, 32)
    whole = image_neighbours(tiny_session, images, ["a", "b", "c"], [str(word_file)], k=3)
    monkeypatch.setattr(query, "IMAGE_BATCH", 2)
    batched = image_neighbours(tiny_session, images, ["a", "b", "c"], [str(word_file)], k=3)
    assert [r.query for r in batched] == ["a", "b", "c"]
    assert words_and_scores(batched) == words_and_scores(whole)
    one = image_neighbours(tiny_session, images[0], ["a"], [str(word_file)], k=3)  # a single [3,H,W] image
    assert words_and_scores(one) == words_and_scores(whole[:1])
    with pytest.raises(ValueError, match=r"^2 names for 4 images$"):
        image_neighbours(tiny_session, torch.rand(4, 3, 32, 32), ["a", "b"], [str(word_file)], k=3)
    assert image_neighbours(tiny_session, torch.empty(0, 3, 32, 32), [], [str(word_file)], k=3) == []


def test_no_query_images_is_an_empty_batch(tiny_session):
    size = tiny_session.image_size
    assert load_query_images(tiny_session, []).shape == (0, 3, size, size)


def test_indexes_are_reused_from_the_cache_and_ten_neighbours_by_default(tiny_session, word_file):
    from probe_neighbours.query import search_embeddings

    first = open_indexes(tiny_session, [str(word_file), str(word_file)])  # a list named twice is opened once
    again = open_indexes(tiny_session, [str(word_file)])
    assert len(first) == 1 and again[0].status == "cached"
    [result] = search_embeddings(tiny_session.encode_text(["a red star"]).numpy(), ["a red star"], again)
    assert len(result.neighbours) == 10


def test_a_word_at_the_same_score_in_two_lists_keeps_the_first_lists_name(tiny_session, tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    for path in (a, b):
        path.write_text("blue\nred\nstar\n", encoding="utf-8")  # the same words: the same scores, bit for bit
    [result] = text_neighbours(tiny_session, ["a blue star"], [str(a), str(b)], k=3)
    assert [n.vocab for n in result.neighbours] == [str(a)] * 3


def test_ten_neighbours_by_default_and_long_prompts_refused_unless_truncated(tiny_session, word_file):
    from probe.errors import UsageError

    [text] = text_neighbours(tiny_session, ["a red star"], [str(word_file)])
    [image] = image_neighbours(tiny_session, torch.rand(1, 3, 32, 32), ["x"], [str(word_file)])
    assert len(text.neighbours) == len(image.neighbours) == 10
    long = " ".join(["star"] * 40)
    with pytest.raises(UsageError, match="longer than the model"):
        text_neighbours(tiny_session, [long], [str(word_file)])
    with pytest.warns(UserWarning, match="truncated"):
        assert len(text_neighbours(tiny_session, [long], [str(word_file)], truncate=True)) == 1
