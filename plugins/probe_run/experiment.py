"""Experiment files: YAML steps -> a normalised, self-contained description -> a plan of items.

Every item has a deterministic id (`step/key`) and belongs to a chunk (one batched model call).
Chunks are dealt round-robin to shards, and a `label` step's chunks follow the chunks of the step
whose images it labels, so a shard always holds the images it needs. Because a shard runs exactly
the chunks an unsharded run would, merged shards equal the unsharded result.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from probe.plugin import (
    Chunk,
    Item,
    PlanInput,
    ProbeError,
    StepKind,
    StepOptions,
    StepPlan,
    UsageError,
    YamlDoc,
    check_model_spec,
    content_hash,
    options_table,
    parse_seeds,
    read_lines,
    read_yaml,
)
from probe.plugin import step_kinds as registered_step_kinds

__all__ = [
    "Chunk",
    "Item",
    "Plan",
    "StepPlan",
    "load_experiment",
    "normalise",
    "parse_seeds",
    "parse_shard",
    "plan_from_spec",
    "read_lines",
    "spec_for_model",
    "steps_digest",
]

STEP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
FORMAT = "clip-probe-experiment/1"


@dataclass
class Plan:
    """An experiment expanded to items; `spec` is the normalised, JSON-able description (in the manifest)."""

    name: str
    model: str | None
    spec: dict
    steps: list[StepPlan]

    @property
    def models(self) -> list[str]:
        """The models of a comparison (`models:` in the file); empty for a one-model experiment."""
        return list(self.spec.get("models") or [])

    @property
    def digest(self) -> str:
        return content_hash(json.dumps(self.spec, sort_keys=True))

    @property
    def items(self) -> list[Item]:
        return [it for s in self.steps for it in s.items]

    def step(self, name: str) -> StepPlan:
        return next(s for s in self.steps if s.name == name)

    def chunks_for(self, shard: tuple[int, int] | None) -> list[Chunk]:
        """The chunks one shard runs (all of them when shard is None), in plan order."""
        chunks = [c for s in self.steps for c in s.chunks]
        if shard is None:
            return chunks
        index, count = shard
        return [c for c in chunks if c.shard_slot % count == index]


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' with 0 <= I < N (Slurm's $SLURM_ARRAY_TASK_ID/N)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise UsageError(f"bad shard {text!r}", hint="use I/N, e.g. --shard 0/4 (I from 0 to N-1)")
    index, count = int(m[1]), int(m[2])
    if count < 1 or index >= count:
        raise UsageError(
            f"bad shard {text!r}: need 0 <= I < N", hint="Slurm: --shard $SLURM_ARRAY_TASK_ID/N with --array=0-(N-1)"
        )
    return index, count


# ---------------------------------------------------------------- YAML -> normalised spec


def step_kinds() -> dict[str, StepKind]:
    """Every registered experiment step kind (built-in plugins' and third parties'), by name."""
    return {name: ext.step for name, ext in registered_step_kinds().items()}


def step_option_tables() -> str:
    """The option tables of docs/probes/experiments.md (markdown), one per built-in step kind,
    generated from the kinds' options models."""
    parts = []
    for name, kind in step_kinds().items():
        if kind.model is not None and kind.model.__module__.startswith("probe_"):
            parts.append(f"`{name}`: {kind.about}\n\n{options_table(kind.model)}")
    return "\n\n".join(parts)


def _kind(name: str, need: str) -> StepKind:
    return registered_step_kinds().require(name, need=need).step


def normalise_step(
    doc: YamlDoc, path: tuple, kind: StepKind, raw: dict, base_seed: int, earlier: dict[str, str]
) -> dict:
    """Check one step's options (the kind's own checks) and resolve names (sets, presets) into content."""
    allowed = kind.options
    unknown = sorted(set(raw) - set(allowed) - {"name"})
    if unknown:
        raise doc.error(
            (*path, unknown[0]),
            f"unknown option {unknown[0]!r} for a {kind.name} step",
            hint=f"options: name, {', '.join(allowed)}",
        )
    image_kinds = tuple(n for n, k in step_kinds().items() if k.makes_images)
    opts = StepOptions(doc, path, {**allowed, **raw}, base_seed, dict(earlier), image_kinds)
    try:
        return {"kind": kind.name, **kind.normalise(opts)}
    except ProbeError as exc:
        if str(exc).startswith(doc.source):
            raise
        raise doc.error(path, str(exc)) from exc


