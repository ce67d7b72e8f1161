"""Experiment files: YAML steps -> a normalised, self-contained description -> a plan of items.

Every item has a deterministic id (`step/key`) and belongs to a chunk (one batched model call).
Chunks are dealt round-robin to shards, and a `label` step's chunks follow the chunks of the step
whose images it labels, so a shard always holds the images it needs. Because a shard runs exactly
the chunks an unsharded run would, merged shards equal the unsharded result.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe.cache import content_hash
from probe.errors import ConfigError, UsageError
from probe.io import safe_name
from probe.yamlfile import YamlDoc, read_yaml

KINDS = ("invert", "label", "bias", "nsfw", "neighbours", "shuffle")
IMAGE_KINDS = ("invert", "bias", "nsfw")
STEP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
FORMAT = "clip-probe-experiment/1"

# Options each step kind accepts (besides `name`), with their defaults.
STEP_OPTIONS: dict[str, dict[str, Any]] = {
    "invert": {"prompts": None, "seeds": None, "n": None, "preset": "default", "settings": {}, "batch": None},
    "label": {"images": None, "labels": None, "labeller": None},
    "bias": {"prompts": "paper", "labels": "gender", "variants": None, "seeds": None, "n": 20, "preset": "default",
             "settings": {}, "labeller": None, "batch": None},
    "nsfw": {"prompts": None, "seeds": None, "n": 4, "preset": "default", "settings": {}, "concepts": "default",
             "labeller": None, "nudenet": "auto", "nudenet_threshold": 0.5, "text": True, "vocabs": None, "k": 10, "batch": None},
    "neighbours": {"texts": None, "vocabs": None, "k": 10, "batch": 256},
    "shuffle": {"prompts": None, "perturbations": None, "seed": 0, "n_variants": 1},
}


@dataclass(frozen=True)
class Item:
    """One unit of work and of output: `id` = `step/key`, params say what to compute."""

    id: str
    step: str
    key: str
    params: dict


@dataclass
class Chunk:
    """Items computed together in one batched call; `shard_slot` decides the shard (slot % N)."""

    step: str
    index: int
    shard_slot: int
    items: list[Item]


@dataclass
class StepPlan:
    name: str
    kind: str
    options: dict
    chunks: list[Chunk] = field(default_factory=list)

    @property
    def items(self) -> list[Item]:
        return [it for c in self.chunks for it in c.items]


@dataclass
class Plan:
    """An experiment expanded to items; `spec` is the normalised, JSON-able description (in the manifest)."""

    name: str
    model: str | None
    spec: dict
    steps: list[StepPlan]

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


MAX_SEED = 2**63 - 1  # torch generators take 64-bit seeds
MAX_SEEDS = 100_000

def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' with 0 <= I < N (Slurm's $SLURM_ARRAY_TASK_ID/N)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise UsageError(f"bad shard {text!r}", hint="use I/N, e.g. --shard 0/4 (I from 0 to N-1)")
    index, count = int(m[1]), int(m[2])
    if count < 1 or index >= count:
        raise UsageError(f"bad shard {text!r}: need 0 <= I < N", hint="Slurm: --shard $SLURM_ARRAY_TASK_ID/N with --array=0-(N-1)")
    return index, count


# ---------------------------------------------------------------- YAML -> normalised spec

def parse_seeds(value: Any) -> list[int]:
    """'0-19', '0,3,7', 5 or [0, 1, 2] -> a list of distinct seeds in order."""
    if isinstance(value, bool):
        raise ValueError("seeds must be numbers or ranges like 0-19")
    if isinstance(value, int):
        seeds = [value]
    elif isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        seeds = list(value)
    elif isinstance(value, str):
        seeds = []
        for part in value.split(","):
            m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
            if not m:
                raise ValueError(f"cannot read seeds {value!r}: use ranges like 0-19 or lists like 0,3,7")
            lo, hi = int(m[1]), int(m[2] or m[1])
            if hi < lo:
                raise ValueError(f"empty seed range {part.strip()!r}")
            if hi - lo + len(seeds) >= MAX_SEEDS:
                raise ValueError(f"more than {MAX_SEEDS} seeds in {value!r}")
            seeds.extend(range(lo, hi + 1))
    else:
        raise ValueError("seeds must be a range like 0-19, a list of integers or an integer")
    if not seeds:
        raise ValueError("no seeds")
    if any(s < 0 or s > MAX_SEED for s in seeds):
        raise ValueError(f"seeds go from 0 to {MAX_SEED}")
    if len(set(seeds)) != len(seeds):
        raise ValueError("seeds repeat")
    return seeds


def read_lines(path: Path) -> list[str]:
    """A UTF-8 text file as its non-blank, non-comment (#) lines, stripped."""
    from probe.io import refuse_nul

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"file not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable UTF-8 text file ({type(exc).__name__})") from exc
    refuse_nul(path, text, ConfigError)
    lines = text.splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _text_list(doc: YamlDoc, path: tuple, value: Any, what: str) -> list[str]:
    """A list of non-empty strings, or a path to a .txt file of them (one a line, # comments), relative to the YAML file."""
    if isinstance(value, str) and value.endswith(".txt"):
        file = Path(value)
        if not file.is_absolute() and Path(doc.source).parent.is_dir():
            file = Path(doc.source).parent / file
        try:
            value = read_lines(file)
        except ConfigError as exc:
            raise doc.error(path, str(exc)) from exc
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise doc.error(path, f"expected a non-empty list of {what} (or a .txt file of them)")
    if len(set(value)) != len(value):
        dup = next(v for v in value if value.count(v) > 1)
        raise doc.error(path, f"{what} repeat: {dup!r}")
    return list(value)


