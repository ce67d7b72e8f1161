"""Prompt sets (prompts in variants, e.g. neutral/female/male) and attribute label sets, from YAML.

Built-in sets live in the installed `probe.vocab` data (`bias_prompts_<name>.yaml`,
`labels_<name>.yaml`); users pass a path to their own file instead of a name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from probe.plugin import ConfigError, YamlDoc, data_files, parse_yaml, read_yaml

PROMPT_PREFIX = "bias_prompts_"
LABEL_PREFIX = "labels_"


@dataclass(frozen=True)
class BiasPrompt:
    """One row of a bias table: a key, a group (status, profession...) and its text per variant."""

    key: str
    group: str
    texts: dict[str, str]
    reference: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class PromptSet:
    name: str
    source: str
    variants: list[str]
    prompts: list[BiasPrompt]

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LabelSet:
    """Attributes (table columns) and the zero-shot prompts that stand for each."""

    name: str
    about: str
    labels: dict[str, list[str]]

    @property
    def attributes(self) -> list[str]:
        return list(self.labels)

    def as_dict(self) -> dict:
        """JSON form; `attributes` keeps the column order (JSON writers may sort mapping keys)."""
        return {**asdict(self), "attributes": self.attributes}


def _builtin_names(prefix: str) -> list[str]:
    folder = data_files()
    return sorted(
        p.name[len(prefix) : -len(".yaml")]
        for p in folder.iterdir()
        if p.name.startswith(prefix) and p.name.endswith(".yaml")
    )


def list_prompt_sets() -> list[str]:
    return _builtin_names(PROMPT_PREFIX)


def builtin_label_sets() -> dict[str, Path]:
    """The label sets shipped in probe.vocab, by name: what this plugin registers through `register_label_sets`."""
    folder = data_files()
    return {name: Path(str(folder / f"{LABEL_PREFIX}{name}.yaml")) for name in _builtin_names(LABEL_PREFIX)}


def _registered_label_sets() -> Any:
    from probe.plugin import label_sets

    return label_sets()


def list_label_sets() -> list[str]:
    """Every registered label set (the shipped ones and plugins'), by name."""
    return list(_registered_label_sets())


def resolve_doc(name_or_path: str, prefix: str, what: str) -> YamlDoc:
    """A built-in set by name, else a YAML file by path; unknown names list the built-in ones."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text or Path(text).is_file():
        return read_yaml(Path(text))
    resource = data_files() / f"{prefix}{text}.yaml"
    if not resource.is_file():
        names = ", ".join(_builtin_names(prefix)) or "none"
        raise ConfigError(f"unknown {what} {text!r}", hint=f"built-in: {names}; or give a path to a YAML file")
    return parse_yaml(resource.read_text(encoding="utf-8"), f"probe.vocab/{prefix}{text}.yaml")


def _need(doc: YamlDoc, data: Any, path: tuple, kind: type, what: str) -> Any:
    if data is None:
        raise doc.error(path, f"missing: expected {what}")
    if not isinstance(data, kind) or (kind is str and isinstance(data, str) and not data.strip()):
        raise doc.error(path, f"expected {what}, got {type(data).__name__} {data!r}"[:200])
    if isinstance(data, str) and "\0" in data:  # a YAML "\0" escape: the file has no NUL byte, the text does
        raise doc.error(path, f"{data[:40]!r} contains a NUL character (binary data)", hint="remove it")
    return data


def prompt_set_from_doc(doc: YamlDoc) -> PromptSet:
    """Check and build a PromptSet; every problem names its file:line."""
    data = _need(doc, doc.data, (), dict, "a mapping with name, variants and prompts")
    unknown = set(data) - {"name", "source", "variants", "prompts"}
    if unknown:
        key = sorted(unknown)[0]
        raise doc.error((key,), f"unknown key {key!r} (use name, source, variants, prompts)")
    name = _need(doc, data.get("name", "custom"), ("name",), str, "a name")
    variants = _need(doc, data.get("variants", ["neutral"]), ("variants",), list, "a list of variant names")
    for i, v in enumerate(variants):
        _need(doc, v, ("variants", i), str, "a variant name")
    if len(set(variants)) != len(variants) or not variants:
        raise doc.error(("variants",), "variant names must be unique and at least one")
    rows = _need(doc, data.get("prompts"), ("prompts",), list, "a list of prompts")
    if not rows:
        raise doc.error(("prompts",), "the prompt list is empty")
    prompts, keys = [], set()
    for i, row in enumerate(rows):
        _need(doc, row, ("prompts", i), dict, "a mapping with key, group and one text per variant")
        extra = set(row) - {"key", "group", "paper", "reference", *variants}
        if extra:
            key = sorted(extra)[0]
            raise doc.error(
                ("prompts", i, key), f"unknown key {key!r}: not a variant ({', '.join(variants)}) nor key/group/paper"
            )
        texts = {v: _need(doc, row.get(v), ("prompts", i, v), str, f"the {v!r} variant's text") for v in variants}
        key = str(row.get("key") or texts[variants[0]])
        if row.get("key") is not None:
            _need(doc, key, ("prompts", i, "key"), str, "a key")
        if key in keys:
            raise doc.error(("prompts", i, "key"), f"duplicate prompt key {key!r}")
        keys.add(key)
        ref = row.get("paper", row.get("reference")) or {}
        _need(doc, ref, ("prompts", i, "paper"), dict, "a mapping variant -> {attribute: percent}")
        prompts.append(BiasPrompt(key, str(row.get("group", "")), texts, {str(k): dict(v) for k, v in ref.items()}))
    return PromptSet(name, str(data.get("source", "")), list(variants), prompts)


def label_set_from_doc(doc: YamlDoc) -> LabelSet:
    """Check and build a LabelSet: at least two attributes, each with one or more prompts."""
    data = _need(doc, doc.data, (), dict, "a mapping with name and labels")
    unknown = set(data) - {"name", "about", "labels"}
    if unknown:
        key = sorted(unknown)[0]
        raise doc.error((key,), f"unknown key {key!r} (use name, about, labels)")
    labels = _need(doc, data.get("labels"), ("labels",), dict, "a mapping attribute -> prompt or list of prompts")
    if len(labels) < 2:
        raise doc.error(("labels",), "zero-shot labelling needs at least two attributes")
    out: dict[str, list[str]] = {}
    for attr, prompts in labels.items():
        _need(doc, str(attr), ("labels", attr), str, "an attribute name")
        prompts = [prompts] if isinstance(prompts, str) else prompts
        _need(doc, prompts, ("labels", attr), list, "a prompt or a list of prompts")
        if not prompts:
            raise doc.error(("labels", attr), f"attribute {attr!r} has no prompts")
        out[str(attr)] = [_need(doc, p, ("labels", attr, j), str, "a prompt") for j, p in enumerate(prompts)]
    return LabelSet(str(data.get("name", "custom")), str(data.get("about", "")), out)


def load_prompt_set(name_or_path: str) -> PromptSet:
    return prompt_set_from_doc(resolve_doc(name_or_path, PROMPT_PREFIX, "prompt set"))


def load_label_set(name_or_path: str) -> LabelSet:
    """A registered label set by name (a mapping or a YAML file), else a label-set YAML file by path."""
    known = _registered_label_sets()
    text = str(name_or_path)
    if text in known:
        ext = known[text]
        if isinstance(ext.labels, dict):
            doc = YamlDoc(
                f"label set {text!r} of plugin {ext.plugin!r}", {"name": text, "about": ext.about, "labels": ext.labels}
            )
            return label_set_from_doc(doc)
        return label_set_from_doc(read_yaml(Path(ext.labels)))
    if text.endswith((".yaml", ".yml")) or "/" in text or Path(text).is_file():
        return label_set_from_doc(read_yaml(Path(text)))
    raise ConfigError(
        f"unknown label set {text!r}",
        hint=known.hint(f"registered: {', '.join(known) or 'none'}; or give a path to a YAML file"),
    )


def prompt_set_from_dict(data: dict) -> PromptSet:
    """Rebuild a PromptSet stored in a run manifest (as_dict output)."""
    prompts = [
        BiasPrompt(p["key"], p["group"], dict(p["texts"]), dict(p.get("reference") or {})) for p in data["prompts"]
    ]
    return PromptSet(data["name"], data.get("source", ""), list(data["variants"]), prompts)


def label_set_from_dict(data: dict) -> LabelSet:
    order = data.get("attributes") or list(data["labels"])
    return LabelSet(data["name"], data.get("about", ""), {k: list(data["labels"][k]) for k in order})
