"""Text snapshots: a model's text encoder and tokenizer saved so that text-only commands can start
without importing open_clip.

Importing open_clip imports torchvision, which imports torch._dynamo: about 1.5-2 s of every cold
start, for a `probe neighbours` query that only needs to encode a few words. After a full session
has encoded text, its exact fast text path (`probe.encoding.text`) is compiled with TorchScript and
saved in the user cache under the model's fingerprint and the versions of the code involved, with
the tokenizer's settings. A later process opens the snapshot instead of the model when the model's
files give the same fingerprint (`probe.models.fingerprints`: built-in and local-dir models), on CPU in fp32.

A snapshot is only written after it reproduced the session's tokens and embeddings bit for bit (a
failed check is remembered, so it is not retried every run), and anything unexpected when opening
one (a damaged file, TorchScript gone from a future torch) means "no snapshot": the caller loads the
model as before. PROBE_TEXT_SNAPSHOTS=0 turns them off.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from probe.encoding.text import encode_bucketed, encode_truncated, pool_positions, tokenize_checked
from probe.encoding.tokenizer import build_tokenizer, tokenizer_settings
from probe.files.atomic import atomic_write_bytes, atomic_write_text, read_json
from probe.files.cache import cache_path, content_hash, file_lock
from probe.files.versions import package_version
from probe.models.fingerprints import fingerprint_without_loading
from probe.models.specs import ModelSpec, parse_model_spec

if TYPE_CHECKING:
    from probe.session import Session

SNAPSHOT_FORMAT = 1
SNAPSHOT_ENV = "PROBE_TEXT_SNAPSHOTS"
SNAPSHOT_KINDS = ("builtin", "local-dir")  # the kinds whose fingerprint needs no open_clip
# texts the snapshot must reproduce exactly before it is saved, from one word to past the context
CHECK_TEXTS = [
    "a",
    "a red star",
    "Hugh Jackman",
    "an orange ring on a black background, photographed at dusk",
    "naïve café — «quoted» text, 123 numbers & symbols!",
]


def enabled() -> bool:
    """PROBE_TEXT_SNAPSHOTS=0 (or false/no/off) turns snapshots off: an escape hatch and a way to
    time the model-loading path."""
    return os.environ.get(SNAPSHOT_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _versions() -> dict:
    """The code a snapshot depends on: torch (the TorchScript), open_clip (tower and tokenizer code),
    clip-probe, and the source of the fast text path and of this module."""

    from probe.encoding import text as text_encoding
    from probe.encoding import tokenizer as standalone_tokenizer

    code = content_hash(
        *(Path(f).read_bytes() for f in (__file__, text_encoding.__file__, standalone_tokenizer.__file__))
    )
    return {
        "format": SNAPSHOT_FORMAT,
        "torch": torch.__version__,
        "open_clip": package_version("open_clip_torch"),
        "clip_probe": package_version("clip-probe"),
        "code": code,
    }


def _tokenizer_inputs(spec: ModelSpec) -> str:
    """Hash of the files the model's tokenizer is built from: open_clip's tokenizer code and BPE
    vocabulary, and the model's config (context length, text cleaning). Part of the snapshot's key:
    the model's fingerprint is its weights, and a snapshot must not answer for a changed tokenizer."""
    from probe.encoding.tokenizer import tokenizer_module
    from probe.models.specs import builtin_file

    module = tokenizer_module()
    files = [Path(module.__file__).read_bytes(), Path(module.default_bpe()).read_bytes()]
    if spec.kind == "builtin":
        files.append(builtin_file(spec.arch, "config").read_bytes())
    elif spec.kind == "local-dir":
        files.append((Path(spec.arch.removeprefix("local-dir:")) / "open_clip_config.json").read_bytes())
    return content_hash(*files)


def _snapshot_versions(spec: ModelSpec) -> dict:
    """What a snapshot's key and record hold besides the fingerprint: code versions and tokenizer inputs."""
    return {**_versions(), "tokenizer_inputs": _tokenizer_inputs(spec)}


def _paths(fingerprint: str, versions: dict) -> tuple[Path, Path]:
    stem = cache_path("text-snapshots", f"{fingerprint}.{content_hash(json.dumps(versions, sort_keys=True))[:12]}")
    return stem.with_name(f"{stem.name}.pt"), stem.with_name(f"{stem.name}.json")


class TextSnapshot:
    """The text half of a Session, restored from a snapshot: what text-only probes use of a session."""

    def __init__(self, spec: ModelSpec, meta: dict, module: torch.jit.ScriptModule, tokenizer: Any) -> None:
        self.spec = spec
        self.fingerprint = meta["fingerprint"]
        self.context_length = int(meta["describe"]["context_length"])
        self.image_size = int(meta["describe"]["image_size"])
        self.embed_dim = int(meta["embed_dim"])
        self.device = torch.device("cpu")
        self.precision = "fp32"
        self.fast_text = True
        self._describe = dict(meta["describe"], model=spec.text, device="cpu", precision="fp32")
        self._module = module
        self._eos = meta["eos_id"]
        self._pool = meta["pool_type"]
        self.tokenizer = tokenizer

    @property
    def name(self) -> str:
        return self.spec.text

    def describe(self) -> dict:
        return dict(self._describe)

    def tokenize(self, texts: list[str], truncate: bool = False) -> torch.Tensor:
        """Token ids [N, context]; over-long prompts are an error unless truncate is set (as Session)."""
        if isinstance(texts, str):
            texts = [texts]
        return tokenize_checked(self.tokenizer, self.context_length, list(texts), truncate)

    @torch.no_grad()
    def encode_text(
        self, texts: list[str], batch_size: int = 256, truncate: bool = False, fast: bool = True
    ) -> torch.Tensor:
        """Normalised fp32 text embeddings [N, D], in input order: the values Session.encode_text gives
        (a snapshot is always its exact fast path; `fast` is accepted so callers need not care)."""
        tokens = self.tokenize(texts, truncate)
        if tokens.shape[0] == 0:
            return torch.empty(0, self.embed_dim)
        positions = pool_positions(tokens, self._pool, self._eos)

        def encode_batch(idx: torch.Tensor) -> torch.Tensor:
            with torch.jit.optimized_execution(False):  # the graph as saved: no profiling runs, same kernels
                return encode_truncated(self._module, tokens[idx], positions[idx])

        return encode_bucketed(tokens, positions, batch_size, encode_batch)


