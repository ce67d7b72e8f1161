"""The `neighbours` experiment step kind: each text's k nearest vocabulary words and its flag rate.

Other steps reach it through the registry (the nsfw audit's text part runs it on its prompts).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import Field

from probe.plugin import (
    Chunk,
    Item,
    Outcome,
    PlanInput,
    StepContext,
    StepKind,
    StepOptions,
    StepOptionsModel,
    StepPlan,
    TextList,
    chunked,
    safe_name,
)


def text_flag_rates(session: Any, prompts: list[str], vocabs: list[str] | None, k: int) -> list[dict]:
    """Per prompt, its k nearest vocabulary words and the share of them that is flagged."""
    from probe_neighbours.query import flag_rate, text_neighbours
    from probe_neighbours.vocabularies import default_vocabs

    chosen = vocabs if vocabs else default_vocabs(session)
    results = text_neighbours(session, prompts, chosen, k)
    return [
        {
            "prompt": prompt,
            "vocabs": list(chosen),
            "k": k,
            "flag_rate": float(flag_rate([result]).overall),
            "neighbours": neighbour_rows(result),
        }
        for prompt, result in zip(prompts, results, strict=True)
    ]


def neighbour_rows(result: Any) -> list[dict]:
    """A NeighbourResult as JSON rows (word, cosine, flagged, category)."""
    data = result.as_dict() if hasattr(result, "as_dict") else asdict(result)
    rows = data.get("neighbours") or data.get("words") or []
    return [dict(r) if isinstance(r, dict) else {"word": str(r)} for r in rows]


class NeighboursStepOptions(StepOptionsModel):
    """The neighbours step's options, each declared once."""

    texts: TextList = Field(description="texts whose nearest vocabulary words are listed")
    vocabs: TextList | None = Field(default=None, description="vocabularies to search (default: the model's)")
    k: int = Field(default=10, ge=1, description="neighbours per text")
    batch: int = Field(default=256, ge=1, description="texts per batched call")


def _normalise(opts: StepOptions) -> dict:
    return opts.check(NeighboursStepOptions).model_dump()


def _plan(p: PlanInput) -> list[Chunk]:
    name = p.step["name"]
    items = [Item(f"{name}/{safe_name(t)}", name, safe_name(t), {"text": t}) for t in p.step["texts"]]
    return chunked(name, items, p.step["batch"], p.slot)


def _run(step: StepPlan, chunk: Chunk, ctx: StepContext) -> list[Outcome]:
    texts = [it.params["prompt"] if "prompt" in it.params else it.params["text"] for it in chunk.items]
    rows = text_flag_rates(ctx.session, texts, step.options["vocabs"], step.options["k"])
    return [Outcome(it.id, "done", row) for it, row in zip(chunk.items, rows, strict=True)]


NEIGHBOURS_STEP = StepKind(
    "neighbours",
    NeighboursStepOptions.defaults(),
    _normalise,
    _run,
    plan=_plan,
    texts=lambda spec: list(spec["texts"]),
    about="each text's k nearest vocabulary words and the share of them that is flagged",
    model=NeighboursStepOptions,
)
