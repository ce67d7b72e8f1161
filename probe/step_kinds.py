"""Experiment step kinds: what a plugin registers (`register_experiment_steps`) so that experiment
files (`probe run EXP.yaml`) can use it, and the plain objects the runner passes around.

A step kind checks its YAML options into a JSON-able spec (`normalise`), expands the spec into
items grouped in chunks (`plan`), and computes one chunk at a time (`run`), returning one Outcome
per item. The runner alone writes files, so resumes, shards and merges work for every kind.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, ValidationInfo
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from probe.errors import ConfigError, ProbeError, short_repr
from probe.files.checks import check_regular_file, not_regular, refuse_nul
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
    - `model`: the kind's options model (a `StepOptionsModel`), where `options` come from
      (`Model.defaults()`) and the docs' option tables are generated from (optional).
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
    model: type[BaseModel] | None = None


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
    description); an unknown option or a wrong type is an error at its line (strict: "3" is no int).
    An option without a default is required: it defaults to None in `StepKind.options`, and its type
    says what None means (a `TextList` refuses it with "expected a non-empty list of ...")."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The options with their defaults (None for a required one), as `StepKind.options` lists them."""
        return {
            name: None if f.is_required() else f.get_default(call_default_factory=True)
            for name, f in cls.model_fields.items()
        }


M = TypeVar("M", bound=BaseModel)


def read_lines(path: Path) -> list[str]:
    """A UTF-8 text file as its non-blank, non-comment (#) lines, stripped; NUL bytes are refused."""
    return [line for _, line in numbered_lines(path)]


def numbered_lines(path: Path, what: str = "", error: type[ProbeError] = ConfigError) -> list[tuple[int, str]]:
    """(line number, stripped line) of a UTF-8 text file's non-blank, non-comment (#) lines: the one
    reader of line files (prompts, texts). A missing, unreadable, non-UTF-8 or NUL-holding file is an
    `error` naming it (`what`: e.g. "prompts", for "prompts file not found: PATH")."""
    path = Path(path)
    if not_regular(path) not in (None, "a folder"):  # a FIFO or device would never end: refused unopened
        check_regular_file(path, f"{what} file" if what else "file", error)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what + ' ' if what else ''}file not found: {path}") from None
    except IsADirectoryError:
        raise error(f"{path} is a folder, not a text file", hint="pass a text file, one entry a line") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    refuse_nul(path, text, error)
    return [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def option_error(message: str) -> PydanticCustomError:
    """A step option's own message, shown as it is (no pydantic prefix, no echo of the value)."""
    return PydanticCustomError("step_option", "{message}", {"message": message})


_PLURAL = {"vocabs": "vocabularies"}


def text_list(value: Any, what: str, base: Path | None = None) -> list[str]:
    """A non-empty list of distinct non-empty strings, one string, or a .txt file of them (one a
    line, relative to `base`); ValueError says what is wrong."""
    if isinstance(value, str) and value.endswith(".txt"):
        file = Path(value)
        if not file.is_absolute() and base is not None:
            file = base / file
        try:
            value = read_lines(file)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"expected a non-empty list of {what} (or a .txt file of them)")
    seen: set[str] = set()
    for v in value:
        if v in seen:
            raise ValueError(f"{what} repeat: {short_repr(v)}")
        seen.add(v)
    return list(value)


def _text_list_option(value: Any, info: ValidationInfo) -> list[str]:
    what = _PLURAL.get(info.field_name or "", info.field_name or "texts")
    base = (info.context or {}).get("base")
    try:
        return text_list(value, what, base)
    except ValueError as exc:
        raise option_error(str(exc)) from None


