"""The image tower's inference form: same features and pixel gradients as the stock tower, and
no rewrite where it is unknown or would disagree."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from open_clip.modified_resnet import AttentionPool2d, ModifiedResNet

from probe.encoding import image as image_encoding
from probe.encoding.image import FirstTokenAttentionPool, fast_image_tower
from probe.session import Session


@pytest.fixture(scope="module")
def resnet() -> ModifiedResNet:
    torch.manual_seed(0)
    tower = ModifiedResNet(layers=[1, 1, 1, 1], output_dim=16, heads=2, image_size=32, width=8)
    for module in tower.modules():  # trained-looking BatchNorm statistics, so folding has work to do
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return tower.eval().requires_grad_(False)


def test_first_token_pool_equals_open_clips_pool():
    torch.manual_seed(1)
    pool = AttentionPool2d(spacial_dim=3, embed_dim=32, num_heads=4, output_dim=8).eval()
    x = torch.randn(5, 32, 3, 3)
    assert torch.allclose(FirstTokenAttentionPool(pool)(x), pool(x), atol=1e-5)


def test_fast_resnet_tower_matches_stock_features_and_pixel_gradients(resnet):
    fast = fast_image_tower(resnet, 32, torch.device("cpu"), "fp32")
    assert fast is not None
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert isinstance(fast.attnpool, FirstTokenAttentionPool)
    x = torch.rand(3, 3, 32, 32)
    a, b = x.clone().requires_grad_(True), x.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    weights = torch.randn(3, 16)
    (resnet(a) * weights).sum().backward()
    (fast(b) * weights).sum().backward()
    assert torch.allclose(fast(x), resnet(x), rtol=1e-4, atol=1e-5)
    assert a.grad is not None and b.grad is not None
    assert torch.allclose(b.grad, a.grad, rtol=1e-3, atol=1e-6)


def test_the_stock_tower_is_left_untouched(resnet):
    before = {k: v.clone() for k, v in resnet.state_dict().items()}
    fast_image_tower(resnet, 32, torch.device("cpu"), "fp32")
    assert resnet.state_dict().keys() == before.keys()
    assert all(torch.equal(resnet.state_dict()[k], v) for k, v in before.items())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in resnet.modules())


def test_a_rewrite_that_disagrees_is_refused(resnet, monkeypatch):
    monkeypatch.setattr(FirstTokenAttentionPool, "forward", lambda self, x: torch.zeros(x.shape[0], 16))
    assert fast_image_tower(resnet, 32, torch.device("cpu"), "fp32") is None


def test_towers_it_does_not_know_are_not_rewritten():
    class Tower(torch.nn.Module):  # an unknown architecture
        def forward(self, x):
            return x.mean(dim=(2, 3))

    assert fast_image_tower(Tower().eval(), 32, torch.device("cpu"), "fp32") is None


def test_vit_attention_gets_contiguous_sequence_first_inputs(tiny_session):
    """A ViT's inference form computes the stock embeddings and pixel gradients exactly, and its
    attention input projections run as plain matrix products (no per-position batched product)."""
    from torch.profiler import ProfilerActivity, profile

    from probe.encoding.image import SequenceFirstAttention

    assert tiny_session.fast_image
    tower = tiny_session._image_tower
    assert all(isinstance(b.attn, SequenceFirstAttention) for b in tower.transformer.resblocks)
    assert all(
        b.attn.batch_first for b in tiny_session.model.visual.transformer.resblocks
    )  # the stock tower is untouched
    x = torch.rand(3, 3, 40, 40, requires_grad=True)
    fast, stock = tiny_session.encode_image(x, grad=True), tiny_session.encode_image(x, grad=True, fast=False)
    assert torch.allclose(fast, stock, atol=1e-6)
    (g_fast,), (g_stock,) = torch.autograd.grad(fast.sum(), x), torch.autograd.grad(stock.sum(), x)
    assert torch.allclose(g_fast, g_stock, atol=1e-6)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        torch.autograd.grad(tiny_session.encode_image(x, grad=True).sum(), x)
    assert "aten::bmm" not in {e.key for e in prof.key_averages()}


def test_channels_last_only_where_it_pays():
    assert image_encoding.wants_channels_last(torch.device("cpu"), "fp32")
    assert image_encoding.wants_channels_last(torch.device("cuda"), "bf16")
    assert not image_encoding.wants_channels_last(torch.device("cuda"), "fp32")
    assert not image_encoding.wants_channels_last(torch.device("mps"), "fp32")


def test_builtin_session_encodes_images_through_the_fast_tower():
    session = Session.open("shapes-tiny", device="cpu")
    assert session.fast_image
    tower, calls = session._image_tower, []
    tower.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    x = torch.rand(4, 3, 48, 48)
    fast, stock = session.encode_image(x), session.encode_image(x, fast=False)
    assert calls == [4]  # the fast call went through the inference form, the stock call did not
    assert torch.allclose(fast, stock, atol=1e-5)
    assert (fast @ stock.T).diagonal().min() > 0.99999


def test_layout_changes_stay_in_the_copy_even_for_unfolded_convolutions(resnet):
    import copy

    from open_clip.utils import freeze_batch_norm_2d

    frozen = freeze_batch_norm_2d(copy.deepcopy(resnet))  # FrozenBatchNorm2d: nothing to fold
    fast: Any = fast_image_tower(frozen, 32, torch.device("cpu"), "fp32")  # a ModifiedResNet: parts read by name
    assert fast is not None and isinstance(fast.attnpool, FirstTokenAttentionPool)
    assert frozen.conv1.weight.is_contiguous() and not frozen.conv1.weight.is_contiguous(
        memory_format=torch.channels_last
    )
    assert fast.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(fast(x), frozen(x), rtol=1e-4, atol=1e-5)


def test_a_tower_in_training_mode_is_refused_untouched(resnet):
    import copy

    training = copy.deepcopy(resnet).train()  # BatchNorm on batch statistics: folding would change it
    before = {k: v.clone() for k, v in training.state_dict().items()}
    assert fast_image_tower(training, 32, torch.device("cpu"), "fp32") is None
    assert training.training and all(torch.equal(training.state_dict()[k], v) for k, v in before.items())


def _identity_pools(tower: torch.nn.Module) -> list[str]:
    return [
        name
        for name, m in tower.named_modules()
        if isinstance(m, torch.nn.AvgPool2d) and m.kernel_size == 1 and m.stride == 1 and m.padding == 0
    ]


def test_identity_average_pools_are_dropped_and_strided_ones_kept(resnet):
    fast = fast_image_tower(resnet, 32, torch.device("cpu"), "fp32")
    assert fast is not None
    assert _identity_pools(resnet) == ["layer1.0.downsample.-1"]  # a stride-1 downsample: pooling 1x1 is a no-op
    assert _identity_pools(fast) == []
    strided = [n for n, m in fast.named_modules() if isinstance(m, torch.nn.AvgPool2d)]
    assert strided == [n for n, m in resnet.named_modules() if isinstance(m, torch.nn.AvgPool2d) and m.stride == 2]


@pytest.mark.parametrize(
    "output",
    [
        lambda x: torch.full((x.shape[0], 16), float("nan")),  # not finite
        lambda x: torch.zeros(x.shape[0], 8),  # another shape
        lambda x: (torch.zeros(x.shape[0], 16),),  # not a tensor
    ],
)
def test_a_rewrite_with_broken_output_is_refused(resnet, monkeypatch, output):
    monkeypatch.setattr(FirstTokenAttentionPool, "forward", lambda self, x: output(x))
    assert fast_image_tower(resnet, 32, torch.device("cpu"), "fp32") is None


@pytest.mark.parametrize("off, accepted", [(5e-5, True), (2e-4, False)])
def test_a_rewrite_is_accepted_within_a_relative_1e_4_of_the_stock_features(resnet, monkeypatch, off, accepted):
    exact = FirstTokenAttentionPool.forward
    monkeypatch.setattr(FirstTokenAttentionPool, "forward", lambda self, x: exact(self, x) * (1 + off))
    assert (fast_image_tower(resnet, 32, torch.device("cpu"), "fp32") is not None) == accepted


@pytest.mark.parametrize(
    "pool, identity",
    [
        (torch.nn.AvgPool2d(1), True),
        (torch.nn.AvgPool2d((1, 1), stride=(1, 1), padding=(0, 0)), True),
        (torch.nn.AvgPool2d((2, 1), stride=1), False),  # pools two rows: not a no-op
        (torch.nn.AvgPool2d((1, 2), stride=1), False),
        (torch.nn.AvgPool2d(1, stride=(2, 1)), False),  # strided: halves the height
        (torch.nn.AvgPool2d(1, stride=(1, 2)), False),
        (torch.nn.AvgPool2d(1, stride=1, padding=(1, 0)), False),  # padded: grows the map
        (torch.nn.AvgPool2d(1, stride=1, padding=(0, 1)), False),
        (torch.nn.MaxPool2d(1), False),
        (None, False),
    ],
)
def test_only_a_pool_that_changes_nothing_counts_as_identity(pool, identity):
    """The rewrite drops identity pools; dropping any other would change the embedding."""
    assert image_encoding._is_identity_pool(pool) is identity
    if pool is not None and identity:
        x = torch.randn(1, 2, 3, 5)
        assert torch.equal(pool(x), x)


def test_sequence_first_attention_equals_the_batch_first_module_for_distinct_key_and_value():
    """Cross-attention inputs (key and value other than the query) go through the same transposes."""
    torch.manual_seed(0)
    stock = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    fast = image_encoding.SequenceFirstAttention(copy.deepcopy(stock))
    q, k, v = torch.randn(3, 4, 8), torch.randn(3, 6, 8), torch.randn(3, 6, 8)  # [batch, sequence, width]
    for key, value in [(k, v), (k, k)]:
        want, _ = stock(q, key, value, need_weights=False)
        got, _ = fast(q, key, value, need_weights=False)  # batch-first in and out, as the ViT block calls it
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-6)
    assert stock.batch_first is True and fast.attention.batch_first is False


def test_only_the_towers_whose_forward_the_rewrite_knows_are_rewritten():
    """A tower is known by its class and its parts together, never by one alone."""

    class ModifiedResNet(torch.nn.Module):  # the name alone
        pass

    class Other(torch.nn.Module):  # the attention pool alone
        def __init__(self) -> None:
            super().__init__()
            self.attnpool = torch.nn.Identity()

    class VisionTransformer(torch.nn.Module):  # the name, without batch-first attention blocks
        pass

    assert not image_encoding._known(ModifiedResNet())
    assert not image_encoding._known(Other())
    assert not image_encoding._known(VisionTransformer())


def test_a_blocks_own_identity_pool_is_dropped_too(resnet):
    """open_clip builds a stride-1 block's pool as nn.Identity; a checkpoint's class that builds it
    as a 1x1 average pool gets the same treatment as the downsample path's."""
    tower = copy.deepcopy(resnet)
    tower.layer1[0].avgpool = torch.nn.AvgPool2d(1)
    fast = fast_image_tower(tower, 32, torch.device("cpu"), "fp32")
    assert fast is not None
    assert isinstance(fast.get_submodule("layer1.0.avgpool"), torch.nn.Identity)
    assert _identity_pools(fast) == []
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(fast(x), tower(x), rtol=1e-4, atol=1e-5)


