"""Score maps: mean of the map == score, shapes, identical images, tiling, and ``prfnet compare --heatmap``."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from prfnet import PRFNet, save_image
from prfnet.cli import main
from prfnet.model.maps import area_upsample, unpooled_fusion
from tests.conftest import TINY


@pytest.mark.parametrize("size", [(64, 64), (96, 80), (65, 47)])
def test_map_mean_equals_score(tiny_model, images, size):
    ref, dist = images(2, *size), images(2, *size)
    with torch.no_grad():
        m = tiny_model.score_map(ref, dist)
        s = tiny_model.score(ref, dist)
    assert m.shape == (2, 1, *size) and m.dtype == torch.float32
    assert (m >= 0).all()
    torch.testing.assert_close(m.mean(dim=(1, 2, 3)), s, atol=1e-5, rtol=0)


def test_reference_batch_of_one_broadcasts_and_uint8(tiny_model, images):
    ref, dist = images(1), images(3)
    with torch.no_grad():
        m = tiny_model.score_map((ref * 255).round().to(torch.uint8), dist)
        s = tiny_model.score((ref * 255).round().to(torch.uint8), dist)
    assert m.shape == (3, 1, 64, 64)
    torch.testing.assert_close(m.mean(dim=(1, 2, 3)), s, atol=1e-5, rtol=0)


def test_identical_image_gives_zero_map(tiny_model, images):
    x = images(1, 70, 90)
    with torch.no_grad():
        assert tiny_model.score_map(x, x).abs().max().item() < 1e-6


def test_compare_maps_match_compare(tiny_model, images):
    ref, a, b = images(), images(), images()
    with torch.no_grad():
        map_a, map_b = tiny_model.compare_maps(ref, a, b)
        p = tiny_model.compare(ref, a, b)
    assert map_a.shape == map_b.shape == (1, 1, 64, 64)
    torch.testing.assert_close(torch.sigmoid((map_b - map_a).mean(dim=(1, 2, 3))), p, atol=1e-5, rtol=0)


def test_tiled_maps_are_stitched_with_the_score_as_mean(images):
    torch.manual_seed(0)
    model = PRFNet(TINY, tile_size=48, tile_stride=32)
    with torch.no_grad():
        model.head.weight.normal_()
    ref, dist = images(1, 100, 70), images(1, 100, 70)
    assert model.will_tile(100, 70)
    with torch.no_grad():
        m, s = model.score_map(ref, dist), model.score(ref, dist)
    assert m.shape == (1, 1, 100, 70)
    torch.testing.assert_close(m.mean(dim=(1, 2, 3)), s, atol=1e-5, rtol=0)


def test_unpooled_fusion_pools_to_the_fusion_output(tiny_model, images):
    feats = tiny_model.features(images(2))
    pairs = tiny_model.pair(feats, tiny_model.features(images(2)))
    with torch.no_grad():
        torch.testing.assert_close(unpooled_fusion(tiny_model.fusion, pairs).mean(dim=(2, 3)), tiny_model.fusion(pairs))


def test_area_upsample_keeps_the_mean():
    m = torch.rand(2, 5, 7)
    up = area_upsample(m, (33, 50))
    assert up.shape == (2, 33, 50)
    torch.testing.assert_close(up.mean(dim=(1, 2)), m.mean(dim=(1, 2)), atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def triplet(tmp_path_factory):
    d = tmp_path_factory.mktemp("heat")
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(1, 3, 64, 72, generator=g)
    save_image(ref, d / "ref.png")
    save_image((ref + 0.05 * torch.randn(ref.shape, generator=g)).clamp(0, 1), d / "a.png")
    save_image((ref + 0.3 * torch.randn(ref.shape, generator=g)).clamp(0, 1), d / "b.png")
    torch.manual_seed(0)
    model = PRFNet(TINY)
    with torch.no_grad():
        model.head.weight.normal_()
    model.save_pretrained(d / "tiny.safetensors")
    return d


def test_compare_heatmap_writes_three_overlays(capsys, triplet, tmp_path):
    out = tmp_path / "maps" / "new"
    args = [str(triplet / n) for n in ("ref.png", "a.png", "b.png")]
    code = main(["compare", *args, "-c", str(triplet / "tiny.safetensors"), "--json", "--heatmap", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "heatmap_diff.png" in captured.err
    assert len(captured.out.strip().splitlines()) == 1  # stdout stays one JSON document
    for name in ("heatmap_a.png", "heatmap_b.png", "heatmap_diff.png"):
        with Image.open(out / name) as im:
            im.load()
            assert im.size == (72, 64) and im.mode == "RGB"
    assert not list(out.glob(".*.tmp"))


def test_compare_heatmap_on_a_file_is_a_one_line_error(capsys, triplet, tmp_path):
    not_dir = tmp_path / "file.txt"
    not_dir.write_text("x")
    args = [str(triplet / n) for n in ("ref.png", "a.png", "b.png")]
    code = main(["compare", *args, "-c", str(triplet / "tiny.safetensors"), "--heatmap", str(not_dir)])
    captured = capsys.readouterr()
    assert code == 2
    assert len(captured.err.strip().splitlines()) == 1 and "--heatmap" in captured.err
    assert not_dir.read_text() == "x"
