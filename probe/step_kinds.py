"""Experiment step kinds: what a plugin registers (`register_experiment_steps`) so that experiment
files (`probe run EXP.yaml`) can use it, and the plain objects the runner passes around.

A step kind checks its YAML options into a JSON-able spec (`normalise`), expands the spec into
items grouped in chunks (`plan`), and computes one chunk at a time (`run`), returning one Outcome
per item. The runner alone writes files, so resumes, shards and merges work for every kind.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from probe.errors import ConfigError, ProbeError
from probe.files.checks import refuse_nul
from probe.models.specs import parse_model_spec

if TYPE_CHECKING:
    import torch

    from probe.files.yamldoc import YamlDoc
    from probe.markup import Table


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
    """One step of a plan: its name, kind, normalised options and chunks of items."""

    name: str
    kind: str
    options: dict
    chunks: list[Chunk] = field(default_factory=list)

    @property
    def items(self) -> list[Item]:
        return [it for c in self.chunks for it in c.items]

    def done_records(self, records: dict[str, dict]) -> list[dict]:
        """The records of this step's finished items, in plan order (what its summary counts)."""
        return [records[it.id] for it in self.items if records.get(it.id, {}).get("status") == "done"]

    def status_counts(self, records: dict[str, dict]) -> dict[str, int]:
        """Items by status (done, failed, pending) for this step's summary."""
        return dict(Counter(records.get(it.id, {}).get("status", "pending") for it in self.items))


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
    """What a step needs to run: the audited session, a way to get other models' sessions, the run folder."""

    session: Any
    session_for: Callable[[str], Any]
    folder: Path
    should_stop: Callable[[], bool] | None = None
    labellers: dict[str, dict] = field(default_factory=dict)

    def labeller(self, spec: str | None) -> Any:
        """The labelling session: the audited model unless the step names another."""
        if not spec:
            return self.session
        session = self.session_for(spec)
        self.labellers[spec] = session.describe()
        return session


def chunked(step: str, items: list[Item], size: int, slot0: int) -> list[Chunk]:
    """Items in chunks of `size`, with consecutive shard slots from `slot0`."""
    return [Chunk(step, j, slot0 + j, items[s : s + size]) for j, s in enumerate(range(0, len(items), size))]


@dataclass
class PlanInput:
    """What `StepKind.plan` gets: the step's normalised spec, its first shard slot, earlier steps' plans."""

    step: dict
    slot: int
    earlier: list[StepPlan]


@dataclass
class SheetCell:
    """One image of a summary group: the short caption of contact sheets, and what a report tile shows."""

    image: str  # path relative to the run folder
    caption: str
    flagged: bool = False
    prompt: str = ""  # the full prompt the image was inverted from
    seed: int | None = None
    label: str = ""  # e.g. the zero-shot label, or which NSFW concepts flagged it
    cosine: float | None = None  # image-text cosine similarity at the end of the inversion
    variant: str = ""


@dataclass
class StepSummary:
    """What `StepKind.summarise` returns: one step's table, its JSON data and image groups (a contact
    sheet each), and how the report shows it: `title` and `intro` in words, a step `chart`, and per
    group an optional `heading`, `variants` ([variant, text] pairs) and `chart`. Charts are plain data
    (`{"title", "y_title", "colours", "groups": [{"name", "bars": [{"series", "k", "n", "share", "low",
    "high", "paper"}]}]}`) that the report draws; every text is escaped where it is drawn."""

    name: str
    kind: str
    table: Table
    data: dict
    sheets: dict[str, list[SheetCell]] = field(default_factory=dict)
    title: str = ""
    intro: str = ""
    chart: dict | None = None
    groups: dict[str, dict] = field(default_factory=dict)


@dataclass
class StepKind:
    """An experiment step kind.

    - `options`: accepted YAML options (besides `name`) with their defaults.
    - `normalise(StepOptions) -> dict`: the checked options, resolved to content (JSON-able).
    - `plan(PlanInput) -> list[Chunk]`: the step's items in chunks (default: `items` in one chunk).
    - `run(StepPlan, Chunk, StepContext) -> list[Outcome]`: compute one chunk.
    - `makes_images`: outcomes carry images (later `label` steps may label them).
    - `uses_slots`: its chunks take new shard slots (False for steps that follow another step's chunks).
    - `texts(spec) -> list[str]`: the texts the step encodes with the audited model, checked against
      its context before the model loads (optional).
    - `summarise(StepPlan, records) -> StepSummary`: its table, data and image groups from the item
      records (optional; default: one table row per finished item with its result's plain values).
    """

    name: str
    options: dict[str, Any]
    normalise: Callable[[StepOptions], dict]
    run: Callable[[StepPlan, Chunk, StepContext], list[Outcome]]
    plan: Callable[[PlanInput], list[Chunk]] | None = None
    makes_images: bool = False
    uses_slots: bool = True
    about: str = ""
    texts: Callable[[dict], list[str]] | None = None
    summarise: Callable[[StepPlan, dict[str, dict]], StepSummary] | None = None


