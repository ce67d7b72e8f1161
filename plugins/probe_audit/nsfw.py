"""NSFW rates of inverted images: zero-shot against concept prompts, the optional NudeNet detector,
flagged-word rates of prompt neighbours, and blurred previews of flagged images."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from probe.plugin import ConfigError, ProbeError, YamlDoc, data_files, parse_yaml, read_yaml

# NudeNet (v3) classes that count as nudity; covered parts, faces and feet do not.
NUDENET_FLAGGED = (
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "BUTTOCKS_EXPOSED",
    "ANUS_EXPOSED",
)
NUDENET_MISSING = (
    "the optional NudeNet detector is not installed: pip install 'clip-probe[nsfw]' (its wheel ships its ONNX model)"
)


@dataclass(frozen=True)
class Concept:
    name: str
    threshold: float
    prompts: list[str]


@dataclass(frozen=True)
class ConceptSet:
    """Concept prompts with per-concept thresholds, and neutral anchor prompts they compete with."""

    name: str
    anchors: list[str]
    concepts: list[Concept]

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ConceptSet:
        return cls(
            data["name"],
            list(data["anchors"]),
            [Concept(c["name"], float(c["threshold"]), list(c["prompts"])) for c in data["concepts"]],
        )


def concepts_from_doc(doc: YamlDoc) -> ConceptSet:
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("concepts"), dict) or not data["concepts"]:
        raise doc.error((), "expected a mapping with `concepts:` (name -> {threshold, prompts}) and `anchors:`")
    anchors = data.get("anchors") or []
    if not isinstance(anchors, list) or not anchors or not all(isinstance(a, str) and a.strip() for a in anchors):
        raise doc.error(("anchors",), "anchors must be a non-empty list of neutral prompts")
    concepts = []
    for name, body in data["concepts"].items():
        path = ("concepts", name)
        if not isinstance(body, dict) or set(body) - {"threshold", "prompts"}:
            raise doc.error(path, "each concept is {threshold: 0..1, prompts: [..]}")
        thr = body.get("threshold", 0.5)
        if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0 < thr <= 1:
            raise doc.error((*path, "threshold"), f"threshold must be a probability in (0, 1], got {thr!r}")
        prompts = body.get("prompts")
        prompts = [prompts] if isinstance(prompts, str) else prompts
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
            raise doc.error((*path, "prompts"), "prompts must be a non-empty list of strings")
        concepts.append(Concept(str(name), float(thr), list(prompts)))
    return ConceptSet(str(data.get("name", "custom")), list(anchors), concepts)


def load_concepts(name_or_path: str = "default") -> ConceptSet:
    """The shipped list (`default`, vocab/nsfw_concepts.yaml) or a user YAML file with the same shape."""
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        return concepts_from_doc(read_yaml(Path(name_or_path)))
    fname = "nsfw_concepts.yaml" if name_or_path == "default" else f"nsfw_concepts_{name_or_path}.yaml"
    res = data_files() / fname
    if not res.is_file():
        raise ConfigError(f"unknown NSFW concept list {name_or_path!r}", hint="use default, or a path to a YAML file")
    return concepts_from_doc(parse_yaml(res.read_text(encoding="utf-8"), f"probe.vocab/{fname}"))


def concept_prompts(concepts: ConceptSet) -> list[str]:
    """Every concept prompt, then the anchors: what images are scored against."""
    return [p for c in concepts.concepts for p in c.prompts] + list(concepts.anchors)


def concept_text_embeddings(session, concepts: ConceptSet):
    """Embeddings of `concept_prompts`: what `concept_probabilities` compares with."""
    return session.encode_text(concept_prompts(concepts))


def concept_probabilities(session, images, concepts: ConceptSet, text_emb=None) -> list[dict[str, float]]:
    """Per image, each concept's zero-shot probability (summed over its prompts) against all prompts + anchors.

    Pass `text_emb` (from `concept_text_embeddings`) when scoring many batches, to encode the prompts once.
    """
    from probe.plugin import zero_shot

    prompts = concept_prompts(concepts)
    if text_emb is None:
        text_emb = concept_text_embeddings(session, concepts)
    _, probs = zero_shot(session, images, prompts, text_emb=text_emb)
    out = []
    for row in probs.tolist():
        scores, start = {}, 0
        for c in concepts.concepts:
            scores[c.name] = round(sum(row[start : start + len(c.prompts)]), 6)
            start += len(c.prompts)
        out.append(scores)
    return out


def flagged_concepts(scores: dict[str, float], concepts: ConceptSet) -> list[str]:
    """Concepts whose probability reaches their threshold."""
    return [c.name for c in concepts.concepts if scores.get(c.name, 0.0) >= c.threshold]


def nudenet_status() -> tuple[bool, str]:
    """(available, reason): NudeNet is an optional extra, never required."""
    try:
        import nudenet  # noqa: F401  (imported only to learn whether it is installed)
    except ImportError:
        return False, NUDENET_MISSING
    except Exception as exc:  # a broken install (e.g. onnxruntime) is reported, not fatal
        return False, f"NudeNet failed to import: {type(exc).__name__}: {exc}"
    return True, ""


def nudenet_detect(images, threshold: float = 0.5) -> list[list[dict]]:
    """NudeNet detections per image ([3,H,W] tensors) whose class counts as nudity and score >= threshold."""
    ok, reason = nudenet_status()
    if not ok:
        raise ProbeError(reason)
    from nudenet import NudeDetector

    from probe.plugin import write_png

    detector = NudeDetector()
    out = []
    with tempfile.TemporaryDirectory(prefix="probe-nudenet-") as tmp:
        for i, image in enumerate(images):
            path = write_png(Path(tmp) / f"{i}.png", image)
            found = detector.detect(str(path))
            out.append(
                [
                    {"class": d["class"], "score": round(float(d["score"]), 4)}
                    for d in found
                    if d.get("class") in NUDENET_FLAGGED and float(d.get("score", 0)) >= threshold
                ]
            )
    return out
