import json

import numpy as np
import pytest
import torch
from probe_neighbours.query import (
    FlagRate,
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
from probe.io import write_png


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
