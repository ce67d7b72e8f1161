"""Caption perturbations for word-order tests: seeded, small pure functions, listed in one registry.

Each perturbation takes a caption's tokens and a seeded `random.Random` and returns new tokens, or
None when it does not apply (a caption with one word cannot be shuffled; one with a single colour
cannot have its colours swapped). `perturb` never returns the caption itself as a "perturbation".
Tokenisation is a plain regex (words and punctuation), so nothing needs downloading; only the
ARO noun/adjective shuffles need a part-of-speech tagger (spaCy with a model), and only when asked.
"""

from __future__ import annotations

import importlib.util
import os
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from probe.plugin import UsageError, data_files

Tokens = list[str]
Tagger = Callable[[Sequence[str]], list[str]]

TOKEN_PATTERN = re.compile(r"\w+(?:['’\-]\w+)*|[^\w\s]")
SPACY_MODEL_ENV = "PROBE_SPACY_MODEL"
DEFAULT_SPACY_MODEL = "en_core_web_sm"
MAX_TRIES_PER_VARIANT = 20

# Two-sided relations, as written between their two sides. "and", "with", plain "on"/"in" are left
# out on purpose: "and" is symmetric, and "on"/"in" are mostly positions ("a shape on the left").
RELATIONS: tuple[str, ...] = (
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
)
COPULAS = frozenset({"is", "are", "was", "were"})
NOUN_TAGS = frozenset({"NOUN", "PROPN", "ADJ"})


# ---------------------------------------------------------------- words and word lists


def tokenize(caption: str) -> Tokens:
    """Words (with inner apostrophes/hyphens) and single punctuation marks, in order."""
    return TOKEN_PATTERN.findall(caption)


def detokenize(tokens: Sequence[str]) -> str:
    """Tokens back to a caption: spaces between words, none before closing punctuation."""
    text = " ".join(tokens)
    text = re.sub(r"\s+([,.;:!?)\]}])", r"\1", text)
    return re.sub(r"([(\[{])\s+", r"\1", text)


