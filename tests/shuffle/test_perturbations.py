"""Perturbations: exact outputs where they are deterministic, invariants where they are random."""

from __future__ import annotations

from collections import Counter

import pytest
from probe_shuffle import perturbations as P
from probe_shuffle.perturbations import list_perturbations, perturb, tokenize

from probe.errors import UsageError

ALL = list_perturbations()
LONG = "a small blue star above a big yellow ring next to the old wooden table"


def test_swap_attributes_swaps_colours_between_nouns():
    assert perturb("a red circle and a blue square", ["swap-attributes"]) == {
        "swap-attributes": ["a blue circle and a red square"]
    }


def test_swap_attributes_keeps_kinds_apart_and_needs_a_noun_between():
    assert perturb("a big red circle", ["swap-attributes"])["swap-attributes"] == []  # size vs colour
    assert perturb("a red circle and a red square", ["swap-attributes"])["swap-attributes"] == []  # same word
    assert perturb("the circle is red and the square is blue", ["swap-attributes"])["swap-attributes"] == [
        "the circle is blue and the square is red"
    ]


def test_swap_attributes_variants_are_the_distinct_pairs():
    out = perturb("a small blue star above a big yellow ring", ["swap-attributes"], n_variants=5)["swap-attributes"]
    assert sorted(out) == sorted(
        ["a small yellow star above a big blue ring", "a big blue star above a small yellow ring"]
    )


@pytest.mark.parametrize(
    "caption, expected",
    [
        ("a red circle left of a blue square", "a blue square left of a red circle"),
        ("a red circle to the left of a blue square.", "a blue square to the left of a red circle."),
        ("a big dog is chasing a small cat", "a small cat is chasing a big dog"),
        ("a mug on top of a book", "a book on top of a mug"),
    ],
)
def test_swap_relation_swaps_the_two_sides(caption, expected):
    assert perturb(caption, ["swap-relation"])["swap-relation"] == [expected]


@pytest.mark.parametrize(
    "caption", ["a red circle and a blue square", "a shape on the left", "a star", "a cat left of a cat"]
)
def test_swap_relation_does_not_apply(caption):
    assert perturb(caption, ["swap-relation"])["swap-relation"] == []


def test_nothing_applies_to_one_word():
    assert perturb("circle", ALL) == {name: [] for name in ALL}


@pytest.mark.parametrize("seed", range(5))
def test_never_returns_the_caption_itself_and_keeps_the_words(seed):
    for caption in ["a red circle left of a blue square", LONG, "A big dog is chasing a small cat."]:
        for name, variants in perturb(caption, ALL, seed=seed, n_variants=3).items():
            for text in variants:
                assert text.lower() != caption.lower(), name
                assert Counter(tokenize(text)) == Counter(tokenize(caption)), name


def test_seeded_and_independent_of_the_other_names():
    a = perturb(LONG, ALL, seed=7, n_variants=2)
    assert a == perturb(LONG, ALL, seed=7, n_variants=2)
    assert a["shuffle-words"] == perturb(LONG, ["shuffle-words"], seed=7, n_variants=2)["shuffle-words"]
    assert a["shuffle-words"] != perturb(LONG, ["shuffle-words"], seed=8, n_variants=2)["shuffle-words"]


def test_variants_are_distinct_and_bounded_by_what_exists():
    out = perturb("a red shape", ["shuffle-words"], n_variants=50)["shuffle-words"]
    assert len(out) == len(set(out)) == 5  # 3! orders minus the original


def test_trigram_shuffles_keep_their_chunks():
    words = LONG.split()
    chunks = [" ".join(words[i : i + 3]) for i in range(0, len(words), 3)]
    for text in perturb(LONG, ["shuffle-trigrams"], n_variants=4)["shuffle-trigrams"]:
        got = text.split()
        assert sorted(" ".join(got[i : i + 3]) for i in range(0, len(got), 3)) == sorted(chunks)
    for text in perturb(LONG, ["shuffle-within-trigrams"], n_variants=4)["shuffle-within-trigrams"]:
        got = text.split()
        for i in range(0, len(words), 3):
            assert sorted(got[i : i + 3]) == sorted(words[i : i + 3])


def test_content_word_shuffle_keeps_function_words_in_place():
    stops = P.stop_words()
    assert {"the", "a", "of", "above"} <= stops and "red" not in stops
    words = LONG.split()
    for text in perturb(LONG, ["shuffle-content-words"], n_variants=4)["shuffle-content-words"]:
        got = text.split()
        assert [w for w in got if w in stops] == [w for w in words if w in stops]
        assert [i for i, w in enumerate(got) if w in stops] == [i for i, w in enumerate(words) if w in stops]


def test_punctuation_stays_at_the_end():
    for name, variants in perturb("A big dog is chasing a small cat.", ALL, n_variants=3).items():
        assert all(v.endswith(".") for v in variants), name


def test_unknown_names_and_bad_counts_are_usage_errors():
    with pytest.raises(UsageError, match="unknown perturbation 'shuffle'"):
        perturb("a red circle", ["shuffle"])
    with pytest.raises(UsageError, match="no perturbations"):
        perturb("a red circle", [])
    with pytest.raises(UsageError, match="n_variants"):
        perturb("a red circle", ["shuffle-words"], n_variants=0)


def fake_tagger(tokens):
    tags = {"red": "ADJ", "blue": "ADJ", "circle": "NOUN", "square": "NOUN"}
    return [tags.get(t, "DET" if t == "a" else "X") for t in tokens]


def test_tagger_shuffles_with_an_injected_tagger():
    caption = "a red circle left of a blue square"
    words = caption.split()
    out = perturb(
        caption, ["shuffle-nouns-adjectives", "shuffle-all-but-nouns-adjectives"], n_variants=5, tagger=fake_tagger
    )
    noun_adj = {1, 2, 6, 7}
    for text in out["shuffle-nouns-adjectives"]:
        assert [w for i, w in enumerate(text.split()) if i not in noun_adj] == [
            w for i, w in enumerate(words) if i not in noun_adj
        ]
    for text in out["shuffle-all-but-nouns-adjectives"]:
        assert [w for i, w in enumerate(text.split()) if i in noun_adj] == [
            w for i, w in enumerate(words) if i in noun_adj
        ]
    assert out["shuffle-nouns-adjectives"] and out["shuffle-all-but-nouns-adjectives"]


def test_tagger_shuffles_without_spacy_give_a_clear_message(monkeypatch):
    monkeypatch.setattr(P, "tagger_available", lambda: False)
    P.spacy_tagger.cache_clear()
    assert "shuffle-nouns-adjectives" not in list_perturbations()
    assert "shuffle-nouns-adjectives" in list_perturbations(include_unavailable=True)
    with pytest.raises(UsageError, match=r"spaCy.*pip install spacy"):
        perturb("a red circle", ["shuffle-nouns-adjectives"])
    P.spacy_tagger.cache_clear()
