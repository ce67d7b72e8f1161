"""The `invert` experiment step kind. The audits' image-making steps (bias, nsfw) look it up in the
registry to check their invert options and to make their images, so they never import this plugin.

Options: prompts, seeds (or n), preset, settings (overrides), batch. Without `prompts` (as the
audits call it) `normalise` checks only the inversion options.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from probe.plugin import (
    Chunk,
    Item,
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
    quantised,
    safe_name,
)


class InvertStepOptions(StepOptionsModel):
    """The invert step's options, each declared once; `settings` is checked by the invert settings model."""

    prompts: TextList | None = Field(default=None, description="prompts, or a .txt file of them")
    seeds: Seeds | None = Field(default=None, description="seeds per prompt: 0-19, 0,3,7 or a list")
    n: int | None = Field(default=None, ge=1, description="without seeds: n seeds from the experiment's seed")
    preset: str = Field(default="default", min_length=1, description="preset name or .yaml path")
    settings: dict[str, Any] = Field(default_factory=dict, description="invert settings over the preset's")
    batch: int | None = Field(default=None, ge=1, description="images per batched call (default: batch_size)")


OPTIONS: dict[str, Any] = InvertStepOptions.defaults()


def _settings(opts: StepOptions, checked: InvertStepOptions) -> dict:
    from probe_invert.settings import SettingsError, load_preset

    preset, overrides = checked.preset, checked.settings
    try:
        settings = load_preset(preset)
    except ProbeError as exc:
        raise opts.error("preset", str(exc)) from exc
    try:
        return settings.with_overrides(**overrides).to_dict()
    except SettingsError as exc:  # the bad knob's own line: settings.transforms[1].affine.p
        path = ("settings", *exc.loc)
        raise opts.doc.error(opts.path + path, exc.message, hint=exc.hint) from exc


def _normalise(opts: StepOptions) -> dict:
    checked = opts.check(InvertStepOptions)  # types and bounds, each error at its line
    out: dict = {}
    if "prompts" in opts.values:  # an invert step's own (the audits check only the inversion options)
        if checked.prompts is None:
            raise opts.error("prompts", "expected a non-empty list of prompts (or a .txt file of them)")
        out["prompts"] = checked.prompts
        out["seeds"] = opts.seeds(checked.seeds, checked.n)
    out["settings"] = _settings(opts, checked)
    out["batch"] = checked.batch or out["settings"]["batch_size"]
    return out


def _plan(p: PlanInput) -> list[Chunk]:
    name = p.step["name"]
    items = [
        Item(f"{name}/{safe_name(pr)}.s{seed}", name, f"{safe_name(pr)}.s{seed}", {"prompt": pr, "seed": seed})
        for pr in p.step["prompts"]
        for seed in p.step["seeds"]
    ]
    return chunked(name, items, p.step["batch"], p.slot)


def _run(step: StepPlan, chunk: Chunk, ctx: StepContext) -> list[Outcome]:
    """Invert the chunk's (prompt, seed) pairs in one batched call. Interrupted items get no outcome
    (they stay pending and a rerun makes them); done ones carry the 8-bit image."""
    from probe_invert.render import invert_items
    from probe_invert.settings import validate_settings

    settings = validate_settings(step.options["settings"])
    pairs = [(it.params["prompt"], it.params["seed"]) for it in chunk.items]
    found = {
        (inv.prompt, inv.seed): inv for inv in invert_items(ctx.session, pairs, settings, should_stop=ctx.should_stop)
    }
    out = []
    for it in chunk.items:
        inv = found.get((it.params["prompt"], it.params["seed"]))
        if inv is None or inv.status == "interrupted":
            continue
        info = {"cosine": round(float(inv.cosine), 6), "steps": int(inv.steps)}
        if inv.status != "done":
            out.append(
                Outcome(
                    it.id,
                    "failed",
                    info,
                    message=inv.message or f"inversion stopped: {inv.status}",
                    seconds=float(inv.seconds),
                )
            )
        else:
            out.append(Outcome(it.id, "done", info, quantised(inv.image), seconds=float(inv.seconds)))
    return out


def prompt_texts(spec: dict) -> list[str]:
    """The texts of the step's weighted prompts ("a panda | blurry:-0.3" -> both parts)."""
    from probe_invert.prompts import parse_prompt

    return [text for prompt in spec.get("prompts", []) for text, _ in parse_prompt(prompt).parts]


INVERT_STEP = StepKind(
    "invert",
    OPTIONS,
    _normalise,
    _run,
    plan=_plan,
    makes_images=True,
    texts=prompt_texts,
    about="CLIP inversion of prompts x seeds with a preset (and setting overrides)",
    model=InvertStepOptions,
)
