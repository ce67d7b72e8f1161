"""`probe.neighbours(...)`: nearest vocabulary words for scripts and notebooks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Neighbours:
    """Each query's k nearest words (flagged ones marked); Jupyter shows one table per query."""

    results: list[Any]
    vocabs: list[str]
    k: int
    model: dict

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, i: int) -> Any:
        return self.results[i]

    def flag_rate(self) -> Any:
        """A FlagRate: the share of flagged words in each query's top-k and pooled over all queries,
        as `probe neighbours --flag-rate` reports it."""
        from probe_neighbours.query import flag_rate

        return flag_rate(self.results)

    def flag_rate_notes(self) -> list[str]:
        """Why the flag rates say nothing, if they cannot (the vocabularies hold no flagged word, or only
        flagged words): the note `probe neighbours --flag-rate` prints."""
        from probe_neighbours.query import flag_rate_caveat
        from probe_neighbours.vocabularies import load_vocab

        caveat = flag_rate_caveat([load_vocab(name) for name in dict.fromkeys(self.vocabs)])
        return [caveat] if caveat else []

    def as_dict(self) -> dict:
        return {"model": self.model, "vocabs": self.vocabs, "k": self.k, "results": [asdict(r) for r in self.results]}

    def _repr_html_(self) -> str:
        from probe.plugin import html_table

        return "".join(
            html_table(
                ["#", "word", "cosine", "vocab", "flagged"],
                [
                    [i, n.word, f"{n.score:.3f}", n.vocab, n.category or ("yes" if n.flagged else "")]
                    for i, n in enumerate(r.neighbours, 1)
                ],
                r.query,
            )
            for r in self.results
        )


def neighbours(
    session: Any, texts: str | Sequence[str] = (), vocabs: Sequence[str] | None = None, k: int = 10, images: Any = None
) -> Neighbours:
    """Nearest vocabulary words of texts (and of images, if given: a [B,3,H,W] batch in [0,1], or a
    list of [3,H,W] tensors, photo paths or PIL images; photos go through the model's own preprocessing).

    vocabs: registered names (`probe vocabs`) or word-list files; default: the model's default lists.
    """
    import torch

    from probe_neighbours.query import image_neighbours, text_neighbours
    from probe_neighbours.vocabularies import default_vocabs

    texts = [texts] if isinstance(texts, str) else list(texts)
    chosen = list(vocabs) if vocabs else default_vocabs(session)
    results = text_neighbours(session, texts, chosen, k) if texts else []
    if images is not None:
        if not isinstance(images, torch.Tensor):
            items = [images] if isinstance(images, (str, Path)) or hasattr(images, "convert") else list(images)
            images = torch.cat([session.prepare(im).cpu() for im in items])
        results += image_neighbours(session, images, [f"image {i}" for i in range(images.shape[0])], chosen, k)
    return Neighbours(results, chosen, k, session.describe())