def normalise(doc: YamlDoc, default_name: str = "experiment") -> dict:
    """The whole experiment, checked, with every set and preset resolved to its content."""
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error((), "an experiment must be a mapping with `steps:` (a list of steps)")
    unknown = sorted(set(data) - {"name", "model", "models", "seed", "steps"})
    if unknown:
        raise doc.error(
            (unknown[0],), f"unknown key {unknown[0]!r}", hint="top-level keys: name, model, models, seed, steps"
        )
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise doc.error(("name",), "name must be text")
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise doc.error(("model",), "model must be a model spec string")
    if model is not None:
        check_model_spec(doc, ("model",), model)
    models = _models(doc, data) if "models" in data else None
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise doc.error(("seed",), f"seed must be a non-negative integer, got {seed!r}")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise doc.error(("steps",), "steps must be a non-empty list, e.g. `- invert: {prompts: [a star], n: 4}`")
    steps: list[dict] = []
    kinds: dict[str, str] = {}
    known = step_kinds()
    for i, entry in enumerate(raw_steps):
        if not isinstance(entry, dict) or len(entry) != 1:
            raise doc.error(("steps", i), f"each step is one `kind: {{options}}` mapping; kinds: {', '.join(known)}")
        kind, raw = next(iter(entry.items()))
        if kind not in known:
            try:
                _kind(str(kind), need=f"experiment {name!r}")
            except ProbeError as exc:
                raise doc.error(("steps", i, kind), str(exc)) from exc
        raw = raw or {}
        if not isinstance(raw, dict):
            raise doc.error(("steps", i, kind), "step options must be a mapping")
        step_name = raw.get("name") or (kind if kind not in kinds else f"{kind}-{i + 1}")
        if not isinstance(step_name, str) or not STEP_NAME.match(step_name):
            raise doc.error(
                ("steps", i, kind, "name"), f"step name {step_name!r} must be lowercase letters, digits, - or _"
            )
        if step_name in kinds:
            raise doc.error(("steps", i, kind, "name"), f"duplicate step name {step_name!r}")
        step = normalise_step(doc, ("steps", i, kind), known[kind], raw, seed, kinds)
        steps.append({"name": step_name, **step})
        kinds[step_name] = kind
    if models is not None:  # a comparison: the key is there only then, so a one-model spec is unchanged
        return {"format": FORMAT, "name": name, "model": None, "models": models, "seed": seed, "steps": steps}
    return {"format": FORMAT, "name": name, "model": model, "seed": seed, "steps": steps}


def _models(doc: YamlDoc, data: dict) -> list[str]:
    """`models:` of a comparison: distinct model specs, each checked like `model:` (file:line errors)."""
    if "model" in data:
        raise doc.error(("models",), "give model: (one model) or models: (a comparison), not both")
    models = data["models"]
    if not isinstance(models, list) or not models:
        raise doc.error(
            ("models",), "models must be a non-empty list of model specs, e.g. [shapes-tiny, ViT-B-32@openai]"
        )
    for i, spec in enumerate(models):
        if not isinstance(spec, str) or not spec.strip():
            raise doc.error(("models", i), f"each model must be a model spec string, got {spec!r}")
        check_model_spec(doc, ("models", i), spec)
        if spec in models[:i]:
            raise doc.error(("models", i), f"model {spec!r} is listed twice")
    return list(models)


def spec_for_model(spec: dict, model: str) -> dict:
    """One model's experiment of a comparison: the same steps with `model:` set, exactly the spec a
    file naming that one model gives (so each model's run folder is an ordinary run folder)."""
    return {
        "format": spec["format"],
        "name": spec["name"],
        "model": model,
        "seed": spec["seed"],
        "steps": spec["steps"],
    }


def steps_digest(spec: dict) -> str:
    """The experiment without its model(s): equal for every model of a comparison, and for runs of
    one experiment on different models."""
    return content_hash(json.dumps({k: v for k, v in spec.items() if k not in ("model", "models")}, sort_keys=True))


def load_experiment(path: Path) -> Plan:
    """Read, check and expand an experiment YAML file."""
    doc = read_yaml(Path(path))
    return plan_from_spec(normalise(doc, Path(path).stem))


# ---------------------------------------------------------------- normalised spec -> plan


def _one_item(p: PlanInput) -> list[Chunk]:
    """The plan of a kind without its own: one item, `step/result`."""
    name = p.step["name"]
    return [Chunk(name, 0, p.slot, [Item(f"{name}/result", name, "result", {})])]


def plan_from_spec(spec: dict) -> Plan:
    """Expand a normalised spec to items and chunks; the same spec always gives the same plan."""
    plans: list[StepPlan] = []
    slot = 0
    for step in spec["steps"]:
        kind = _kind(step["kind"], need=f"step {step['name']!r} of experiment {spec['name']!r}")
        chunks = (kind.plan or _one_item)(PlanInput(step, slot, list(plans)))
        slot += len(chunks) if kind.uses_slots else 0
        plans.append(StepPlan(step["name"], kind.name, step, chunks))
    _check_unique([it for p in plans for it in p.items])
    return Plan(spec["name"], spec.get("model"), spec, plans)


def _check_unique(items: list[Item]) -> None:
    """Two prompts that differ only in punctuation or case would share files: refuse, naming both."""
    seen: dict[str, Item] = {}
    for it in items:
        if it.id in seen:
            a, b = seen[it.id].params, it.params
            raise UsageError(
                f"prompts {a.get('prompt', a.get('text'))!r} and {b.get('prompt', b.get('text'))!r} "
                f"map to the same item id {it.id!r}",
                hint="make them differ in letters or digits",
            )
        seen[it.id] = it
