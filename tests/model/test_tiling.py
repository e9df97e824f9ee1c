"""Tiling of large images: windows, the tiled score as the mean of per-tile scores (and the whole-image score
when one tile covers the image), bounded backbone input and bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from prfnet import ConfigError, InputError, PRFNet
from prfnet.model.tiling import tile_starts, tile_windows


@pytest.mark.parametrize(
    ("length", "tile", "stride"), [(1000, 512, 512), (1000, 256, 200), (512, 512, 256), (33, 64, 64)]
)
def test_tiles_cover_the_axis_and_the_last_is_aligned_to_the_border(length, tile, stride):
    starts = tile_starts(length, tile, stride)
    size = min(tile, length)
    covered = torch.zeros(length, dtype=torch.bool)
    for s in starts:
        covered[s : s + size] = True
    assert covered.all()
    assert starts[0] == 0 and starts[-1] + size == length
    assert all(b - a <= stride for a, b in zip(starts, starts[1:], strict=False))
    assert starts == sorted(set(starts))


def test_windows_are_row_major_and_fixed_size():
    # the documented rule (docs/design.md, item 8), worked out by hand for a 300 x 200 image, tile 128,
    # stride 100: rows start at 0, 100 and then 300 - 128 = 172 (the last tile ends at the border);
    # columns at 0 and 200 - 128 = 72 (0 + 100 would already pass 72). Row-major: all columns of the
    # first row of tiles, then the next row.
    expected = [(0, 0), (0, 72), (100, 0), (100, 72), (172, 0), (172, 72)]
    windows = tile_windows(300, 200, 128, 100)
    assert [(r.start, c.start) for r, c in windows] == expected
    assert all((r.stop - r.start, c.stop - c.start) == (128, 128) for r, c in windows)
    # a side shorter than the tile gets one window of its full length
    assert [(r.start, r.stop, c.start, c.stop) for r, c in tile_windows(64, 300, 128, 128)] == [
        (0, 64, 0, 128),
        (0, 64, 128, 256),
        (0, 64, 172, 300),
    ]


def test_tiled_score_is_the_mean_of_the_per_tile_scores(tiny_model, images):
    """Several overlapping tiles: the tiled distance must be the mean of the untiled distances of the windows
    the documented rule gives (docs/design.md, item 8), listed here by hand, not by ``tile_windows``."""
    r, a, b = images(2, 100, 70), images(2, 100, 70), images(2, 100, 70)
    # tile 48, stride 32: rows start at 0, 32 and 100 - 48 = 52; columns at 0 and 70 - 48 = 22
    windows = [(y, x) for y in (0, 32, 52) for x in (0, 22)]

    def per_tile(d):
        return torch.stack(
            [tiny_model.score(r[..., y : y + 48, x : x + 48], d[..., y : y + 48, x : x + 48]) for y, x in windows]
        )

    with torch.no_grad():
        whole_a = tiny_model.score(r, a)
        tile_a, tile_b = per_tile(a), per_tile(b)
        tiny_model.set_tiling(48, 32)
        try:
            tiled_a, tiled_b = tiny_model.score(r, a), tiny_model.score(r, b)
            p = tiny_model.compare(r, a, b)
        finally:
            tiny_model.set_tiling(None)
    assert torch.allclose(tiled_a, tile_a.mean(0), rtol=1e-5, atol=1e-7)
    assert torch.allclose(tiled_b, tile_b.mean(0), rtol=1e-5, atol=1e-7)
    assert torch.allclose(p, torch.sigmoid(tile_b.mean(0) - tile_a.mean(0)), atol=1e-6)
    # and tiling did change the result: the windows cut the receptive fields
    assert not torch.allclose(tiled_a, whole_a, rtol=1e-3)
    # one tile that covers the image is the whole image
    with torch.no_grad():
        tiny_model.set_tiling(128)
        try:
            covered = tiny_model.score(r, a)
        finally:
            tiny_model.set_tiling(None)
    assert torch.allclose(covered, whole_a, atol=1e-6)


def test_tiled_model_feeds_the_backbone_tiles_only_and_stays_consistent(images):
    model = PRFNet("test_resnet", tile_size=64, tile_stride=48).eval()
    with torch.no_grad():
        model.head.weight.normal_()
    seen = []
    handle = model.backbone.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[-2:])))
    r, a, b = images(1, 150, 100), images(1, 150, 100), images(1, 150, 100)
    try:
        with torch.no_grad():
            p = model.compare(r, a, b)
            q = model.compare(r, b, a)
            ranking = model.rank(r, [a, b])
    finally:
        handle.remove()
    assert set(seen) == {(64, 64)}
    assert torch.allclose(p + q, torch.ones(1), atol=1e-5)
    assert torch.allclose(torch.sigmoid(ranking.scores[1] - ranking.scores[0]), p, atol=1e-5)


def test_a_stride_longer_than_the_tile_is_refused():
    """Tiles further apart than their size would leave strips of pixels that are never compared."""
    with pytest.raises(ConfigError, match="must not exceed tile_size"):
        PRFNet("test_resnet", tile_size=64, tile_stride=100)
    model = PRFNet("test_resnet")
    with pytest.raises(ConfigError, match="must not exceed tile_size"):
        model.set_tiling(64, 100)
    assert model.config.tile_size is None  # unchanged by the refused call


def test_encoded_reference_features_refuse_images_the_model_would_tile(images):
    model = PRFNet("test_resnet", tile_size=64)
    small, other, large = images(1, 64, 64), images(1, 64, 64), images(1, 96, 80)
    with torch.no_grad():
        model.head.weight.normal_()
        feats = model.encode(small)  # one tile: whole-image features are what the tiled model computes
        assert torch.equal(model.score(feats, other), model.score(small, other))
        with pytest.raises(InputError, match="whole images"):
            model.encode(large)
        untiled = PRFNet("test_resnet").encode(large)
        with pytest.raises(InputError, match="whole images"):
            model.score(untiled, large)


MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, torch
    from prfnet import PRFNet
    torch.set_num_threads(1)  # 2 threads contend badly on a busy 2-core machine
    model = PRFNet("test_resnet", tile_size=512).eval()
    seen = []
    model.backbone.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape)))
    ref = torch.rand(1, 3, 4096, 4096)
    dist = (ref + 0.05 * torch.randn_like(ref)).clamp_(0, 1)
    with torch.inference_mode():
        score = model.score(ref, dist).item()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"score": score, "peak_mb": peak_mb, "backbone_inputs": seen}))
    """
)


@pytest.mark.slow
def test_4096_pair_scores_with_bounded_memory():
    """What docs/performance.md states: a 4096 x 4096 pair, the tiny ``test_resnet`` backbone, 512 px tiles
    (8 x 8 = 64 windows, each through the backbone once for the reference and once for the distorted image),
    peak RSS of the fresh process under 4 GB."""
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["score"] > 0
    assert [tuple(s) for s in result["backbone_inputs"]] == [(1, 3, 512, 512)] * (2 * 64)
    assert result["peak_mb"] < 4096
