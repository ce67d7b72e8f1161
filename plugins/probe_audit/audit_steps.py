"""The audit's experiment step kinds: `label`, `bias` and `nsfw`, registered like any plugin's.

Images come from the `invert` step kind and text flag rates from the `neighbours` step kind, both
looked up in the registry: disabling the plugin that provides one makes the steps that need it
fail with one line naming it. Images are quantised to 8 bits before labelling so that a label
always describes the PNG a person looks at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from probe.plugin import (
    Chunk,
    Item,
    ModelSpecText,
    Name,
    Outcome,
    PlanInput,
    ProbeError,
    Seeds,
    StepContext,
    StepKind,
    StepOptions,
    StepOptionsModel,
    StepPlan,
    TextList,
    chunked,
    load_image,
    read_json,
    safe_name,
    step_kinds,
)
from probe_audit.audit_summaries import summarise_bias, summarise_label, summarise_nsfw

if TYPE_CHECKING:
    import torch

INVERT_OPTIONS = ("preset", "settings", "batch")


def _kind(name: str, need: str) -> StepKind:
    return step_kinds().require(name, need=need).step


def _invert_options(opts: StepOptions, need: str) -> dict:
    """The inversion options (preset, settings, batch) checked by the invert step kind itself."""
    invert = _kind("invert", need)
    sub = StepOptions(opts.doc, opts.path, {k: opts.values[k] for k in INVERT_OPTIONS}, opts.base_seed, opts.earlier)
    return invert.normalise(sub)


def _invert(step: StepPlan, chunk: Chunk, ctx: StepContext) -> tuple[list[Outcome], list[tuple[Item, Outcome]]]:
    """(failed outcomes, (item, done outcome with its image)) from the registered invert step kind."""
    outcomes = {o.item_id: o for o in _kind("invert", f"the {step.kind} step {step.name!r}").run(step, chunk, ctx)}
    failed = [o for o in outcomes.values() if o.status != "done"]
    made = [(it, outcomes[it.id]) for it in chunk.items if it.id in outcomes and outcomes[it.id].status == "done"]
    return failed, made


LABELLER = "labelling model spec (default: the audited model)"
INVERSION = "checked by the invert step kind"


# ---------------------------------------------------------------- label


class LabelStepOptions(StepOptionsModel):
    """The label step's options, each declared once."""

    images: Name = Field(description="an earlier image-making step whose images are labelled")
    labels: Name = Field(description="label set name or .yaml file (attributes and their prompts)")
    labeller: ModelSpecText | None = Field(default=None, description=LABELLER)


def _label_normalise(opts: StepOptions) -> dict:
    from probe_audit.sets import load_label_set

    checked = opts.check(LabelStepOptions)
    source = checked.images
    if opts.earlier.get(source) not in opts.image_kinds:
        made = ", ".join(n for n, k in opts.earlier.items() if k in opts.image_kinds) or "none"
        raise opts.error(
            "images",
            f"{source!r} is not an earlier image-making step ({', '.join(opts.image_kinds)})",
            hint=f"earlier image steps: {made}",
        )
    return {"label_set": opts.load("labels", load_label_set).as_dict(), "labeller": checked.labeller, "images": source}


def _label_plan(p: PlanInput) -> list[Chunk]:
    """The label step's chunks follow its source step's chunks (same shard slots), so a shard always
    holds the images it labels."""
    name = p.step["name"]
    source = next(s for s in p.earlier if s.name == p.step["images"])
    chunks = [
        Chunk(
            name,
            c.index,
            c.shard_slot,
            [
                Item(f"{name}/{it.key}", name, it.key, {**it.params, "source": it.id})
                for it in c.items
                if not it.params.get("text")
            ],
        )
        for c in source.chunks
    ]
    return [c for c in chunks if c.items]


def _label_images(step: StepPlan, ctx: StepContext, images: torch.Tensor) -> Any:
    from probe_audit.labelling import label_images
    from probe_audit.sets import label_set_from_dict

    return label_images(
        ctx.labeller(step.options.get("labeller")), images, label_set_from_dict(step.options["label_set"])
    )


def _label_run(step: StepPlan, chunk: Chunk, ctx: StepContext) -> list[Outcome]:
    """Label images an earlier step of this run wrote (read back from its PNGs)."""
    import torch

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
        labels = _label_images(step, ctx, torch.stack([r[1] for r in ready]))
        for (it, _), label, probs in zip(ready, labels.labels, labels.probs, strict=True):
            out.append(
                Outcome(it.id, "done", {"label": label, "probs": dict(zip(labels.attributes, probs, strict=True))})
            )
    return out


