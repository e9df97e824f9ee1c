"""Tiling of large images: windows, equivalence when one tile covers the image, bounded backbone input
and bounded memory."""

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
    windows = tile_windows(300, 200, 128, 128)
    assert len(windows) == 3 * 2
    assert all(r.stop - r.start == 128 and c.stop - c.start == 128 for r, c in windows)


def test_one_tile_covering_the_image_equals_no_tiling(tiny_model, images):
    r, d = images(2, 96, 80), images(2, 96, 80)
    with torch.no_grad():
        whole = tiny_model.score(r, d)
        tiny_model.set_tiling(128)
        try:
            tiled = tiny_model.score(r, d)
        finally:
            tiny_model.set_tiling(None)
    assert torch.allclose(whole, tiled, atol=1e-6)


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
    torch.set_num_threads(2)
    model = PRFNet("test_resnet", tile_size=512).eval()
    ref = torch.rand(1, 3, 4096, 4096)
    dist = (ref + 0.05 * torch.randn_like(ref)).clamp_(0, 1)
    with torch.inference_mode():
        score = model.score(ref, dist).item()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"score": score, "peak_mb": peak_mb}))
    """
)


@pytest.mark.slow
def test_4096_pair_scores_with_bounded_memory():
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["score"] > 0
    assert result["peak_mb"] < 4096
