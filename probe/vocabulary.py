"""Vocabularies: word lists that `probe neighbours` searches, with flagged words and their categories."""

from __future__ import annotations

from dataclasses import dataclass, field

from probe.files.cache import content_hash


@dataclass(frozen=True)
class Vocabulary:
    """A word list; `categories` maps flagged words to their category (empty for plain lists).

    `content_hash` covers the words in order: the index built from them depends on nothing else.
    """

    name: str
    words: list[str]
    categories: dict[str, str] = field(default_factory=dict)
    content_hash: str = ""
    source: str = ""

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        """A line, not every word: a notebook printing an index or a result should not dump 50,000 words."""
        flagged = f", {len(self.categories):,} flagged" if self.categories else ""
        source = f", source={self.source!r}" if self.source else ""
        words = f"{len(self.words):,} word{'' if len(self.words) == 1 else 's'}"
        return f"Vocabulary({self.name!r}, {words}{flagged}{source})"

    def is_flagged(self, word: str) -> bool:
        return self.category(word) is not None

    def category(self, word: str) -> str | None:
        """The word's category if it is flagged (case-insensitive), else None."""
        found = self.categories.get(word)
        return found if found is not None else self.categories.get(word.casefold())


def make_vocabulary(
    name: str, words: list[str], categories: dict[str, str] | None = None, source: str = ""
) -> Vocabulary:
    """A Vocabulary with its content hash computed from the words."""
    return Vocabulary(name, list(words), dict(categories or {}), content_hash("\n".join(words)), source)
