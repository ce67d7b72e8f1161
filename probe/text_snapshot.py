"""Text snapshots: a model's text encoder and tokenizer saved so that text-only commands can start
without importing open_clip.

Importing open_clip imports torchvision, which imports torch._dynamo: about 1.5 s of every cold
start, for a `probe neighbours` query that only needs to encode a few words. After a full session
has encoded text once, its exact fast text path (`probe.text_encoding`) is compiled with
TorchScript and saved in the user cache under the model's fingerprint, with the tokenizer's
settings. A later process opens the snapshot instead of the model when the model's files give
the same fingerprint (`probe.identity`), on CPU in fp32.

A snapshot is only written after it reproduced the session's tokens and embeddings bit for bit,
and anything unexpected when opening one (other torch version, a damaged file, TorchScript gone
from a future torch) means "no snapshot": the caller loads the model as before.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from probe.cache import cache_dir, file_lock
from probe.errors import UsageError
from probe.identity import fingerprint_without_loading
from probe.io import atomic_write_bytes, atomic_write_text, read_json
from probe.models import ModelSpec, parse_model_spec
from probe.text_encoding import TextTower

if TYPE_CHECKING:
    from probe.session import Session

SNAPSHOT_FORMAT = 1
CLEAN_NAMES = {"_clean_lower": "lower", "_clean_whitespace": "whitespace", "_clean_canonicalize": "canonicalize"}
# texts the snapshot must reproduce exactly before it is saved: lengths from one word to the context
CHECK_TEXTS = ["a", "a red star", "Hugh Jackman", "an orange ring on a black background, photographed at dusk",
               "naïve café — «quoted» text, 123 numbers & symbols!"]


class _MatMul(torch.nn.Module):
    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight


class _TruncatedText(torch.nn.Module):
    """`encode_truncated` for one batch already cut to its longest prompt, in a form TorchScript compiles."""

    def __init__(self, tower: TextTower) -> None:
        super().__init__()
        self.token_embedding = tower.token_embedding
        self.transformer = tower.transformer
        self.ln_final = tower.ln_final
        self.register_buffer("positional_embedding", tower.positional_embedding.detach().clone())
        self.register_buffer("attn_mask", tower.attn_mask.detach().clone())
        proj = tower.text_projection
        self.project = torch.nn.Identity() if proj is None else proj if isinstance(proj, torch.nn.Linear) else _MatMul(proj)

    def forward(self, tokens: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:length]
        x = self.transformer(x, attn_mask=self.attn_mask[:length, :length])
        x = x[torch.arange(x.shape[0], device=x.device), pos]
        return self.project(self.ln_final(x))


def _paths(fingerprint: str) -> tuple[Path, Path]:
    folder = cache_dir("text-snapshots")
    stem = f"{fingerprint}.torch-{torch.__version__.split('+')[0]}.v{SNAPSHOT_FORMAT}"
    return folder / f"{stem}.pt", folder / f"{stem}.json"


def _standalone_tokenizer_module() -> Any:
    """open_clip's tokenizer module, run from its file without the package (whose import is the cost
    this module avoids); it imports only ftfy, regex, numpy and torch."""
    name = "probe._open_clip_tokenizer"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("open_clip is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "tokenizer.py"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def _tokenizer_settings(tokenizer: Any) -> dict | None:
    """The SimpleTokenizer arguments that rebuild `tokenizer`, or None for any other tokenizer."""
    if type(tokenizer).__name__ != "SimpleTokenizer" or getattr(tokenizer, "reduction_fn", None) is not None:
        return None
    clean = CLEAN_NAMES.get(getattr(getattr(tokenizer, "clean_fn", None), "__name__", ""))
    if clean is None:
        return None
    extra = [tokenizer.decoder[i] for i in tokenizer.all_special_ids[2:]]
    return {"context_length": tokenizer.context_length, "clean": clean, "additional_special_tokens": extra or None}


def _build_tokenizer(settings: dict) -> Any:
    """A SimpleTokenizer with `settings`. Importing the module already builds a default one (about
    0.15 s of BPE tables); without extra special tokens the tables are the same, so that instance is
    copied and given its context length and cleaner. save_text_snapshot checks the result token for
    token against the session's tokenizer before any snapshot is written."""
    module = _standalone_tokenizer_module()
    default = getattr(module, "_tokenizer", None)
    if settings.get("additional_special_tokens") or type(default) is not module.SimpleTokenizer:
        return module.SimpleTokenizer(**settings)
    tokenizer = copy.copy(default)
    tokenizer.cache = dict(default.cache)
    tokenizer.context_length = settings["context_length"]
    tokenizer.clean_fn = module.get_clean_fn(settings["clean"])
    return tokenizer


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
        self._describe = dict(meta["describe"], model=spec.text)
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
        limit = self.context_length - 2
        too_long = [t for t in texts if len(self.tokenizer.encode(t)) > limit]
        if too_long and not truncate:
            raise UsageError(
                f"{len(too_long)} prompt(s) longer than the model's {limit}-token context, e.g. {too_long[0][:60]!r}",
                hint="shorten them, or pass --truncate to cut them",
            )
        if too_long:
            warnings.warn(f"{len(too_long)} prompt(s) truncated to {limit} tokens", stacklevel=3)
        return self.tokenizer(list(texts))

    def _positions(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.argmax(dim=-1) if self._pool == "argmax" else (tokens == self._eos).int().argmax(dim=-1)

    @torch.no_grad()
    def encode_text(self, texts: list[str], batch_size: int = 256, truncate: bool = False, fast: bool = True) -> torch.Tensor:
        """Normalised fp32 text embeddings [N, D], in input order: the same values as Session.encode_text."""
        tokens = self.tokenize(texts, truncate)
        out = torch.empty(tokens.shape[0], self.embed_dim)
        positions = self._positions(tokens)
        order = torch.argsort(positions, descending=True, stable=True)
        for idx in order.split(batch_size):
            pos = positions[idx]
            batch = tokens[idx][:, : int(pos.max()) + 1]
            with torch.jit.optimized_execution(False):  # the graph as saved: no profiling runs, same kernels
                feats = self._module(batch, pos)
            out[idx] = F.normalize(feats.float(), dim=-1)
        return out


def _session_tower(session: "Session") -> TextTower | None:
    return getattr(session, "_tower", None)


def save_text_snapshot(session: "Session") -> Path | None:
    """Write the session's text snapshot if it has none and one can be exact; its path, or None."""
    tower = _session_tower(session)
    settings = _tokenizer_settings(session.tokenizer)
    if (tower is None or settings is None or session.device.type != "cpu" or session.precision != "fp32"
            or tower.transformer.get_cast_dtype() != torch.float32):
        return None
    pt, meta_path = _paths(session.fingerprint)
    if meta_path.is_file():
        return pt
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's deprecation notices are not the user's business
            module = torch.jit.script(_TruncatedText(tower).eval())
            meta = _meta(session, tower, settings)
            if not _reproduces(session, TextSnapshot(session.spec, meta, module, _build_tokenizer(settings))):
                return None
            with file_lock(meta_path):
                if not meta_path.is_file():
                    _save_module(module, pt)
                    atomic_write_text(meta_path, json.dumps(meta, indent=2))  # written last: it marks the pair complete
        return pt
    except (RuntimeError, OSError, ImportError, AttributeError, TypeError):  # TorchScript or the cache said no
        return None


def _save_module(module: torch.jit.ScriptModule, path: Path) -> None:
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _meta(session: "Session", tower: TextTower, settings: dict) -> dict:
    return {"format": SNAPSHOT_FORMAT, "torch": torch.__version__, "fingerprint": session.fingerprint,
            "describe": session.describe(), "embed_dim": session.embed_dim,
            "pool_type": tower.pool_type, "eos_id": tower.eos_id, "tokenizer": settings}


def _reproduces(session: "Session", snapshot: TextSnapshot) -> bool:
    """Same tokens and bit-identical embeddings on texts of every length, one at a time and batched
    (called with warnings silenced: the context-filling text is truncated on purpose)."""
    texts = CHECK_TEXTS + [" ".join(["word"] * (session.context_length - 2))]
    try:
        if not torch.equal(snapshot.tokenize(texts, truncate=True), session.tokenize(texts, truncate=True)):
            return False
        whole = torch.equal(snapshot.encode_text(texts, truncate=True), session.encode_text(texts, truncate=True))
        single = all(torch.equal(snapshot.encode_text([t], truncate=True), session.encode_text([t], truncate=True)) for t in texts)
        return whole and single
    except Exception:  # any failure means the snapshot cannot stand in for the session
        return False


def open_text_snapshot(model: str, device: str = "auto", precision: str = "fp32") -> TextSnapshot | None:
    """The model's text snapshot when one exists and applies (CPU, fp32, a model identified by its
    files), else None: then load the model."""
    if precision != "fp32" or device not in ("auto", "cpu"):
        return None
    spec = parse_model_spec(model)
    if spec.kind not in ("builtin", "local-dir"):
        return None
    if device == "auto" and (torch.cuda.is_available() or torch.backends.mps.is_available()):
        return None
    fingerprint = fingerprint_without_loading(spec)
    pt, meta_path = _paths(fingerprint) if fingerprint else (None, None)
    if pt is None or not meta_path.is_file() or not pt.is_file():
        return None
    try:
        meta = read_json(meta_path)
        if meta.get("format") != SNAPSHOT_FORMAT or meta.get("torch") != torch.__version__ or meta.get("fingerprint") != fingerprint:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.load(str(pt), map_location="cpu")
        return TextSnapshot(spec, meta, module, _build_tokenizer(meta["tokenizer"]))
    except Exception:  # a damaged or foreign snapshot is no snapshot; the model loads as before
        return None