# ---------------------------------------------------------------- checking YAML options

MAX_SEED = 2**63 - 1  # torch generators take 64-bit seeds
MAX_SEEDS = 100_000


def parse_seeds(value: Any) -> list[int]:
    """'0-19', '0,3,7', 5 or [0, 1, 2] -> a list of distinct seeds in order: the one seed syntax of the
    command line (`--seeds`) and experiment files (`seeds:`). A repeated seed counts once."""
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
    return list(dict.fromkeys(seeds))


Seeds = Annotated[list[int], BeforeValidator(parse_seeds)]
"""A seeds option in a step's options model: '0-19', '0,3,7', 5 or [0, 1, 2], read by `parse_seeds`."""


class StepOptionsModel(BaseModel):
    """Base of a step kind's options model: each option declared once (type, bounds, default,
    description); an unknown option or a wrong type is an error at its line (strict: "3" is no int)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The options with their defaults, as `StepKind.options` lists them."""
        return {name: f.get_default(call_default_factory=True) for name, f in cls.model_fields.items()}


M = TypeVar("M", bound=BaseModel)


def read_lines(path: Path) -> list[str]:
    """A UTF-8 text file as its non-blank, non-comment (#) lines, stripped; NUL bytes are refused."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"file not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable UTF-8 text file ({type(exc).__name__})") from exc
    refuse_nul(path, text, ConfigError)
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


@dataclass
class StepOptions:
    """One step's options (defaults filled in) with checkers that report errors at the option's line."""

    doc: YamlDoc
    path: tuple
    values: dict
    base_seed: int
    earlier: dict[str, str]  # earlier step name -> kind
    image_kinds: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def error(self, key: str | None, message: str, hint: str | None = None) -> ProbeError:
        return self.doc.error(self.path + ((key,) if key else ()), message, hint=hint)

    def check(self, model: type[M]) -> M:
        """The options through a pydantic model; the first problem is a ConfigError at its line."""
        try:
            return model.model_validate({k: v for k, v in self.values.items() if k != "name"})
        except ValidationError as exc:
            err = exc.errors()[0]
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown option"
            elif "input" in err and not isinstance(err["input"], dict):
                message = f"{message}, got {err['input']!r}"
            raise self.doc.error(self.path + tuple(err["loc"]), message) from None

    def text_list(self, key: str, what: str) -> list[str]:
        """A non-empty list of distinct non-empty strings, or a path to a .txt file of them (relative to the YAML)."""
        value = self.values[key]
        if isinstance(value, str) and value.endswith(".txt"):
            file = Path(value)
            if not file.is_absolute() and Path(self.doc.source).parent.is_dir():
                file = Path(self.doc.source).parent / file
            try:
                value = read_lines(file)
            except ConfigError as exc:
                raise self.error(key, str(exc)) from exc
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.error(key, f"expected a non-empty list of {what} (or a .txt file of them)")
        if len(set(value)) != len(value):
            dup = next(v for v in value if value.count(v) > 1)
            raise self.error(key, f"{what} repeat: {dup!r}")
        return list(value)

    def seeds(self) -> list[int]:
        """`seeds:` if given, else `n:` seeds counted from the experiment's base seed."""
        if self.values.get("seeds") is not None:
            try:
                return parse_seeds(self.values["seeds"])
            except ValueError as exc:
                raise self.error("seeds", str(exc)) from exc
        n = self.values.get("n")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise self.error("n", f"n must be a positive integer (images per prompt), got {n!r}")
        return list(range(self.base_seed, self.base_seed + n))

    def positive_int(self, key: str, what: str | None = None) -> int:
        value = self.values[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.error(key, f"{what or key} must be a positive integer, got {value!r}")
        return value

    def string(self, key: str) -> str:
        value = self.values[key]
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a name or path, got {value!r}")
        return value

    def model_spec(self, key: str) -> str | None:
        """An optional model spec that parses (known architecture, tag or file syntax): checked
        before any model loads."""
        if self.values.get(key) is None:
            return None
        return check_model_spec(self.doc, (*self.path, key), self.string(key))

    def load(self, key: str, loader: Callable[[str], Any]) -> Any:
        """Load a named set or file, reporting any problem at this option's line."""
        name = self.string(key)
        try:
            return loader(name)
        except ProbeError as exc:
            if str(exc).startswith(self.doc.source):
                raise
            raise self.error(key, str(exc)) from exc


def check_model_spec(doc: YamlDoc, path: tuple, text: str) -> str:
    """`text` if it parses as a model spec, else a ConfigError at its YAML line."""
    try:
        parse_model_spec(text)
    except ProbeError as exc:
        raise doc.error(path, str(exc)) from exc
    return text


def quantised(image: torch.Tensor) -> torch.Tensor:
    """The image as its 8-bit PNG will hold it (labels then describe the PNG a person looks at)."""
    return image.detach().float().clamp(0, 1).mul(255).round().div(255).cpu()
