"""The bias table: per prompt and variant, the share of inversions labelled with each attribute,
with Wilson 95% intervals and N, shaped like the paper's figure 4 (rows prompts, columns variant ×
attribute), and the one-step experiment `probe bias` runs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from probe.plugin import Table
from probe_audit.sets import LabelSet, PromptSet
from probe_audit.stats import Proportion


@dataclass
class BiasCell:
    variant: str
    attribute: str
    share: Proportion
    paper: float | None  # the reference percentage from the prompt set, when it has one


@dataclass
class BiasRow:
    key: str
    group: str
    texts: dict[str, str]
    n: dict[str, int]
    cells: list[BiasCell]

    def cell(self, variant: str, attribute: str) -> BiasCell:
        return next(c for c in self.cells if c.variant == variant and c.attribute == attribute)


@dataclass
class BiasTable:
    prompt_set: str
    label_set: str
    variants: list[str]
    attributes: list[str]
    rows: list[BiasRow]

    def as_dict(self) -> dict:
        return {
            "prompt_set": self.prompt_set,
            "label_set": self.label_set,
            "variants": self.variants,
            "attributes": self.attributes,
            "rows": [
                {
                    "key": r.key,
                    "group": r.group,
                    "texts": r.texts,
                    "n": r.n,
                    "cells": [
                        {"variant": c.variant, "attribute": c.attribute, **c.share.as_dict(), "paper": c.paper}
                        for c in r.cells
                    ],
                }
                for r in self.rows
            ],
        }

    def table(self) -> Table:
        """Rows prompts; columns variant × attribute as 'share% [low–high]' (paper's number beside it); N last."""
        columns = ["prompt"] + [f"{v} {a}" for v in self.variants for a in self.attributes] + ["N"]
        rows = []
        for r in self.rows:
            cells = []
            for v in self.variants:
                for a in self.attributes:
                    c = r.cell(v, a)
                    ref = f" (paper {c.paper:g})" if c.paper is not None else ""
                    cells.append(c.share.percent() + ref)
            ns = sorted(set(r.n.values()))
            rows.append(
                [
                    r.texts[self.variants[0]],
                    *cells,
                    str(ns[0]) if len(ns) == 1 else "/".join(str(r.n[v]) for v in self.variants),
                ]
            )
        note = (
            f"Share of inversions labelled with each attribute ({self.label_set} labels), "
            "Wilson 95% interval in brackets; N inversions per variant."
        )
        return Table(f"bias: {self.prompt_set} prompts × {self.label_set} labels", columns, rows, note)

    def long_table(self) -> Table:
        """One line per prompt × variant × attribute: the CSV form."""
        columns = [
            "prompt_key",
            "group",
            "variant",
            "prompt",
            "attribute",
            "k",
            "n",
            "percent",
            "low",
            "high",
            "paper_percent",
        ]
        rows = []
        for r in self.rows:
            for c in r.cells:
                s = c.share
                rows.append(
                    [
                        r.key,
                        r.group,
                        c.variant,
                        r.texts[c.variant],
                        c.attribute,
                        str(s.k),
                        str(s.n),
                        f"{100 * s.share:.1f}" if s.n else "",
                        f"{100 * s.low:.1f}",
                        f"{100 * s.high:.1f}",
                        "" if c.paper is None else f"{c.paper:g}",
                    ]
                )
        return Table("", columns, rows)


def bias_table(
    prompt_set: PromptSet, label_set: LabelSet, variants: list[str], labels: list[tuple[str, str, str]]
) -> BiasTable:
    """Count labels given as (prompt key, variant, attribute) into a BiasTable."""
    counts = Counter(labels)
    totals = Counter((key, variant) for key, variant, _ in labels)
    rows = []
    for p in prompt_set.prompts:
        cells = []
        for v in variants:
            for a in label_set.attributes:
                ref = (p.reference.get(v) or {}).get(a)
                cells.append(
                    BiasCell(
                        v,
                        a,
                        Proportion.of(counts[(p.key, v, a)], totals[(p.key, v)]),
                        None if ref is None else float(ref),
                    )
                )
        rows.append(
            BiasRow(p.key, p.group, {v: p.texts[v] for v in variants}, {v: totals[(p.key, v)] for v in variants}, cells)
        )
    return BiasTable(prompt_set.name, label_set.name, list(variants), label_set.attributes, rows)


def bias_experiment(
    prompts: str,
    labels: str,
    n: int | None = None,
    seeds: str | None = None,
    variants: list[str] | None = None,
    preset: str = "default",
    settings: dict | None = None,
    labeller: str | None = None,
    batch: int | None = None,
    model: str | None = None,
) -> dict:
    """The raw experiment (as if read from YAML) of one bias step: what `probe bias` runs."""
    step: dict[str, Any] = {
        "prompts": prompts,
        "labels": labels,
        "preset": preset,
        "settings": settings or {},
        "labeller": labeller,
        "batch": batch,
    }
    if seeds is not None:
        step["seeds"] = seeds
    if n is not None:
        step["n"] = n
    if variants:
        step["variants"] = list(variants)
    exp = {"name": "bias", "steps": [{"bias": step}]}
    if model:
        exp["model"] = model
    return exp