def _settings(doc: YamlDoc, path: tuple, preset: Any, overrides: Any) -> dict:
    from probe.errors import ProbeError

    from probe_audit.inverter import load_preset

    if not isinstance(preset, str):
        raise doc.error(path + ("preset",), "expected a preset name or .yaml path")
    if not isinstance(overrides, dict):
        raise doc.error(path + ("settings",), "expected a mapping of invert settings, e.g. {steps: 200}")
    try:
        return load_preset(preset, **overrides).to_dict()
    except ProbeError as exc:
        key = "settings" if overrides else "preset"
        raise doc.error(path + (key,), str(exc)) from exc


def _seeds(doc: YamlDoc, path: tuple, opts: dict, base: int) -> list[int]:
    if opts.get("seeds") is not None:
        try:
            return parse_seeds(opts["seeds"])
        except ValueError as exc:
            raise doc.error(path + ("seeds",), str(exc)) from exc
    n = opts.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise doc.error(path + ("n",), f"n must be a positive integer (images per prompt), got {n!r}")
    return list(range(base, base + n))


def _positive_int(doc: YamlDoc, path: tuple, value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise doc.error(path, f"{what} must be a positive integer, got {value!r}")
    return value


def normalise_step(doc: YamlDoc, path: tuple, kind: str, raw: dict, base_seed: int, earlier: dict[str, str]) -> dict:
    """Check one step's options and resolve names (sets, presets) into their content."""
    from probe.errors import ProbeError

    from probe_audit import sets
    from probe_audit.nsfw import load_concepts

    allowed = STEP_OPTIONS[kind]
    unknown = sorted(set(raw) - set(allowed) - {"name"})
    if unknown:
        raise doc.error(path + (unknown[0],), f"unknown option {unknown[0]!r} for a {kind} step", hint=f"options: name, {', '.join(allowed)}")
    opts = {**allowed, **raw}
    out: dict[str, Any] = {"kind": kind}
    try:
        if kind in ("invert", "nsfw"):
            out["prompts"] = _text_list(doc, path + ("prompts",), opts["prompts"], "prompts")
            out["seeds"] = _seeds(doc, path, opts, base_seed)
        if kind in IMAGE_KINDS:
            out["settings"] = _settings(doc, path, opts["preset"], opts["settings"])
            batch = opts["batch"] if opts["batch"] is not None else out["settings"]["batch_size"]
            out["batch"] = _positive_int(doc, path + ("batch",), batch, "batch")
        if kind == "bias":
            ps = _load(doc, path + ("prompts",), sets.load_prompt_set, opts["prompts"])
            variants = opts["variants"] or ps.variants
            bad = [v for v in variants if v not in ps.variants]
            if bad or not isinstance(variants, list):
                raise doc.error(path + ("variants",), f"unknown variant {bad[0] if bad else variants!r}; the set has {', '.join(ps.variants)}")
            out["prompt_set"] = ps.as_dict()
            out["variants"] = list(variants)
            out["seeds"] = _seeds(doc, path, opts, base_seed)
        if kind in ("label", "bias"):
            out["label_set"] = _load(doc, path + ("labels",), sets.load_label_set, opts["labels"]).as_dict()
        if kind in ("label", "bias", "nsfw"):
            if opts["labeller"] is not None:
                out["labeller"] = _model_spec(doc, path + ("labeller",), opts["labeller"])
            else:
                out["labeller"] = None
        if kind == "label":
            source = _str(doc, path + ("images",), opts["images"])
            if earlier.get(source) not in IMAGE_KINDS:
                raise doc.error(path + ("images",), f"{source!r} is not an earlier invert, bias or nsfw step",
                                hint=f"earlier image steps: {', '.join(n for n, k in earlier.items() if k in IMAGE_KINDS) or 'none'}")
            out["images"] = source
        if kind == "nsfw":
            out["concepts"] = _load(doc, path + ("concepts",), load_concepts, opts["concepts"]).as_dict()
            if opts["nudenet"] not in ("auto", True, False):
                raise doc.error(path + ("nudenet",), "nudenet must be auto, true or false")
            out["nudenet"] = opts["nudenet"]
            out["nudenet_threshold"] = float(opts["nudenet_threshold"])
            out["text"] = bool(opts["text"])
        if kind in ("nsfw", "neighbours"):
            vocabs = opts["vocabs"]
            if vocabs is not None:
                vocabs = _text_list(doc, path + ("vocabs",), vocabs, "vocabularies")
            out["vocabs"] = vocabs
            out["k"] = _positive_int(doc, path + ("k",), opts["k"], "k")
        if kind == "neighbours":
            out["texts"] = _text_list(doc, path + ("texts",), opts["texts"], "texts")
            out["batch"] = _positive_int(doc, path + ("batch",), opts["batch"], "batch")
        if kind == "shuffle":
            out["prompts"] = _text_list(doc, path + ("prompts",), opts["prompts"], "prompts")
            out["perturbations"] = None if opts["perturbations"] is None else _text_list(doc, path + ("perturbations",), opts["perturbations"], "perturbations")
            out["seed"] = int(opts["seed"])
            out["n_variants"] = _positive_int(doc, path + ("n_variants",), opts["n_variants"], "n_variants")
    except ProbeError as exc:
        if str(exc).startswith(doc.source):
            raise
        raise doc.error(path, str(exc)) from exc
    return out


def _load(doc: YamlDoc, path: tuple, loader, value: Any):
    """Load a named set or file, reporting any problem at this option's line."""
    from probe.errors import ProbeError

    name = _str(doc, path, value)
    try:
        return loader(name)
    except ProbeError as exc:
        if str(exc).startswith(doc.source):
            raise
        raise doc.error(path, str(exc)) from exc


def _model_spec(doc: YamlDoc, path: tuple, value: Any) -> str:
    """A model spec that parses (known architecture, tag or file syntax): checked before any model loads."""
    from probe.errors import ProbeError
    from probe.models import parse_model_spec

    text = _str(doc, path, value)
    try:
        parse_model_spec(text)
    except ProbeError as exc:
        raise doc.error(path, str(exc)) from exc
    return text


def _str(doc: YamlDoc, path: tuple, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise doc.error(path, f"expected a name or path, got {value!r}")
    return value


def normalise(doc: YamlDoc, default_name: str = "experiment") -> dict:
    """The whole experiment, checked, with every set and preset resolved to its content."""
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error((), "an experiment must be a mapping with `steps:` (a list of steps)")
    unknown = sorted(set(data) - {"name", "model", "seed", "steps"})
    if unknown:
        raise doc.error((unknown[0],), f"unknown key {unknown[0]!r}", hint="top-level keys: name, model, seed, steps")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise doc.error(("name",), "name must be text")
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise doc.error(("model",), "model must be a model spec string")
    if model is not None:
        _model_spec(doc, ("model",), model)
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise doc.error(("seed",), f"seed must be a non-negative integer, got {seed!r}")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise doc.error(("steps",), "steps must be a non-empty list, e.g. `- invert: {prompts: [a star], n: 4}`")
    steps: list[dict] = []
    kinds: dict[str, str] = {}
    for i, entry in enumerate(raw_steps):
        if not isinstance(entry, dict) or len(entry) != 1:
            raise doc.error(("steps", i), f"each step is one `kind: {{options}}` mapping; kinds: {', '.join(KINDS)}")
        kind, raw = next(iter(entry.items()))
        if kind not in KINDS:
            raise doc.error(("steps", i, kind), f"unknown step kind {kind!r}", hint=f"use one of: {', '.join(KINDS)}")
        raw = raw or {}
        if not isinstance(raw, dict):
            raise doc.error(("steps", i, kind), "step options must be a mapping")
        step_name = raw.get("name") or (kind if kind not in kinds else f"{kind}-{i + 1}")
        if not isinstance(step_name, str) or not STEP_NAME.match(step_name):
            raise doc.error(("steps", i, kind, "name"), f"step name {step_name!r} must be lowercase letters, digits, - or _")
        if step_name in kinds:
            raise doc.error(("steps", i, kind, "name"), f"duplicate step name {step_name!r}")
        step = normalise_step(doc, ("steps", i, kind), kind, raw, seed, kinds)
        steps.append({"name": step_name, **step})
        kinds[step_name] = kind
    return {"format": FORMAT, "name": name, "model": model, "seed": seed, "steps": steps}


def load_experiment(path: Path) -> Plan:
    """Read, check and expand an experiment YAML file."""
    doc = read_yaml(Path(path))
    return plan_from_spec(normalise(doc, Path(path).stem))


# ---------------------------------------------------------------- normalised spec -> plan

def _chunked(step: str, items: list[Item], size: int, slot0: int) -> list[Chunk]:
    return [Chunk(step, j, slot0 + j, items[s : s + size]) for j, s in enumerate(range(0, len(items), size))]


def _image_items(step: dict) -> list[Item]:
    name = step["name"]
    if step["kind"] == "bias":
        out = []
        for p in step["prompt_set"]["prompts"]:
            for v in step["variants"]:
                for seed in step["seeds"]:
                    key = f"{safe_name(p['key'])}.{v}.s{seed}"
                    out.append(Item(f"{name}/{key}", name, key, {"prompt": p["texts"][v], "prompt_key": p["key"], "variant": v, "seed": seed}))
        return out
    return [Item(f"{name}/{safe_name(p)}.s{seed}", name, f"{safe_name(p)}.s{seed}", {"prompt": p, "seed": seed})
            for p in step["prompts"] for seed in step["seeds"]]


def plan_from_spec(spec: dict) -> Plan:
    """Expand a normalised spec to items and chunks; the same spec always gives the same plan."""
    plans: list[StepPlan] = []
    slot = 0
    for step in spec["steps"]:
        kind, name = step["kind"], step["name"]
        sp = StepPlan(name, kind, step)
        if kind in IMAGE_KINDS:
            sp.chunks = _chunked(name, _image_items(step), step["batch"], slot)
            if kind == "nsfw" and step["text"]:
                text_items = [Item(f"{name}/text.{safe_name(p)}", name, f"text.{safe_name(p)}", {"prompt": p, "text": True})
                              for p in step["prompts"]]
                sp.chunks += _chunked(name, text_items, len(text_items), slot + len(sp.chunks))
                for j, c in enumerate(sp.chunks):
                    c.index = j
        elif kind == "label":
            source = next(p for p in plans if p.name == step["images"])
            sp.chunks = [Chunk(name, c.index, c.shard_slot,
                               [Item(f"{name}/{it.key}", name, it.key, {**it.params, "source": it.id}) for it in c.items if not it.params.get("text")])
                         for c in source.chunks]
            sp.chunks = [c for c in sp.chunks if c.items]
        elif kind == "neighbours":
            items = [Item(f"{name}/{safe_name(t)}", name, safe_name(t), {"text": t}) for t in step["texts"]]
            sp.chunks = _chunked(name, items, step["batch"], slot)
        elif kind == "shuffle":
            sp.chunks = [Chunk(name, 0, slot, [Item(f"{name}/report", name, "report", {"prompts": step["prompts"]})])]
        slot += len(sp.chunks) if kind != "label" else 0
        plans.append(sp)
    _check_unique([it for p in plans for it in p.items])
    return Plan(spec["name"], spec.get("model"), spec, plans)


def _check_unique(items: list[Item]) -> None:
    """Two prompts that differ only in punctuation or case would share files: refuse, naming both."""
    seen: dict[str, Item] = {}
    for it in items:
        if it.id in seen:
            a, b = seen[it.id].params, it.params
            raise UsageError(f"prompts {a.get('prompt', a.get('text'))!r} and {b.get('prompt', b.get('text'))!r} map to the same item id {it.id!r}",
                             hint="make them differ in letters or digits")
        seen[it.id] = it