def _name_option(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise option_error(f"expected a name or path, got {short_repr(value)}")
    return value


def _model_spec_option(value: Any) -> str:
    text = _name_option(value)
    try:
        parse_model_spec(text)
    except ProbeError as exc:
        raise option_error(str(exc)) from None
    return text


TextList = Annotated[list[str], BeforeValidator(_text_list_option)]
"""A step option holding texts: a list of distinct non-empty strings, one string, or a .txt file of
them (one a line, '#' comments, relative to the experiment file)."""

Name = Annotated[str, BeforeValidator(_name_option)]
"""A step option naming a shipped set or a file (prompt set, label set, concept set)."""

ModelSpecText = Annotated[str, BeforeValidator(_model_spec_option)]
"""A step option holding a model spec (e.g. a labeller): checked to parse before any model loads."""


def _type_words(field: FieldInfo) -> str:
    """What a field takes, in words, for the docs' option tables."""
    kinds = {
        _text_list_option: "texts or a .txt file",
        _name_option: "name or path",
        _model_spec_option: "model spec",
        parse_seeds: "seeds (0-19, 0,3,7 or a list)",
    }
    annotation = field.annotation
    args = (
        [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) in (Union, UnionType) else []
    )
    inner = args[0] if len(args) == 1 else annotation
    for meta in [*field.metadata, *getattr(inner, "__metadata__", ())]:
        if isinstance(meta, BeforeValidator) and meta.func in kinds:
            return kinds[meta.func]
    if get_origin(inner) is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in get_args(inner))
    words: dict[Any, str] = {int: "integer", float: "number", str: "text", bool: "true or false", dict: "mapping"}
    if get_origin(inner) is list:
        return f"list of {words.get(get_args(inner)[0], 'values')}"
    name = words.get(get_origin(inner) or inner, "any")
    bounds = [
        f"{sign} {getattr(m, attr)}"
        for m in field.metadata
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"))
        if getattr(m, attr, None) is not None
    ]
    return f"{name} {', '.join(bounds)}".strip()


def options_table(model: type[BaseModel]) -> str:
    """A markdown table of a step kind's options (option, type, default, what it does), generated
    from its options model so that the docs and the checks never disagree."""
    lines = ["| option | type | default | what it does |", "|---|---|---|---|"]
    for name, f in model.model_fields.items():
        default = "required" if f.is_required() else f.get_default(call_default_factory=True)
        shown = default if default == "required" else ("—" if default is None else f"`{json.dumps(default)}`")
        about = (f.description or "").replace("|", "\\|")
        lines.append(f"| `{name}` | {_type_words(f)} | {shown} | {about} |")
    return "\n".join(lines)


@dataclass
class StepOptions:
    """One step's options (defaults filled in): checked through the kind's options model, each error
    reported at the option's file:line."""

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

    @property
    def base(self) -> Path | None:
        """The folder that relative file options (a prompts .txt) are read from: the experiment file's."""
        folder = Path(self.doc.source).parent
        return folder if folder.is_dir() else None

    def check(self, model: type[M]) -> M:
        """The options through a pydantic model; the first problem is a ConfigError at its line."""
        try:
            return model.model_validate(
                {k: v for k, v in self.values.items() if k != "name"}, context={"base": self.base}
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown option"
            elif err["type"] != "step_option" and "input" in err and not isinstance(err["input"], dict):
                message = f"{message}, got {short_repr(err['input'])}"
            raise self.doc.error(self.path + tuple(err["loc"]), message) from None

    def text_list(self, key: str, what: str) -> list[str]:
        """A non-empty list of distinct non-empty strings, or a path to a .txt file of them (relative to the YAML)."""
        try:
            return text_list(self.values[key], what, self.base)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def seeds(self, seeds: list[int] | None, n: int | None) -> list[int]:
        """The checked `seeds:` if given, else `n:` seeds counted from the experiment's base seed."""
        if seeds is not None:
            return seeds
        if n is None:
            raise self.error("n", "n must be a positive integer (images per prompt), got None")
        return list(range(self.base_seed, self.base_seed + n))

    def load(self, key: str, loader: Callable[[str], Any]) -> Any:
        """Load a named set or file, reporting any problem at this option's line."""
        try:
            return loader(self.values[key])
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
