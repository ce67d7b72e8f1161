"""Perturbations: exact outputs where they are deterministic, invariants where they are random."""

from __future__ import annotations

import sys
import types
from collections import Counter
from typing import Any

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


# Every relation phrase the swap knows, written out here so a phrase dropped or misspelt in the list fails.
RELATION_PHRASES = [
    "to the left of",
    "to the right of",
    "left of",
    "right of",
    "on top of",
    "on the top of",
    "in front of",
    "on the left of",
    "on the right of",
    "at the left of",
    "at the right of",
    "above",
    "below",
    "under",
    "underneath",
    "beneath",
    "over",
    "beside",
    "next to",
    "near",
    "behind",
    "inside",
    "outside",
    "chasing",
    "following",
    "holding",
    "carrying",
    "riding",
    "eating",
    "watching",
    "pushing",
    "pulling",
    "touching",
    "hitting",
    "wearing",
    "biting",
    "feeding",
    "catching",
    "looking at",
    "sitting on",
    "standing on",
    "lying on",
    "leaning on",
    "hanging from",
    "bigger than",
    "smaller than",
    "taller than",
    "shorter than",
]


@pytest.mark.parametrize("relation", RELATION_PHRASES)
def test_every_relation_phrase_is_swapped(relation):
    assert perturb(f"a cat {relation} a dog", ["swap-relation"]) == {"swap-relation": [f"a dog {relation} a cat"]}


@pytest.mark.parametrize("copula", ["is", "are", "was", "were"])
def test_a_copula_stays_with_its_relation(copula):
    got = perturb(f"the cat {copula} under the table", ["swap-relation"])
    assert got == {"swap-relation": [f"the table {copula} under the cat"]}


@pytest.mark.parametrize(
    "caption",
    [
        "a star above",  # no right side
        "standing on top of a box",  # a relation at the first word has no left side
        "were near the door",  # a copula is not a side
        "over the hill it was",
    ],
)
def test_swap_relation_needs_a_side_on_each_side(caption):
    assert perturb(caption, ["swap-relation"]) == {"swap-relation": []}


def test_a_moving_side_leaves_its_comma_behind():
    assert perturb("a red circle, left of a blue square", ["swap-relation"]) == {
        "swap-relation": ["a blue square left of a red circle"]
    }


def test_two_words_or_two_trigrams_are_enough_to_shuffle():
    assert perturb("red circle", ["shuffle-words", "shuffle-within-trigrams"]) == {
        "shuffle-words": ["circle red"],
        "shuffle-within-trigrams": ["circle red"],
    }
    assert perturb("a red circle and a star", ["shuffle-trigrams"]) == {"shuffle-trigrams": ["and a star a red circle"]}


def test_punctuation_alone_gives_nothing():
    assert perturb("?!.,;:", ALL) == {name: [] for name in ALL}


@pytest.mark.parametrize(
    "caption, expected",
    [
        ("a wooden chair and a metal table", "a metal chair and a wooden table"),  # materials, from the shipped list
        ("a red circle and a pink square", "a pink circle and a red square"),  # a world colour and a listed one
        ("a big circle and a tiny square", "a tiny circle and a big square"),  # a world size and a listed one
    ],
)
def test_swap_attributes_of_every_kind(caption, expected):
    assert perturb(caption, ["swap-attributes"]) == {"swap-attributes": [expected]}


@pytest.mark.parametrize(
    "caption",
    [
        "an old chair and a wooden table",  # age vs material
        "it is red and it is blue",  # no noun between the two
        "the flag red blue stripes",  # no noun between the two (one before them does not count)
        "a red square next to something blue",  # 'blue' ends the caption: it modifies nothing
    ],
)
def test_swap_attributes_does_not_apply(caption):
    assert perturb(caption, ["swap-attributes"]) == {"swap-attributes": []}


@pytest.mark.parametrize(
    "caption, expected",
    [
        ("a red circle", [(1, "colour")]),
        ("was red.", [(1, "colour")]),  # after a copula
        ("blue, it was", []),  # the caption's last word is not a copula before its first
        ("something blue", []),
        ("red, blue", []),
    ],
)
def test_attribute_words_count_as_modifiers_before_a_content_word_or_after_a_copula(caption, expected):
    assert P.attribute_positions(tokenize(caption)) == expected


def test_brackets_and_punctuation_are_rejoined():
    caption = "a star (red) next to [a box] {or two}, right?"
    assert P.detokenize(tokenize(caption)) == caption


def test_defaults_are_one_variant_with_seed_zero():
    one = perturb(LONG, ["shuffle-words"])
    assert one == perturb(LONG, ["shuffle-words"], seed=0, n_variants=1) and len(one["shuffle-words"]) == 1
    assert len(perturb(LONG, ["shuffle-words"], n_variants=2)["shuffle-words"]) == 2


def test_a_seed_gives_the_same_captions_in_every_version():
    assert perturb(LONG, ["shuffle-words", "shuffle-trigrams"], seed=0) == {
        "shuffle-words": ["above wooden yellow small to the a blue ring big old table next star a"],
        "shuffle-trigrams": ["big yellow ring next to the a small blue star above a old wooden table"],
    }


def test_a_perturbation_that_finds_nothing_new_is_tried_20_times_per_variant(monkeypatch):
    calls = []

    def same(tokens, rng):
        calls.append(1)
        return list(tokens)

    monkeypatch.setattr(P, "registered_perturbations", lambda: {"same": P.Perturbation("same", same, "no change")})
    assert perturb("a red circle", ["same"], n_variants=3) == {"same": []}
    assert len(calls) == 60