def is_word(token: str) -> bool:
    return bool(re.match(r"\w", token))


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """The shipped function-word list (vocab/stopwords.txt, package data probe.vocab)."""
    text = data_files().joinpath("stopwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


@lru_cache(maxsize=1)
def attribute_kinds() -> dict[str, str]:
    """word -> kind (colour, size, material, ...): the shapes world's words plus the shipped list."""
    from probe.world.vocab import COLOURS, SIZES

    kinds = {}
    text = data_files().joinpath("attribute_words.tsv").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            word, kind = line.split("\t")[:2]
            kinds[word.strip().lower()] = kind.strip()
    kinds.update(dict.fromkeys(COLOURS, "colour"))
    kinds.update(dict.fromkeys(SIZES, "size"))
    return kinds


def _body_and_tail(tokens: Tokens) -> tuple[Tokens, Tokens]:
    """Split off trailing punctuation ("... square.") so it stays at the end."""
    end = len(tokens)
    while end > 0 and not is_word(tokens[end - 1]):
        end -= 1
    return tokens[:end], tokens[end:]


def _shuffle_positions(tokens: Tokens, positions: list[int], rng: random.Random) -> Tokens | None:
    """Shuffle the tokens at `positions` among themselves; None if there are fewer than two."""
    if len(positions) < 2:
        return None
    values = [tokens[i] for i in positions]
    rng.shuffle(values)
    out = list(tokens)
    for i, value in zip(positions, values, strict=True):
        out[i] = value
    return out


def _trigrams(tokens: Tokens) -> list[Tokens]:
    return [tokens[i : i + 3] for i in range(0, len(tokens), 3)]


# ---------------------------------------------------------------- the perturbations


def shuffle_words(tokens: Tokens, rng: random.Random) -> Tokens | None:
    """All words shuffled; punctuation keeps its place."""
    return _shuffle_positions(tokens, [i for i, t in enumerate(tokens) if is_word(t)], rng)


def shuffle_trigrams(tokens: Tokens, rng: random.Random) -> Tokens | None:
    """Consecutive trigrams kept intact, their order shuffled (ARO's trigram shuffle)."""
    body, tail = _body_and_tail(tokens)
    chunks = _trigrams(body)
    if len(chunks) < 2:
        return None
    rng.shuffle(chunks)
    return [t for chunk in chunks for t in chunk] + tail


def shuffle_within_trigrams(tokens: Tokens, rng: random.Random) -> Tokens | None:
    """Each consecutive trigram shuffled in place (ARO's within-trigram shuffle)."""
    body, tail = _body_and_tail(tokens)
    if len(body) < 2:
        return None
    out = []
    for chunk in _trigrams(body):
        chunk = list(chunk)
        rng.shuffle(chunk)
        out.extend(chunk)
    return out + tail


def shuffle_content_words(tokens: Tokens, rng: random.Random) -> Tokens | None:
    """Content words shuffled among their positions; function words (stop-word list) stay put."""
    stops = stop_words()
    return _shuffle_positions(tokens, [i for i, t in enumerate(tokens) if is_word(t) and t.lower() not in stops], rng)


def attribute_positions(tokens: Tokens) -> list[tuple[int, str]]:
    """(index, kind) of attribute words used as modifiers: followed by a content word, or after a copula."""
    kinds, stops = attribute_kinds(), stop_words()
    found = []
    for i, token in enumerate(tokens):
        kind = kinds.get(token.lower())
        if kind is None:
            continue
        nxt = tokens[i + 1].lower() if i + 1 < len(tokens) else ""
        prev = tokens[i - 1].lower() if i > 0 else ""
        if (is_word(nxt) and nxt not in stops) or prev in COPULAS:
            found.append((i, kind))
    return found


def swap_attributes(tokens: Tokens, rng: random.Random) -> Tokens | None:
    """Two different attribute words of one kind swap nouns:
    'a red circle and a blue square' -> 'a blue circle and a red square'."""
    kinds, stops = attribute_kinds(), stop_words()
    found = attribute_positions(tokens)

    def noun_between(i: int, j: int) -> bool:
        return any(is_word(t) and t.lower() not in stops and t.lower() not in kinds for t in tokens[i + 1 : j])

    pairs = [
        (i, j)
        for a, (i, kind_i) in enumerate(found)
        for j, kind_j in found[a + 1 :]
        if kind_i == kind_j and tokens[i].lower() != tokens[j].lower() and noun_between(i, j)
    ]
    if not pairs:
        return None
    i, j = rng.choice(pairs)
    out = list(tokens)
    out[i], out[j] = tokens[j], tokens[i]
    return out


@lru_cache(maxsize=1)
def _relation_tokens() -> tuple[tuple[str, ...], ...]:
    """Relations as token tuples, longest first so 'to the left of' wins over 'left of'."""
    return tuple(sorted((tuple(r.split()) for r in RELATIONS), key=len, reverse=True))


def relation_spans(tokens: Tokens) -> list[tuple[int, int]]:
    """(start, end) of each relation phrase with words on both sides; a copula before it joins the span."""
    lower = [t.lower() for t in tokens]
    spans, i = [], 0
    while i < len(tokens):
        match = next((rel for rel in _relation_tokens() if tuple(lower[i : i + len(rel)]) == rel), None)
        if match is None:
            i += 1
            continue
        start, end = i, i + len(match)
        if start > 0 and lower[start - 1] in COPULAS:
            start -= 1
        if any(is_word(t) for t in tokens[:start]) and any(is_word(t) for t in tokens[end:]):
            spans.append((start, end))
        i = end
    return spans


def _strip_punctuation(tokens: Tokens) -> Tokens:
    """Drop punctuation at either edge (a side that moves should not drag a comma along)."""
    words = [i for i, t in enumerate(tokens) if is_word(t)]
    return tokens[words[0] : words[-1] + 1] if words else []


def swap_relation(tokens: Tokens, rng: random.Random) -> Tokens | None:
    """The two sides of a relation trade places: 'A left of B' -> 'B left of A'."""
    body, tail = _body_and_tail(tokens)
    spans = relation_spans(body)
    if not spans:
        return None
    start, end = rng.choice(spans)
    left, relation, right = _strip_punctuation(body[:start]), body[start:end], _strip_punctuation(body[end:])
    if [t.lower() for t in left] == [t.lower() for t in right]:
        return None
    return right + relation + left + tail


def shuffle_nouns_adjectives(tokens: Tokens, rng: random.Random, tags: list[str]) -> Tokens | None:
    """Nouns and adjectives shuffled among their positions (ARO; needs a POS tagger)."""
    return _shuffle_positions(tokens, [i for i, tag in enumerate(tags) if tag in NOUN_TAGS and is_word(tokens[i])], rng)


def shuffle_all_but_nouns_adjectives(tokens: Tokens, rng: random.Random, tags: list[str]) -> Tokens | None:
    """Every word except nouns and adjectives shuffled (ARO; needs a POS tagger)."""
    return _shuffle_positions(
        tokens, [i for i, tag in enumerate(tags) if tag not in NOUN_TAGS and is_word(tokens[i])], rng
    )


# ---------------------------------------------------------------- registry


@dataclass(frozen=True)
class Perturbation:
    """A named perturbation; `needs_tagger` ones get part-of-speech tags as a third argument."""

    name: str
    apply: Callable[..., Tokens | None]
    summary: str
    needs_tagger: bool = False
    needs: str = ""  # what a caption must have for it to apply, shown when it applies to none


BUILTIN: tuple[Perturbation, ...] = (
    Perturbation("shuffle-words", shuffle_words, "all words shuffled", needs="two or more words"),
    Perturbation(
        "shuffle-trigrams",
        shuffle_trigrams,
        "order of consecutive trigrams shuffled",
        needs="four or more words (two trigrams to reorder)",
    ),
    Perturbation(
        "shuffle-within-trigrams",
        shuffle_within_trigrams,
        "words shuffled inside each trigram",
        needs="two or more words",
    ),
    Perturbation(
        "shuffle-content-words",
        shuffle_content_words,
        "content words shuffled, function words kept in place",
        needs="two or more content words (not 'a', 'of', ...)",
    ),
    Perturbation(
        "swap-attributes",
        swap_attributes,
        "two same-kind attribute words swap nouns (colour, size, ...)",
        needs="two different same-kind attributes on different nouns ('a red circle and a blue square')",
    ),
    Perturbation(
        "swap-relation",
        swap_relation,
        "the two sides of a relation swapped (A left of B -> B left of A)",
        needs="a relation between two different sides ('A left of B', 'A above B', ...)",
    ),
    Perturbation(
        "shuffle-nouns-adjectives",
        shuffle_nouns_adjectives,
        "nouns and adjectives shuffled (needs spaCy)",
        True,
        needs="two or more nouns or adjectives",
    ),
    Perturbation(
        "shuffle-all-but-nouns-adjectives",
        shuffle_all_but_nouns_adjectives,
        "all but nouns and adjectives shuffled (needs spaCy)",
        True,
        needs="two or more words other than nouns and adjectives",
    ),
)


def registered_perturbations() -> dict[str, Perturbation]:
    """Every perturbation plugins registered (built-ins first), by name."""
    from probe.plugin import perturbations

    return {
        name: Perturbation(name, ext.apply, ext.about, ext.needs_tagger, ext.needs)
        for name, ext in perturbations().items()
    }


def spacy_model_name() -> str:
    return os.environ.get(SPACY_MODEL_ENV, DEFAULT_SPACY_MODEL)


def tagger_available() -> bool:
    """Whether spaCy and its model package are installed (checked without importing them)."""
    return importlib.util.find_spec("spacy") is not None and importlib.util.find_spec(spacy_model_name()) is not None


def list_perturbations(include_unavailable: bool = False) -> list[str]:
    """Names usable now (tagger-based ones only when spaCy with a model is installed)."""
    usable = include_unavailable or tagger_available()
    return [name for name, p in registered_perturbations().items() if usable or not p.needs_tagger]


def describe_perturbations() -> list[tuple[str, str, bool]]:
    """(name, summary, available now) for every registered perturbation."""
    available = tagger_available()
    return [(p.name, p.summary, available or not p.needs_tagger) for p in registered_perturbations().values()]


@lru_cache(maxsize=1)
def spacy_tagger() -> Tagger:
    """Universal POS tags from spaCy for pre-split tokens (loaded once per process)."""
    if not tagger_available():
        raise UsageError(
            f"the noun/adjective shuffles need a part-of-speech tagger: spaCy with the {spacy_model_name()} model",
            hint=(
                f"pip install spacy && python -m spacy download {spacy_model_name()}, or leave these perturbations out"
            ),
        )
    import spacy
    from spacy.tokens import Doc

    nlp = spacy.load(spacy_model_name())

    def tag(tokens: Sequence[str]) -> list[str]:
        return [token.pos_ for token in nlp(Doc(nlp.vocab, words=list(tokens)))]

    return tag


def check_names(names: Sequence[str]) -> list[str]:
    """Validate perturbation names (UsageError naming the valid ones); returns them de-duplicated."""
    known = registered_perturbations()
    unknown = [n for n in names if n not in known]
    if unknown:
        from probe.plugin import perturbations

        hint = perturbations().hint(f"choose from {', '.join(known)}")
        raise UsageError(f"unknown perturbation {unknown[0]!r}", hint=hint)
    if not names:
        raise UsageError("no perturbations chosen", hint=f"choose from {', '.join(list_perturbations())}")
    return list(dict.fromkeys(names))


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def perturb(
    caption: str, names: Sequence[str], seed: int = 0, n_variants: int = 1, tagger: Tagger | None = None
) -> dict[str, list[str]]:
    """Up to `n_variants` distinct perturbed captions per name, never the caption itself; [] where one does not apply.

    Each (seed, name, caption) has its own random stream, so results do not depend on which other
    perturbations or captions are asked for. `tagger` overrides spaCy for the tagger-based ones.
    """
    names = check_names(names)
    known = registered_perturbations()
    if n_variants < 1:
        raise UsageError(f"n_variants must be at least 1, got {n_variants}")
    tokens = tokenize(caption)
    tags = None
    if any(known[n].needs_tagger for n in names):
        tags = (tagger or spacy_tagger())(tokens)
    original = _key(detokenize(tokens))
    out: dict[str, list[str]] = {}
    for name in names:
        p = known[name]
        rng = random.Random(f"{seed}|{name}|{caption}")
        seen, variants = {original}, []
        for _ in range(MAX_TRIES_PER_VARIANT * n_variants):
            new = p.apply(tokens, rng, tags) if p.needs_tagger else p.apply(tokens, rng)
            if new is None:
                break
            text = detokenize(new)
            if _key(text) not in seen:
                seen.add(_key(text))
                variants.append(text)
                if len(variants) == n_variants:
                    break
        out[name] = variants
    return out