def save_text_snapshot(session: Session) -> Path | None:
    """Write the session's text snapshot unless it has one (or a failed attempt is on record);
    the snapshot's path, or None where none can stand in for the session. Never raises: the
    query's answer matters more than the snapshot (a full disk, a lock timeout, a cache in the way).
    A snapshot passed in (a text-only start) needs nothing written."""
    if isinstance(session, TextSnapshot):
        return None
    try:
        tower, text = getattr(session, "_tower", None), getattr(session, "_text", None)
        settings = tokenizer_settings(session.tokenizer)
        if (
            not enabled()
            or text is None
            or tower is None
            or settings is None
            or session.spec.kind not in SNAPSHOT_KINDS
            or session.device.type != "cpu"
            or session.precision != "fp32"
            or text.cast != torch.float32
        ):
            return None
        versions = _snapshot_versions(session.spec)
        pt, meta_path = _paths(session.fingerprint, versions)
        if meta_path.is_file():
            usable = bool(read_json(meta_path).get("usable"))
            if not usable or pt.is_file():
                return pt if usable else None
            meta_path.unlink(missing_ok=True)  # the module went missing: write the pair again
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's deprecation notices are not the user's business
            meta = {
                **versions,
                "fingerprint": session.fingerprint,
                "describe": session.describe(),
                "embed_dim": session.embed_dim,
                "pool_type": tower.pool_type,
                "eos_id": tower.eos_id,
                "tokenizer": settings,
            }
            try:
                module = torch.jit.script(text)  # the session's own module: shares its weights
                usable = _reproduces(session, TextSnapshot(session.spec, meta, module, build_tokenizer(settings)))
            except Exception as exc:  # TorchScript cannot compile this tower: remember, do not retry
                usable, meta["reason"] = False, f"{type(exc).__name__}: {str(exc)[:200]}"
            with file_lock(meta_path):
                if not meta_path.is_file():
                    if usable:
                        buffer = io.BytesIO()
                        torch.jit.save(module, buffer)
                        atomic_write_bytes(pt, buffer.getvalue())
                    atomic_write_text(
                        meta_path, json.dumps({**meta, "usable": usable}, indent=2)
                    )  # last: marks it complete
        return pt if usable else None
    except Exception:
        return None


def _reproduces(session: Session, snapshot: TextSnapshot) -> bool:
    """Same tokens and bit-identical embeddings on texts of every length, batched and one at a time
    (called with warnings silenced: the last text is truncated on purpose)."""
    texts = [*CHECK_TEXTS, " ".join(["word"] * (session.context_length + 5))]
    if not torch.equal(snapshot.tokenize(texts, truncate=True), session.tokenize(texts, truncate=True)):
        return False
    whole = torch.equal(snapshot.encode_text(texts, truncate=True), session.encode_text(texts, truncate=True))
    return whole and all(
        torch.equal(snapshot.encode_text([t], truncate=True), session.encode_text([t], truncate=True)) for t in texts
    )


def open_text_snapshot(
    model: str, device: str = "auto", precision: str = "fp32", allow_pickle: bool = False
) -> TextSnapshot | None:
    """The model's text snapshot when one exists and applies (CPU, fp32, a model identified by its
    files), else None: then load the model. Never raises: a bad spec is left for the model load to report."""
    if not enabled() or precision != "fp32" or device not in ("auto", "cpu"):
        return None
    try:
        spec = parse_model_spec(model)
        if spec.kind not in SNAPSHOT_KINDS:
            return None
        if device == "auto" and (torch.cuda.is_available() or torch.backends.mps.is_available()):
            return None
        fingerprint = fingerprint_without_loading(spec, allow_pickle)
        if fingerprint is None:
            return None
        versions = _snapshot_versions(spec)
        pt, meta_path = _paths(fingerprint, versions)
        if not meta_path.is_file() or not pt.is_file():
            return None
        meta = read_json(meta_path)
        if (
            not meta.get("usable")
            or meta.get("fingerprint") != fingerprint
            or any(meta.get(k) != v for k, v in versions.items())
        ):
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = torch.jit.load(str(pt), map_location="cpu")
        except Exception:  # a damaged module: drop its marker so the next full run writes it again
            meta_path.unlink(missing_ok=True)
            return None
        return TextSnapshot(spec, meta, module, build_tokenizer(meta["tokenizer"]))
    except Exception:  # a bad spec, a foreign snapshot: no snapshot; the model load reports what is wrong
        return None
