"""An inference form of a frozen image tower (open_clip's ResNet and ViT): the same function in
fewer, cheaper ops.

Inversion runs the image tower forward and backward thousands of times, so what is free to remove
is worth removing: a frozen BatchNorm is an affine map that folds into the convolution before it,
a 1x1 average pool with stride 1 is the identity, the attention pool's output is only its first
(mean) token so only that token needs a query, and on CPU (and for half precision on CUDA)
channels-last memory lets oneDNN/cuDNN skip layout conversions. On the built-in model these make
the tower's forward + backward 1.6-1.9x faster at 32 views on CPU (benchmarks/bench_invert.py).
In a ViT, each block's attention gets its input as one contiguous sequence-first tensor: torch's
batch-first attention transposes it to a strided view, and a linear layer on that view (with a
gradient wanted) runs as a batched product over every sequence position instead of one matrix
product: on ViT-B-16 at 4 views on CPU the rewrite takes forward + backward from 2.12 to 1.65 s in
fp32, bit-identical, and bf16 from 9.1 to 1.0 s per inversion step (benchmarks/bench_tower_floor.py).

The rewrite is checked against the stock tower on a random batch; any disagreement beyond float
rounding keeps the stock tower, so an unfamiliar architecture is never silently changed.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

# mean |stock - fast| over the features, relative to their mean magnitude; fp32 rounding is ~1e-6
AGREEMENT_TOLERANCE = 1e-4


class FirstTokenAttentionPool(nn.Module):
    """open_clip's AttentionPool2d for the one token it returns (the mean token's query).

    With a single query the key and value projections fold away by linearity: per head h,
    q_h . (W_k,h x_j + b_k,h) = (W_k,h^T q_h) . x_j + q_h . b_k,h, and since the attention weights
    a_hj sum to one, sum_j a_hj (W_v,h x_j + b_v,h) = W_v,h (sum_j a_hj x_j) + b_v,h. So no token but
    the first is ever projected: about 2 projections per image instead of 2 x (HW + 1). The key
    bias adds q_h . b_k,h to every score of a head alike, which softmax cancels."""

    def __init__(self, pool: nn.Module) -> None:
        super().__init__()
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p: Any = self.pool  # open_clip's AttentionPool2d (untyped): its projections are read by name
        n, c = x.shape[:2]
        heads = p.num_heads
        d = c // heads
        tokens = x.flatten(2).transpose(1, 2)  # [N, HW, C]
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        tokens = tokens + p.positional_embedding.to(tokens.dtype)  # [N, L, C]
        q = F.linear(tokens[:, 0], p.q_proj.weight, p.q_proj.bias) * d**-0.5
        # explicit bmm layouts (heads as the batch for the weights, images for the tokens): the same
        # products einsum chose (bit-identical inversions on torch 2.14 here), without its permute copies
        q_k = torch.bmm(q.view(n, heads, d).transpose(0, 1), p.k_proj.weight.view(heads, d, c))  # [H, N, C]
        # q_h . b_k,h is the same for every token, and softmax ignores a shift shared by all scores
        scores = torch.bmm(q_k.transpose(0, 1), tokens.transpose(1, 2))  # [N, H, L]
        mixed = torch.bmm(scores.softmax(dim=-1), tokens)  # [N, H, C]
        values = torch.bmm(mixed.transpose(0, 1), p.v_proj.weight.view(heads, d, c).transpose(1, 2))  # [H, N, d]
        values = values.transpose(0, 1).reshape(n, c) + p.v_proj.bias
        return F.linear(values, p.c_proj.weight, p.c_proj.bias)


def _is_identity_pool(module: nn.Module | None) -> bool:
    return (
        isinstance(module, nn.AvgPool2d)
        and module.kernel_size in (1, (1, 1))
        and module.stride in (1, (1, 1))
        and module.padding in (0, (0, 0))
    )


def _fold_pairs(module: nn.Module, pairs: list[tuple[str, str]]) -> None:
    """Replace each (conv, bn) child pair, applied back to back in forward, by one folded conv."""
    for conv_name, bn_name in pairs:
        conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
            setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(module, bn_name, nn.Identity())


class SequenceFirstAttention(nn.Module):
    """A batch-first nn.MultiheadAttention fed contiguous sequence-first inputs (same parameters,
    same function): its projections then run as plain matrix products."""

    def __init__(self, attention: nn.MultiheadAttention) -> None:
        super().__init__()
        attention.batch_first = False  # this copy only: the stock tower keeps its own module
        self.attention = attention

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, **kwargs):
        q = query.transpose(0, 1).contiguous()
        k = q if key is query else key.transpose(0, 1).contiguous()
        v = k if value is key else value.transpose(0, 1).contiguous()
        out, weights = self.attention(q, k, v, **kwargs)
        return out.transpose(0, 1), weights


def _batch_first_attentions(tower: nn.Module) -> list[tuple[nn.Module, str]]:
    """(block, attribute) of every batch-first nn.MultiheadAttention in an open_clip ViT's blocks."""
    blocks = getattr(getattr(tower, "transformer", None), "resblocks", [])
    return [
        (b, "attn")
        for b in blocks
        if isinstance(getattr(b, "attn", None), nn.MultiheadAttention) and b.attn.batch_first
    ]