def test_building_the_fast_tower_leaves_the_global_random_stream_alone(resnet):
    """The agreement check draws its probe batch from a generator of its own, so a seeded inversion
    draws the same augmentations whether or not the session built a fast tower."""
    torch.manual_seed(5)
    want = torch.rand(4)
    torch.manual_seed(5)
    assert fast_image_tower(resnet, 32, torch.device("cpu"), "fp32") is not None
    assert torch.equal(torch.rand(4), want)


def test_the_fast_tower_shares_every_weight_it_leaves_alone(resnet):
    """Only convolution weights (copied for their layout) and folded BatchNorm results are new
    tensors: the attention pool's projections and positional embedding are the stock tower's own."""
    fast = fast_image_tower(resnet, 32, torch.device("cpu"), "fp32")
    assert fast is not None
    pool: Any = fast.attnpool.pool
    for name in ["positional_embedding", "q_proj.weight", "k_proj.weight", "v_proj.weight", "c_proj.bias"]:
        assert pool.get_parameter(name) is resnet.attnpool.get_parameter(name), name
    stock_ids = {id(p) for p in resnet.parameters()}
    new = [n for n, p in fast.named_parameters() if id(p) not in stock_ids]
    assert new and all(n.endswith(("conv1.weight", "conv2.weight", "conv3.weight", "bias", ".0.weight")) for n in new)


def test_only_batch_first_attention_blocks_are_rewritten():
    """A sequence-first attention (older open_clip ViTs) already gets the layout the rewrite makes."""

    class Block(torch.nn.Module):
        def __init__(self, batch_first: bool) -> None:
            super().__init__()
            self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first)

    tower = torch.nn.Module()
    tower.transformer = torch.nn.Module()
    tower.transformer.resblocks = torch.nn.ModuleList([Block(True), Block(False)])
    found = image_encoding._batch_first_attentions(tower)
    assert [block for block, _ in found] == [tower.transformer.resblocks[0]]