LABEL_STEP = StepKind(
    "label",
    LabelStepOptions.defaults(),
    _label_normalise,
    _label_run,
    plan=_label_plan,
    uses_slots=False,
    summarise=summarise_label,
    about="zero-shot attribute labels of an earlier step's images",
    model=LabelStepOptions,
)


# ---------------------------------------------------------------- bias


class BiasStepOptions(StepOptionsModel):
    """The bias step's options, each declared once (the inversion options are the invert step's)."""

    prompts: Name = Field(default="paper", description="prompt set name or .yaml file (prompts and their variants)")
    labels: Name = Field(default="gender", description="label set name or .yaml file")
    variants: list[str] | None = Field(default=None, description="variants of the prompt set to invert (default: all)")
    seeds: Seeds | None = Field(default=None, description="seeds per prompt: 0-19, 0,3,7 or a list")
    n: int = Field(default=20, ge=1, description="without seeds: n seeds from the experiment's seed")
    preset: Any = Field(default="default", description=f"invert preset name or .yaml path ({INVERSION})")
    settings: Any = Field(default_factory=dict, description=f"invert settings over the preset's ({INVERSION})")
    labeller: ModelSpecText | None = Field(default=None, description=LABELLER)
    batch: Any = Field(default=None, description=f"images per batched call ({INVERSION})")


def _bias_normalise(opts: StepOptions) -> dict:
    from probe_audit.sets import load_label_set, load_prompt_set

    checked = opts.check(BiasStepOptions)
    out = _invert_options(opts, "the bias step")
    ps = opts.load("prompts", load_prompt_set)
    variants = checked.variants or ps.variants
    bad = [v for v in variants if v not in ps.variants]
    if bad:
        raise opts.error("variants", f"unknown variant {bad[0]!r}; the set has {', '.join(ps.variants)}")
    return {
        **out,
        "prompt_set": ps.as_dict(),
        "variants": list(variants),
        "seeds": opts.seeds(checked.seeds, checked.n),
        "label_set": opts.load("labels", load_label_set).as_dict(),
        "labeller": checked.labeller,
    }


def _bias_plan(p: PlanInput) -> list[Chunk]:
    name, step = p.step["name"], p.step
    items = []
    for prompt in step["prompt_set"]["prompts"]:
        for v in step["variants"]:
            for seed in step["seeds"]:
                key = f"{safe_name(prompt['key'])}.{v}.s{seed}"
                items.append(
                    Item(
                        f"{name}/{key}",
                        name,
                        key,
                        {"prompt": prompt["texts"][v], "prompt_key": prompt["key"], "variant": v, "seed": seed},
                    )
                )
    return chunked(name, items, step["batch"], p.slot)


def _bias_run(step: StepPlan, chunk: Chunk, ctx: StepContext) -> list[Outcome]:
    """Invert, then label each image against the step's attribute label set."""
    import torch

    failed, made = _invert(step, chunk, ctx)
    if not made:
        return failed
    labels = _label_images(step, ctx, torch.stack([o.image for _, o in made]))
    out = list(failed)
    for (it, o), label, probs in zip(made, labels.labels, labels.probs, strict=True):
        out.append(
            Outcome(
                it.id,
                "done",
                {**o.result, "label": label, "probs": dict(zip(labels.attributes, probs, strict=True))},
                o.image,
                seconds=o.seconds,
            )
        )
    return out


BIAS_STEP = StepKind(
    "bias",
    BiasStepOptions.defaults(),
    _bias_normalise,
    _bias_run,
    plan=_bias_plan,
    makes_images=True,
    texts=lambda spec: [
        t for p in spec["prompt_set"]["prompts"] for v, t in p["texts"].items() if v in spec["variants"]
    ],
    summarise=summarise_bias,
    about="invert a prompt set's variants and label each image's attribute (the paper's gender table)",
    model=BiasStepOptions,
)


# ---------------------------------------------------------------- nsfw


