"""Figures of prfnet.report.plots: PRFNet's per-pixel maps of example triplets (on conftest's CLIC set), and who
voted, as the reliability diagram and the CLIC report name them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from prfnet.evaluation import pages
from prfnet.images import load_image
from prfnet.report.plots import TripletExample, example_maps, plot_example_maps, plot_reliability


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


def test_the_reliability_axis_names_who_voted():
    prob, votes = np.array([0.2, 0.4, 0.6, 0.9]), np.array([0.0, 0.5, 1.0, 1.0])
    assert plot_reliability(prob, votes).axes[0].get_ylabel() == "human"  # CLIC's and BAPPS' own votes
    assert plot_reliability(prob, votes, votes="simulated votes").axes[0].get_ylabel() == "simulated votes"


@pytest.mark.parametrize(
    ("marker", "simulated"),
    [
        (None, False),  # real CLIC files: people's votes
        (("ceiling.json", json.dumps({"simulated": True})), True),  # prfnet synth --kind codecs, the demo
        (("README.txt", "Synthetic set\n\nTHIS IS A DEMONSTRATION SET, NOT HUMAN JUDGMENTS.\n"), True),  # distortions
        (("ceiling.json", "{not json"), False),
    ],
)
def test_the_clic_report_says_simulated_votes_where_the_set_is_synthetic(tmp_path, monkeypatch, marker, simulated):
    oracle = tmp_path / "oracle.csv"
    oracle.write_text("r.png,a.png,b.png,0\n")
    if marker is not None:
        (tmp_path / marker[0]).write_text(marker[1])
    assert pages.votes_are_simulated(oracle) is simulated
    labels = []

    def recording(*args, votes="human", **kwargs):
        labels.append(votes)
        return plot_reliability(*args, votes=votes, **kwargs)

    monkeypatch.setattr(pages, "plot_reliability", recording)
    reliability = (np.array([0.3, 0.7]), np.array([0.0, 1.0]))
    report = pages.clic_report(
        {}, csv=tmp_path / "v.csv", oracle=oracle, shown=None, reliability=reliability, examples=[]
    )
    html = report.html()
    who = "simulated" if simulated else "human"
    assert labels == ["simulated votes" if simulated else "human"] and f"against the {who} vote fraction" in html
    assert ("SIMULATED votes" in html) is simulated and ("human" in html) is not simulated
    forced = pages.clic_report({}, csv=oracle, oracle=oracle, shown=None, reliability=reliability, examples=[],
                               simulated_votes=True)  # fmt: skip
    assert "against the simulated vote fraction" in forced.html()
