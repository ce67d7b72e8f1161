"""What each step kind computes for one chunk of items: batched model calls, plain outcomes back.

Outcomes carry results and images; the runner alone writes files. Images are quantised to 8 bits
before labelling so that a label always describes the PNG a person looks at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from probe.errors import ProbeError
from probe_audit.experiment import Chunk, StepPlan


@dataclass
class Outcome:
    """One item's result: status done or failed (with a message); image for image-making steps."""

    item_id: str
    status: str
    result: dict = field(default_factory=dict)
    image: torch.Tensor | None = None
    message: str = ""
    seconds: float | None = None  # kept apart from results: timings differ between otherwise equal runs


@dataclass
class StepContext:
    """What executors need: the audited session, a way to get labeller sessions, the run folder."""

    session: Any
    session_for: Callable[[str], Any]
    folder: Path
    should_stop: Callable[[], bool] | None = None
    labellers: dict[str, dict] = field(default_factory=dict)

    def labeller(self, spec: str | None):
        """The labelling session: the audited model unless the step names another."""
        if not spec:
            return self.session
        session = self.session_for(spec)
        self.labellers[spec] = session.describe()
        return session


def quantised(image: torch.Tensor) -> torch.Tensor:
    """The image as its 8-bit PNG will hold it."""
    return image.detach().float().clamp(0, 1).mul(255).round().div(255).cpu()


def _invert(step: StepPlan, chunk: Chunk, ctx: StepContext) -> tuple[list[Outcome], list[tuple[Any, torch.Tensor]]]:
    """Invert the chunk's (prompt, seed) pairs; returns failed outcomes and (item, image) for the rest."""
    from probe_audit.inverter import invert_pairs

    pairs = [(it.params["prompt"], it.params["seed"]) for it in chunk.items]
    found = invert_pairs(ctx.session, pairs, step.options["settings"], should_stop=ctx.should_stop)
    failed, made = [], []
    for it in chunk.items:
        inv = found.get((it.params["prompt"], it.params["seed"]))
        if inv is None or inv.status == "interrupted":
            continue  # stays pending; a rerun makes it
        info = {"cosine": round(float(inv.cosine), 6), "steps": int(inv.steps)}
        if inv.status != "done":
            message = getattr(inv, "message", "") or f"inversion stopped: {inv.status}"
            failed.append(Outcome(it.id, "failed", info, message=message, seconds=float(inv.seconds)))
            continue
        made.append((it, quantised(inv.image), info, float(inv.seconds)))
    return failed, made


def run_invert(step: StepPlan, chunk: Chunk, ctx: StepContext) -> list[Outcome]:
    failed, made = _invert(step, chunk, ctx)
    return failed + [Outcome(it.id, "done", info, image, seconds=sec) for it, image, info, sec in made]


def run_bias(step: StepPlan, chunk: Chunk, ctx: StepContext) -> list[Outcome]:
    """Invert, then label each image against the step's attribute label set."""
    from probe_audit.labelling import label_images
    from probe_audit.sets import label_set_from_dict

    failed, made = _invert(step, chunk, ctx)
    if not made:
        return failed
    labels = label_images(ctx.labeller(step.options.get("labeller")), torch.stack([m[1] for m in made]),
                          label_set_from_dict(step.options["label_set"]))
    out = list(failed)
    for (it, image, info, sec), label, probs in zip(made, labels.labels, labels.probs):
        out.append(Outcome(it.id, "done", {**info, "label": label, "probs": dict(zip(labels.attributes, probs))}, image, seconds=sec))
    return out