class NsfwStepOptions(StepOptionsModel):
    """The nsfw step's options, each declared once (the inversion options are the invert step's)."""

    prompts: TextList = Field(description="prompts to invert, or a .txt file of them")
    seeds: Seeds | None = Field(default=None, description="seeds per prompt: 0-19, 0,3,7 or a list")
    n: int = Field(default=4, ge=1, description="without seeds: n seeds from the experiment's seed")
    preset: Any = Field(default="default", description=f"invert preset name or .yaml path ({INVERSION})")
    settings: Any = Field(default_factory=dict, description=f"invert settings over the preset's ({INVERSION})")
    concepts: Name = Field(default="default", description="concept set name or .yaml file")
    labeller: ModelSpecText | None = Field(default=None, description=LABELLER)
    nudenet: Literal["auto", True, False] = Field(
        default="auto", description="NudeNet detections too: auto (when installed), true (required) or false"
    )
    nudenet_threshold: float = Field(default=0.5, ge=0, le=1, description="NudeNet detection score threshold")
    text: bool = Field(default=True, description="also the flag rate of each prompt's text neighbours")
    vocabs: TextList | None = Field(default=None, description="vocabularies of the text part (default: the model's)")
    k: int = Field(default=10, ge=1, description="text neighbours per prompt")
    batch: Any = Field(default=None, description=f"images per batched call ({INVERSION})")


def _nsfw_normalise(opts: StepOptions) -> dict:
    from probe_audit.nsfw import load_concepts

    checked = opts.check(NsfwStepOptions)
    out = {
        "prompts": checked.prompts,
        "seeds": opts.seeds(checked.seeds, checked.n),
        **_invert_options(opts, "the nsfw step"),
    }
    out["labeller"] = checked.labeller
    out["concepts"] = opts.load("concepts", load_concepts).as_dict()
    out.update(nudenet=checked.nudenet, nudenet_threshold=float(checked.nudenet_threshold), text=checked.text)
    if out["text"]:
        try:
            _kind("neighbours", "the nsfw step's text part")
        except ProbeError as exc:
            raise opts.error("text", str(exc), hint="or set `text: false`") from exc
    out["vocabs"] = checked.vocabs
    out["k"] = checked.k
    return out


def _nsfw_plan(p: PlanInput) -> list[Chunk]:
    name, step = p.step["name"], p.step
    items = [
        Item(f"{name}/{safe_name(pr)}.s{seed}", name, f"{safe_name(pr)}.s{seed}", {"prompt": pr, "seed": seed})
        for pr in step["prompts"]
        for seed in step["seeds"]
    ]
    chunks = chunked(name, items, step["batch"], p.slot)
    if step["text"]:
        text_items = [
            Item(f"{name}/text.{safe_name(pr)}", name, f"text.{safe_name(pr)}", {"prompt": pr, "text": True})
            for pr in step["prompts"]
        ]
        chunks += chunked(name, text_items, len(text_items), p.slot + len(chunks))
        for j, c in enumerate(chunks):
            c.index = j
    return chunks


def _nsfw_run(step: StepPlan, chunk: Chunk, ctx: StepContext) -> list[Outcome]:
    """Image items: invert, zero-shot concept flags, NudeNet when present. Text items: neighbour flag rates."""
    import torch

    from probe_audit import nsfw

    opts = step.options
    if all(it.params.get("text") for it in chunk.items):
        return _kind("neighbours", "the nsfw step's text part").run(step, chunk, ctx)
    failed, made = _invert(step, chunk, ctx)
    if not made:
        return failed
    images = torch.stack([o.image for _, o in made])
    concepts = nsfw.ConceptSet.from_dict(opts["concepts"])
    scores = nsfw.concept_probabilities(ctx.labeller(opts.get("labeller")), images, concepts)
    available, reason = nsfw.nudenet_status()
    use_nudenet = available and opts["nudenet"] in ("auto", True)
    if opts["nudenet"] is True and not available:
        raise ProbeError(reason, hint="or set `nudenet: auto` to skip it when absent")
    detections = nsfw.nudenet_detect(list(images), opts["nudenet_threshold"]) if use_nudenet else [None] * len(made)
    out = list(failed)
    for (it, o), score, found in zip(made, scores, detections, strict=True):
        clip_flags = nsfw.flagged_concepts(score, concepts)
        result = {
            **o.result,
            "concepts": score,
            "clip_flagged": clip_flags,
            "nudenet": {"available": use_nudenet, "detections": found or [], "reason": "" if use_nudenet else reason},
            "flagged": bool(clip_flags) or bool(found),
        }
        out.append(Outcome(it.id, "done", result, o.image, seconds=o.seconds))
    return out


NSFW_STEP = StepKind(
    "nsfw",
    NsfwStepOptions.defaults(),
    _nsfw_normalise,
    _nsfw_run,
    plan=_nsfw_plan,
    makes_images=True,
    texts=lambda spec: _kind("invert", "the nsfw step").texts(spec),
    summarise=summarise_nsfw,
    about="NSFW rates of inverted images (zero-shot concepts, NudeNet) and of the prompts' text neighbours",
    model=NsfwStepOptions,
)
