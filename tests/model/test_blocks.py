"""PRFNet's blocks (``prfnet.model.blocks``): the ablation switches build the baseline blocks, stay antisymmetric,
and change what the paper's blocks compute."""

from __future__ import annotations

import torch

from prfnet import PRFNet
from prfnet.model.blocks import ChannelAttention, ConcatPair, CrossSubtract, ProgressiveFusion, SingleScaleFusion
from tests.conftest import TINY


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _with_finer_levels_replaced(model: PRFNet):
    """A backbone hook that replaces the feature maps of every level but the coarsest by noise."""

    def hook(module, inputs, maps):
        return [torch.randn_like(m) for m in maps[:-1]] + [maps[-1]]

    return model.backbone.register_forward_hook(hook)


def test_ablation_switches_build_and_stay_antisymmetric(images):
    torch.manual_seed(0)
    paper = PRFNet(TINY)
    variants = {
        "concat": PRFNet(TINY, pair_block="concat"),
        "single_scale": PRFNet(TINY, fusion="single_scale"),
        "no_attention": PRFNet(TINY, attention=False),
    }
    r, a, b = images(2), images(2), images(2)
    with torch.no_grad():
        for model in (paper, *variants.values()):
            model.head.weight.normal_()
            assert torch.allclose(model.compare(r, a, b) + model.compare(r, b, a), torch.ones(2), atol=1e-5)

    # concat: each projection reads [F_R, F_X] (twice the channels), and identical images are no longer at 0
    concat = variants["concat"]
    assert type(concat.pair) is ConcatPair and type(paper.pair) is CrossSubtract
    assert [p.in_channels for p in concat.pair.proj.values()] == [2 * p.in_channels for p in paper.pair.proj.values()]
    with torch.no_grad():
        assert torch.equal(paper.score(r, r), torch.zeros(2))
        assert (concat.score(r, r) > 0).all()

    # single scale: only the coarsest of the 4 levels is projected and read; the finer maps do not matter,
    # while the paper's progressive fusion depends on them
    single = variants["single_scale"]
    assert type(single.fusion) is SingleScaleFusion and type(paper.fusion) is ProgressiveFusion
    assert single.levels == (3,) and list(single.pair.proj) == ["3"] and paper.levels == (0, 1, 2, 3)
    with torch.no_grad():
        before_single, before_paper = single.score(r, a), paper.score(r, a)
        handles = [_with_finer_levels_replaced(m) for m in (single, paper)]
        try:
            after_single, after_paper = single.score(r, a), paper.score(r, a)
        finally:
            for h in handles:
                h.remove()
    assert torch.allclose(after_single, before_single, rtol=1e-6)
    assert not torch.allclose(after_paper, before_paper, rtol=1e-3)

    # no attention: no channel-attention gate in any of the 3 fusion steps; everything else is the same, so the
    # parameter count drops by exactly 3 gates of 64 channels with 64 // 4 = 16 hidden units (ChannelAttention:
    # fc1 64 x 16 + 16 biases, fc2 16 x 64 + 64 biases), and with the shared weights copied the score changes
    plain = variants["no_attention"]
    assert sum(isinstance(m, ChannelAttention) for m in paper.modules()) == 3
    assert not any(isinstance(m, ChannelAttention) for m in plain.modules())
    assert _params(paper) - _params(plain) == 3 * ((64 * 16 + 16) + (16 * 64 + 64))
    missing, unexpected = plain.load_state_dict(paper.state_dict(), strict=False)
    assert not missing and all(".attention." in k for k in unexpected)
    with torch.no_grad():
        assert not torch.allclose(plain.score(r, a), paper.score(r, a), rtol=1e-3)
