"""Exact fast text encoding: run CLIP's causal text tower only up to each batch's longest prompt.

With a causal mask and pooling at the end-of-text token, tokens after EOT never influence the
pooled feature, so cutting the padded 77 positions down to the batch's longest prompt is exact.
Prompts are sorted by length and bucketed so short words never pay for a long sentence.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from probe.errors import UsageError, caller_stacklevel


@dataclass
class TextTower:
    """The parts of a causal open_clip text tower the fast path needs."""

    token_embedding: torch.nn.Module
    positional_embedding: torch.Tensor
    transformer: Any  # open_clip's Transformer (untyped): get_cast_dtype() is read from it
    ln_final: torch.nn.Module
    text_projection: Any
    attn_mask: torch.Tensor
    pool_type: str
    eos_id: int | None


def find_text_tower(model: torch.nn.Module) -> TextTower | None:
    """The tower's parts when the fast path is exact for it, else None (use the stock path)."""
    owner: Any = model  # an open_clip model (untyped): its parts are found by name
    pool = getattr(model, "text_pool_type", None)
    if not hasattr(model, "token_embedding"):
        owner = getattr(model, "text", None)
        if owner is None or not hasattr(owner, "token_embedding"):
            return None  # e.g. Hugging Face text towers
        if getattr(owner, "cls_emb", None) is not None or getattr(owner, "use_pad_mask", False):
            return None
        pool = getattr(owner, "pool_type", None)
    mask = getattr(owner, "attn_mask", None)
    if pool not in ("argmax", "eos") or mask is None:
        return None  # non-causal or pooling that sees padding: truncation would change results
    eos = getattr(owner, "text_eos_id", None) if owner is model else getattr(owner, "eos_id", None)
    if pool == "eos" and eos is None:
        return None
    return TextTower(
        owner.token_embedding,
        owner.positional_embedding,
        owner.transformer,
        owner.ln_final,
        owner.text_projection,
        mask,
        pool,
        eos,
    )


def pool_positions(tokens: torch.Tensor, pool_type: str, eos_id: int | None) -> torch.Tensor:
    """Index of the pooled (end-of-text) token in each row."""
    if pool_type == "argmax":
        return tokens.argmax(dim=-1)
    assert eos_id is not None, "eos pooling needs the tower's end-of-text id"  # find_text_tower guarantees it
    return (tokens == eos_id).int().argmax(dim=-1)


class _MatMul(torch.nn.Module):
    """A text projection stored as a bare matrix, as a module (so TorchScript can hold it)."""

    if TYPE_CHECKING:  # a buffer registered in __init__; declared for type checkers only (TorchScript reads these)
        weight: torch.Tensor

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight


class TruncatedText(torch.nn.Module):
    """The tower's forward for a batch already cut to its longest prompt, pooled at `pos`. One module
    serves the session and text snapshots (`probe.encoding.snapshot` compiles it with TorchScript), so
    the two cannot drift apart. Shares the tower's weights."""

    if TYPE_CHECKING:  # buffers registered in __init__; declared for type checkers only (TorchScript reads these)
        positional_embedding: torch.Tensor
        attn_mask: torch.Tensor

    def __init__(self, tower: TextTower) -> None:
        super().__init__()
        self.token_embedding = tower.token_embedding
        self.transformer = tower.transformer
        self.ln_final = tower.ln_final
        self.register_buffer("positional_embedding", tower.positional_embedding.detach(), persistent=False)
        self.register_buffer("attn_mask", tower.attn_mask.detach(), persistent=False)
        proj = tower.text_projection
        self.project = (
            torch.nn.Identity() if proj is None else proj if isinstance(proj, torch.nn.Linear) else _MatMul(proj)
        )
        self.cast = tower.transformer.get_cast_dtype()

    def forward(self, tokens: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        x = self.token_embedding(tokens).to(self.cast) + self.positional_embedding[:length].to(self.cast)
        x = self.transformer(x, attn_mask=self.attn_mask[:length, :length])
        x = x[torch.arange(x.shape[0], device=x.device), pos]
        return self.project(self.ln_final(x))  # per-token LayerNorm: pooling first gives the same values for less work


def encode_truncated(
    text: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], tokens: torch.Tensor, pos: torch.Tensor
) -> torch.Tensor:
    """Unnormalised features of one batch (pooled positions `pos`), cut to its longest prompt: exact
    for causal towers."""
    return text(tokens[:, : int(pos.max().item()) + 1], pos)


