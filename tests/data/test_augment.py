"""Geometry of one triplet (prfnet.data.augment): crop, flip and rotation applied alike to every image, drawn from
the generator alone, with one shape per crop size."""

from __future__ import annotations

import pytest
import torch

from prfnet.data.augment import Geometry, center_geometry, item_generator, random_geometry, swap_coin
from prfnet.errors import DataError


def test_geometry_crops_flips_and_rotates_a_batch_alike():
    image = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    box = image[..., 1:3, 2:5]
    assert torch.equal(Geometry(1, 2, 2, 3).apply(image), box)
    assert torch.equal(Geometry(1, 2, 2, 3, hflip=True).apply(image), box.flip(-1))
    turned = Geometry(1, 2, 2, 3, rot90=5).apply(image)  # 5 quarter turns = 1
    assert turned.shape == (2, 3, 3, 2) and torch.equal(turned, torch.rot90(box, 1, dims=(-2, -1)))


def test_center_geometry_and_crop_errors():
    assert center_geometry(10, 7, 4) == Geometry(3, 1, 4, 4)
    assert center_geometry(10, 7, None) == Geometry(0, 0, 10, 7)  # the whole image
    with pytest.raises(DataError, match=r"r\.png: crop 8x8 is larger than the image \(7x10\)"):
        center_geometry(10, 7, 8, source="r.png")
    with pytest.raises(DataError, match="positive"):
        center_geometry(10, 7, 0)


def test_random_geometry_stays_inside_and_keeps_one_shape():
    seen = set()
    for seed in range(60):
        g = random_geometry(20, 30, 8, torch.Generator().manual_seed(seed))
        assert 0 <= g.top <= 12 and 0 <= g.left <= 22 and (g.height, g.width) == (8, 8)
        seen.add((g.hflip, g.rot90))
    assert {r for _, r in seen} == {0, 1, 2, 3} and {f for f, _ in seen} == {False, True}
    whole = [random_geometry(20, 30, None, torch.Generator().manual_seed(s)) for s in range(30)]
    assert {g.rot90 for g in whole} == {0, 2}  # not square: no quarter turns, so every sample keeps its shape
    fixed = random_geometry(20, 30, 8, torch.Generator().manual_seed(0), flip=False, rotate=False)
    assert not fixed.hflip and fixed.rot90 == 0


def test_item_generator_depends_on_seed_epoch_and_index_only():
    def draw(*key):
        return torch.rand(4, generator=item_generator(*key))

    assert torch.equal(draw(1, 2, 3), draw(1, 2, 3))
    assert not torch.equal(draw(1, 2, 3), draw(1, 2, 4)) and not torch.equal(draw(1, 2, 3), draw(1, 3, 3))
    assert not torch.equal(draw(1, 2, 3), draw(2, 2, 3))
    coins = [swap_coin(item_generator(0, 0, i)) for i in range(200)]
    assert 60 < sum(coins) < 140  # about half
