"""Figures of prfnet.report.plots: PRFNet's per-pixel maps of example triplets (on conftest's CLIC set)."""

from __future__ import annotations

import pytest
import torch

from prfnet.images import load_image
from prfnet.report.plots import TripletExample, example_maps, plot_example_maps


def test_maps_are_computed_on_the_full_images_and_average_to_the_distances(clic_dir, tiny_model):
    images = clic_dir / "images"
    ex = TripletExample(images / "r0.png", images / "r0_d0.png", images / "r0_d1.png", decision="A")
    ref, a, b, map_a, map_b = example_maps(ex, tiny_model)
    assert map_a.shape == map_b.shape == ref.shape[-2:] == (64, 64)
    with torch.no_grad():
        full = [load_image(images / n) for n in ("r0.png", "r0_d0.png", "r0_d1.png")]
        d_a, d_b = (float(tiny_model.score(full[0], x)) for x in full[1:])
    assert float(map_a.double().mean()) == pytest.approx(d_a, rel=1e-4)
    assert float(map_b.double().mean()) == pytest.approx(d_b, rel=1e-4)
    fig = plot_example_maps([ex, ex], tiny_model, max_side=32)
    assert len(fig.axes) >= 8  # 2 rows x 4 panels (+ colour bars)
