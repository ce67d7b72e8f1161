"""CUDA checks, skipped without a GPU (CI has none): the same model on cuda encodes like on cpu in
fp32, bf16 and fp16; the image tower's inference form is built there and gives the stock tower's
pixel gradients, its one-query attention pool open_clip's pool; and inversion runs batched with
every image following its own seed. `benchmarks/gpu_check.sh` runs these on a lent GPU."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from open_clip.modified_resnet import AttentionPool2d
from probe_invert.render import invert
from probe_invert.settings import load_preset

from probe.encoding.image import FirstTokenAttentionPool
from probe.session import Session

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TEXTS = ["a red star", "a big blue circle on the left", "a purple cross"]
PRECISIONS = [("fp32", 0.9999), ("bf16", 0.998), ("fp16", 0.999)]  # (precision, least cosine to fp32 on cpu)
# pixel gradients round more: TF32 convolutions in fp32; bf16 gave 0.985 between the two towers on cpu
GRADIENTS = [("fp32", 0.999), ("bf16", 0.97), ("fp16", 0.99)]


@pytest.fixture(scope="module")
def cuda() -> Callable[[str], Session]:
    """One cuda session per precision for the whole module (the model loads once per precision)."""
    return functools.cache(lambda precision="fp32": Session.open("shapes-tiny", device="cuda", precision=precision))


def _pixels(n: int) -> torch.Tensor:
    return torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("precision, min_cosine", PRECISIONS)
def test_cuda_embeddings_match_cpu(builtin_session, cuda, precision, min_cosine):
    cpu = builtin_session
    gpu = cuda(precision)
    text = F.cosine_similarity(gpu.encode_text(TEXTS).cpu(), cpu.encode_text(TEXTS))
    assert text.min() > min_cosine
    assert gpu.fast_image  # the inference form passed its fp32 agreement check on this GPU
    image = F.cosine_similarity(gpu.encode_image(_pixels(4).cuda()).cpu(), cpu.encode_image(_pixels(4)))
    assert image.min() > min_cosine


@pytest.mark.parametrize("precision, min_cosine", GRADIENTS)
def test_cuda_inference_form_gives_the_stock_pixel_gradients(cuda, precision, min_cosine):
    gpu = cuda(precision)  # half precision: channels-last too
    grads = []
    for fast in (True, False):
        x = _pixels(8).cuda().requires_grad_(True)
        gpu.encode_image(x, grad=True, fast=fast)[:, 0].sum().backward()
        grads.append(x.grad.flatten().float().cpu())
    assert F.cosine_similarity(grads[0], grads[1], dim=0) > min_cosine


@pytest.mark.parametrize("dtype", [None, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n", [1, 5])
def test_cuda_one_query_pool_matches_open_clips_pool(n, dtype):
    torch.manual_seed(0)
    pool = AttentionPool2d(spacial_dim=3, embed_dim=64, num_heads=4, output_dim=16).cuda().eval()
    x = torch.randn(n, 64, 3, 3, device="cuda")
    outs: list[torch.Tensor] = []
    grads: list[torch.Tensor | None] = []
    for module in (FirstTokenAttentionPool(pool), pool):
        xx = x.clone().requires_grad_(True)
        with torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None):
            y = module(xx)
        y.float().sum().backward()
        outs.append(y.float())
        grads.append(xx.grad)
    tol = 1e-4 if dtype is None else 3e-2
    assert torch.allclose(outs[0], outs[1], atol=tol, rtol=tol)
    assert grads[0] is not None and grads[1] is not None
    assert torch.allclose(grads[0], grads[1], atol=tol, rtol=tol)


def test_cuda_inversion_is_batched_and_each_image_follows_its_seed(cuda):
    gpu = cuda()
    settings = load_preset("default", steps=12, resize_at=[1 / 3, 2 / 3])
    batch = invert(gpu, ["a red star", "a blue circle"], [0, 1], settings)
    assert [r.status for r in batch] == ["done"] * 4 and all(math.isfinite(r.cosine) for r in batch)
    alone = invert(gpu, ["a blue circle"], [1], settings)[0]
    same = (alone.image - batch[3].image).abs().mean()
    other = (alone.image - batch[2].image).abs().mean()  # same prompt, seed 0
    # the same random draws alone and in a batch; CUDA kernels may round differently, seeds differ a lot
    assert same < other / 50