def _known(tower: nn.Module) -> bool:
    """An open_clip ModifiedResNet or a VisionTransformer with batch-first attention: the towers
    whose forward the rewrite knows."""
    if type(tower).__name__ == "ModifiedResNet" and hasattr(tower, "attnpool"):
        return True
    return type(tower).__name__ == "VisionTransformer" and bool(_batch_first_attentions(tower))


def _rewrite_vit(tower: nn.Module) -> None:
    """Rewrite a ViT in place: sequence-first contiguous attention inputs."""
    for block, name in _batch_first_attentions(tower):
        setattr(block, name, SequenceFirstAttention(getattr(block, name)))


def _rewrite(tower: Any) -> None:
    """Rewrite a known tower in place (an open_clip ModifiedResNet: untyped, its parts read by name)."""
    stem_pairs = [("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")]
    _fold_pairs(tower, stem_pairs)
    for block in tower.modules():
        if type(block).__name__ == "Bottleneck":
            _fold_pairs(block, stem_pairs)
            if _is_identity_pool(getattr(block, "avgpool", None)):
                block.avgpool = nn.Identity()
            down = getattr(block, "downsample", None)
            if isinstance(down, nn.Sequential):
                _fold_pairs(down, [("0", "1")])
                if _is_identity_pool(getattr(down, "-1", None)):
                    setattr(down, "-1", nn.Identity())
    if type(tower.attnpool).__name__ == "AttentionPool2d":
        tower.attnpool = FirstTokenAttentionPool(tower.attnpool)


def _channels_last_input(module: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: the tower takes its input in the layout its weights are in."""
    return (args[0].contiguous(memory_format=torch.channels_last), *args[1:])


def wants_channels_last(device: torch.device, precision: str) -> bool:
    """Channels-last pays on CPU (oneDNN) and for half precision on CUDA; elsewhere keep NCHW."""
    return device.type == "cpu" or (device.type == "cuda" and precision != "fp32")


def _agree(stock: nn.Module, fast: nn.Module, size: int, device: torch.device) -> bool:
    """Whether the rewrite computes the stock function, checked in full fp32 (TF32 off on CUDA, so
    its rounding cannot pass for a difference or hide one)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, size, size, generator=generator).to(device)
    tf32 = device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32
    cudnn = (
        torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, allow_tf32=False)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )
    try:
        if tf32:
            torch.backends.cuda.matmul.allow_tf32 = False
        with torch.no_grad(), cudnn:
            want, got = stock(x), fast(x)
    finally:
        if tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
    if not isinstance(want, torch.Tensor) or not isinstance(got, torch.Tensor):  # e.g. CoCa's (pooled, tokens)
        return False
    want, got = want.float(), got.float()
    if want.shape != got.shape or not torch.isfinite(got).all():
        return False
    scale = want.abs().mean().clamp_min(1e-12)
    return bool(((want - got).abs().mean() / scale) <= AGREEMENT_TOLERANCE)


def fast_image_tower(visual: nn.Module, image_size: int, device: torch.device, precision: str) -> nn.Module | None:
    """A copy of `visual` in inference form (taking inputs in any layout), or None when there is
    nothing to gain or the copy disagrees with the stock tower. Parameters the rewrite leaves alone are shared,
    except 4-D (convolution) weights: those are copied, so a layout change never touches the stock tower."""
    if visual.training or not _known(visual):  # BatchNorm on batch statistics does not fold
        return None
    memo = {id(t): t for t in list(visual.parameters()) + list(visual.buffers()) if t.dim() != 4}
    fast = copy.deepcopy(visual, memo)
    if type(fast).__name__ == "VisionTransformer":
        _rewrite_vit(fast)
        return fast if _agree(visual, fast, image_size, device) else None
    _rewrite(fast)
    if wants_channels_last(device, precision):
        fast = fast.to(memory_format=torch.channels_last)
        fast.register_forward_pre_hook(_channels_last_input)
    return fast if _agree(visual, fast, image_size, device) else None