NAMES = ", ".join(
    [
        "shuffle-words",
        "shuffle-trigrams",
        "shuffle-within-trigrams",
        "shuffle-content-words",
        "swap-attributes",
        "swap-relation",
        "shuffle-nouns-adjectives",
        "shuffle-all-but-nouns-adjectives",
    ]
)


def test_name_errors_list_the_choices(monkeypatch):
    monkeypatch.setattr(P, "tagger_available", lambda: False)
    with pytest.raises(UsageError) as unknown:
        perturb("a red circle", ["shuffle"])
    assert str(unknown.value) == f"unknown perturbation 'shuffle' (choose from {NAMES})"
    with pytest.raises(UsageError) as empty:
        perturb("a red circle", [])
    without_tagger = NAMES.removesuffix(", shuffle-nouns-adjectives, shuffle-all-but-nouns-adjectives")
    assert str(empty.value) == f"no perturbations chosen (choose from {without_tagger})"
    with pytest.raises(UsageError, match=r"^n_variants must be at least 1, got 0$"):
        perturb("a red circle", ["shuffle-words"], n_variants=0)


def test_the_list_says_what_each_does_and_whether_it_can_run(monkeypatch):
    summaries = [
        ("shuffle-words", "all words shuffled"),
        ("shuffle-trigrams", "order of consecutive trigrams shuffled"),
        ("shuffle-within-trigrams", "words shuffled inside each trigram"),
        ("shuffle-content-words", "content words shuffled, function words kept in place"),
        ("swap-attributes", "two same-kind attribute words swap nouns (colour, size, ...)"),
        ("swap-relation", "the two sides of a relation swapped (A left of B -> B left of A)"),
        ("shuffle-nouns-adjectives", "nouns and adjectives shuffled (needs spaCy)"),
        ("shuffle-all-but-nouns-adjectives", "all but nouns and adjectives shuffled (needs spaCy)"),
    ]
    monkeypatch.setattr(P, "tagger_available", lambda: False)
    assert P.describe_perturbations() == [(n, s, not n.endswith("nouns-adjectives")) for n, s in summaries]
    monkeypatch.setattr(P, "tagger_available", lambda: True)
    assert P.describe_perturbations() == [(n, s, True) for n, s in summaries]


def test_the_tagger_is_available_only_with_spacy_and_its_model(monkeypatch):
    monkeypatch.delenv("PROBE_SPACY_MODEL", raising=False)
    cases = [({"spacy", "en_core_web_sm"}, True), ({"spacy"}, False), ({"en_core_web_sm"}, False), (set(), False)]
    for installed, expected in cases:
        monkeypatch.setattr(
            P.importlib.util, "find_spec", lambda name, have=installed: object() if name in have else None
        )
        assert P.tagger_available() is expected, installed


def test_the_spacy_model_is_en_core_web_sm_unless_set(monkeypatch):
    monkeypatch.delenv("PROBE_SPACY_MODEL", raising=False)
    assert P.spacy_model_name() == "en_core_web_sm"
    with pytest.raises(UsageError) as missing:
        monkeypatch.setattr(P, "tagger_available", lambda: False)
        P.spacy_tagger.cache_clear()
        P.spacy_tagger()
    assert str(missing.value) == (
        "the noun/adjective shuffles need a part-of-speech tagger: spaCy with the en_core_web_sm model"
        " (pip install spacy && python -m spacy download en_core_web_sm, or leave these perturbations out)"
    )
    P.spacy_tagger.cache_clear()


def test_the_spacy_tagger_tags_the_given_words_with_the_chosen_model(monkeypatch):
    """spaCy itself is optional, so a stand-in module records what the tagger asks of it."""
    loaded: list[str] = []

    class Token:
        def __init__(self, pos):
            self.pos_ = pos

    class Doc:
        def __init__(self, vocab, words):
            self.vocab, self.words = vocab, words

    class Pipeline:
        vocab = object()

        def __call__(self, doc):
            assert doc.vocab is self.vocab
            return [Token("NOUN" if w == "circle" else "DET") for w in doc.words]

    def load(name: str) -> Pipeline:
        loaded.append(name)
        return Pipeline()

    spacy: Any = types.ModuleType("spacy")
    spacy.load = load
    spacy_tokens: Any = types.ModuleType("spacy.tokens")
    spacy_tokens.Doc = Doc
    monkeypatch.setitem(sys.modules, "spacy", spacy)
    monkeypatch.setitem(sys.modules, "spacy.tokens", spacy_tokens)
    monkeypatch.setattr(P, "tagger_available", lambda: True)
    monkeypatch.setenv("PROBE_SPACY_MODEL", "en_core_web_trf")
    P.spacy_tagger.cache_clear()
    try:
        assert P.spacy_tagger()(["a", "circle"]) == ["DET", "NOUN"]
        assert loaded == ["en_core_web_trf"]
    finally:
        P.spacy_tagger.cache_clear()


def test_proper_nouns_count_as_nouns_for_the_tagger_shuffles():
    tags = {"Alice": "PROPN", "Bob": "PROPN", "meets": "VERB"}
    got = perturb("Alice meets Bob", ["shuffle-nouns-adjectives"], tagger=lambda toks: [tags[t] for t in toks])
    assert got == {"shuffle-nouns-adjectives": ["Bob meets Alice"]}


def test_a_plugins_perturbation_needs_no_tagger_unless_it_says_so():
    from probe.plugin import hookimpl, loaded_plugins

    module = types.ModuleType("reverser")
    module.register_perturbations = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("reverse", lambda tokens, rng: tokens[::-1], "words reversed")
    )
    with loaded_plugins({"reverser": module}):
        found = P.registered_perturbations()["reverse"]
        assert (found.summary, found.needs_tagger) == ("words reversed", False)
        assert perturb("a red circle", ["reverse"]) == {"reverse": ["circle red a"]}