def encode_bucketed(
    tokens: torch.Tensor,
    positions: torch.Tensor | None,
    batch_size: int,
    encode_batch: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Normalised fp32 features [N, D] in input order, `encode_batch(row indices)` run per length
    bucket (on whatever device it returns)."""
    out: torch.Tensor | None = None
    for idx in length_buckets(tokens, positions, batch_size):
        feats = F.normalize(encode_batch(idx).float(), dim=-1)
        if out is None:
            out = torch.empty(tokens.shape[0], feats.shape[1], device=feats.device)
        out[idx.to(feats.device)] = feats
    assert out is not None  # length_buckets gives at least one (possibly empty) batch
    return out


def length_buckets(tokens: torch.Tensor, positions: torch.Tensor | None, batch_size: int) -> list[torch.Tensor]:
    """Row indices grouped into batches of similar length (longest first, by pooled position), for
    minimal padding; in input order when there are no positions (the stock path)."""
    if positions is None:
        order = torch.arange(tokens.shape[0])
    else:
        order = torch.argsort(positions, descending=True, stable=True)
    return list(order.split(batch_size))


CHARACTERS_PER_TOKEN = 64
"""A prompt is read up to this many characters per context token: far above what any prompt that
fits the context holds, and low enough that tokenizing stays quick (BPE's cost grows with the square
of a word's length: a 10 MB word would never finish)."""


def check_prompt_characters(context_length: int, texts: list[str]) -> None:
    """Prompts longer than `CHARACTERS_PER_TOKEN` x the context in characters are a usage error at
    once, before any tokenizer runs, with or without --truncate."""
    bound = CHARACTERS_PER_TOKEN * context_length
    too_long = [t for t in texts if len(t) > bound]
    if too_long:
        raise UsageError(
            f"{len(too_long)} prompt(s) of over {bound:,} characters ({len(too_long[0]):,} in "
            f"{too_long[0][:40]!r}...), far beyond the model's {context_length}-token context",
            hint=f"shorten them to a sentence or two; --truncate, where a command has it, cuts only prompts "
            f"of up to {bound:,} characters",
        )


def check_prompt_lengths(
    encode: Callable[[str], list] | None, context_length: int, texts: list[str], truncate: bool, specials: int = 2
) -> None:
    """Prompts over the context (less the `specials` start/end tokens the tokenizer adds) are a usage
    error, or a warning when `truncate` is set: a silently cut prompt would be a silently different query."""
    if encode is not None:
        _check_token_counts([len(encode(t)) for t in texts], context_length, texts, truncate, specials)


def check_tokenizer_lengths(tokenizer: Any, context_length: int, texts: list[str], truncate: bool) -> None:
    """The prompt-length check for any tokenizer kind: open_clip's BPE, open_clip's Hugging Face
    wrapper (SigLIP, SigLIP2, XLM-R, NLLB), `hf-transformers:` tokenizers, or anything with `encode`.
    Hugging Face tokenizers cut at max_length without a word, so they are counted here first."""
    if not texts:
        return
    check_prompt_characters(context_length, texts)
    hf = hf_tokenizer(tokenizer)
    if hf is not None:
        clean = getattr(tokenizer, "clean_fn", None)
        cleaned = [clean(t) for t in texts] if callable(clean) else list(texts)
        counts = [len(ids) for ids in hf(cleaned, add_special_tokens=False, verbose=False).input_ids]
        _check_token_counts(counts, context_length, texts, truncate, int(hf.num_special_tokens_to_add(pair=False)))
        return
    check_prompt_lengths(getattr(tokenizer, "encode", None), context_length, texts, truncate)


def hf_tokenizer(tokenizer: Any) -> Any | None:
    """The transformers tokenizer inside a wrapper (open_clip's HFTokenizer, the hf-transformers
    loader's), or the tokenizer itself when it is one; None for any other kind."""
    for candidate in (getattr(tokenizer, "tokenizer", None), tokenizer):
        if callable(getattr(candidate, "num_special_tokens_to_add", None)) and callable(candidate):
            return candidate
    return None


def _check_token_counts(
    counts: list[int], context_length: int, texts: list[str], truncate: bool, specials: int = 2
) -> None:
    limit = context_length - specials
    too_long = [t for t, n in zip(texts, counts, strict=True) if n > limit]
    if not too_long:
        return
    if not truncate:
        raise UsageError(
            f"{len(too_long)} prompt(s) longer than the model's {limit}-token context, e.g. {too_long[0][:60]!r}",
            hint=f"shorten them to {limit} tokens; commands with a --truncate option can cut them instead",
        )
    warnings.warn(f"{len(too_long)} prompt(s) truncated to {limit} tokens", stacklevel=caller_stacklevel())


def tokenize_checked(tokenizer: Any, context_length: int, texts: list[str], truncate: bool) -> torch.Tensor:
    """Token ids [N, context] after the length check. open_clip's BPE tokenizer (as it tokenizes by
    default) encodes each text once for both, its ids laid out as its own call lays them out; any
    other tokenizer is called after the check. (BPE with its text cleaning is most of the cost of
    tokenizing, so a second pass would add half again to every encode.)"""
    from probe.encoding.tokenizer import plain_bpe

    encode = getattr(tokenizer, "encode", None)
    if encode is None or not plain_bpe(tokenizer) or getattr(tokenizer, "context_length", None) != context_length:
        check_tokenizer_lengths(tokenizer, context_length, texts, truncate)
        return tokenizer(texts)
    check_prompt_characters(context_length, texts)
    bodies = [encode(t) for t in texts]
    _check_token_counts([len(b) for b in bodies], context_length, texts, truncate)
    sot, eot = tokenizer.sot_token_id, tokenizer.eot_token_id
    ids = torch.zeros(len(texts), context_length, dtype=torch.long)
    for row, body in enumerate(bodies):
        tokens = [sot, *body, eot][:context_length]
        tokens[-1] = eot  # a cut prompt still ends with the end token
        ids[row, : len(tokens)] = torch.tensor(tokens)
    return ids