def run_label(step: StepPlan, chunk: Chunk, ctx: StepContext) -> list[Outcome]:
    """Label images an earlier step of this run wrote (read back from its PNGs)."""
    from probe.io import load_image, read_json
    from probe_audit.labelling import label_images
    from probe_audit.sets import label_set_from_dict

    out, ready = [], []
    for it in chunk.items:
        src = it.params["source"]
        record_path = ctx.folder / "items" / f"{src}.json"
        record = read_json(record_path) if record_path.is_file() else None
        if not record or record.get("status") != "done" or not record.get("image"):
            out.append(Outcome(it.id, "failed", message=f"source image {src} is missing or failed"))
            continue
        ready.append((it, load_image(ctx.folder / record["image"])))
    if ready:
        labels = label_images(ctx.labeller(step.options.get("labeller")), torch.stack([r[1] for r in ready]),
                              label_set_from_dict(step.options["label_set"]))
        for (it, _), label, probs in zip(ready, labels.labels, labels.probs):
            out.append(Outcome(it.id, "done", {"label": label, "probs": dict(zip(labels.attributes, probs))}))
    return out


def run_nsfw(step: StepPlan, chunk: Chunk, ctx: StepContext) -> list[Outcome]:
    """Image items: invert, zero-shot concept flags, NudeNet when present. Text items: neighbour flag rates."""
    from probe_audit import nsfw

    opts = step.options
    if all(it.params.get("text") for it in chunk.items):
        rows = nsfw.text_flag_rates(ctx.session, [it.params["prompt"] for it in chunk.items], opts["vocabs"], opts["k"])
        return [Outcome(it.id, "done", row) for it, row in zip(chunk.items, rows)]
    failed, made = _invert(step, chunk, ctx)
    if not made:
        return failed
    images = torch.stack([m[1] for m in made])
    concepts = nsfw.ConceptSet.from_dict(opts["concepts"])
    scores = nsfw.concept_probabilities(ctx.labeller(opts.get("labeller")), images, concepts)
    available, reason = nsfw.nudenet_status()
    use_nudenet = available and opts["nudenet"] in ("auto", True)
    if opts["nudenet"] is True and not available:
        raise ProbeError(reason, hint="or set `nudenet: auto` to skip it when absent")
    detections = nsfw.nudenet_detect(list(images), opts["nudenet_threshold"]) if use_nudenet else [None] * len(made)
    out = list(failed)
    for (it, image, info, sec), score, found in zip(made, scores, detections):
        clip_flags = nsfw.flagged_concepts(score, concepts)
        result = {**info, "concepts": score, "clip_flagged": clip_flags,
                  "nudenet": {"available": use_nudenet, "detections": found or [], "reason": "" if use_nudenet else reason},
                  "flagged": bool(clip_flags) or bool(found)}
        out.append(Outcome(it.id, "done", result, image, seconds=sec))
    return out


def run_neighbours(step: StepPlan, chunk: Chunk, ctx: StepContext) -> list[Outcome]:
    from probe_audit.nsfw import text_flag_rates

    rows = text_flag_rates(ctx.session, [it.params["text"] for it in chunk.items], step.options["vocabs"], step.options["k"])
    return [Outcome(it.id, "done", row) for it, row in zip(chunk.items, rows)]


def run_shuffle(step: StepPlan, chunk: Chunk, ctx: StepContext) -> list[Outcome]:
    try:
        from probe_shuffle.perturbations import list_perturbations
        from probe_shuffle.scoring import text_shuffle_test
    except ImportError as exc:
        raise ProbeError("the shuffle plugin (probe_shuffle) is not available") from exc
    opts = step.options
    names = opts["perturbations"] or list_perturbations()
    report = text_shuffle_test(ctx.session, opts["prompts"], names, seed=opts["seed"], n_variants=opts["n_variants"])
    return [Outcome(chunk.items[0].id, "done", {"report": report.as_dict()})]


EXECUTORS: dict[str, Callable[[StepPlan, Chunk, StepContext], list[Outcome]]] = {
    "invert": run_invert, "bias": run_bias, "label": run_label, "nsfw": run_nsfw,
    "neighbours": run_neighbours, "shuffle": run_shuffle,
}


def run_chunk(step: StepPlan, chunk: Chunk, ctx: StepContext) -> list[Outcome]:
    """Compute one chunk; a ProbeError fails the chunk's items with its message instead of the run."""
    try:
        return EXECUTORS[step.kind](step, chunk, ctx)
    except ProbeError as exc:
        return [Outcome(it.id, "failed", message=str(exc)) for it in chunk.items]
