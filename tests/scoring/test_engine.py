"""The scoring engine (``prfnet.scoring.engine``): each reference encoded once, the score store (lookups, per-chunk
commits, scores recomputed only for changed files or weights, an interrupted run resumed). Decoding in worker
processes: ``test_pair_loader.py``; metric identities and refusing metrics: ``test_plan.py``. CPU, timm's
``test_resnet``, 64 px images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from prfnet.api import load_model
from prfnet.baselines import get_metric
from prfnet.images import load_image
from prfnet.scoring.engine import score_pairs
from prfnet.scoring.metrics import PRFNetMetric
from prfnet.store import ScoreStore
from tests.conftest import make_pairs, write_png

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one intra-op thread is fastest


# -- each reference encoded once; scores equal model.score ------------------------------------------------------------


def test_each_reference_is_encoded_once_and_scores_equal_model_score(tiny_model, data):
    images_seen: list[int] = []
    hook = tiny_model.backbone.register_forward_hook(lambda module, args, out: images_seen.append(args[0].shape[0]))
    try:
        result = score_pairs(data, [PRFNetMetric(tiny_model)], batch_size=2, progress=False)
    finally:
        hook.remove()
    assert sum(images_seen) == 2 + 5 * 2  # 2 references once each + 10 distorted images, not 10 + 10
    assert result.computed == {"prfnet": 10} and result.from_store == {"prfnet": 0} and not result.failed
    with torch.no_grad():
        expected = [tiny_model.score(load_image(r), load_image(d)).item() for r, d in data]
    np.testing.assert_allclose(result.lookup("prfnet", data), expected, rtol=1e-5, atol=1e-7)


# -- the score store ------------------------------------------------------------------------------------------------


def test_store_reuses_scores_and_recomputes_only_what_changed(tmp_path, checkpoints):
    pairs = make_pairs(tmp_path / "images", refs=2, dists=3)
    store = tmp_path / "scores.sqlite"

    def run(checkpoint):
        metrics = [PRFNetMetric(load_model(checkpoint)), get_metric("psnr")]
        return score_pairs(pairs, metrics, batch_size=2, progress=False, store=store)

    first = run(checkpoints[0])
    assert first.computed == {"prfnet": 6, "psnr": 6} and first.from_store == {"prfnet": 0, "psnr": 0}
    second = run(checkpoints[0])  # the checkpoint loaded again: the same identity
    assert second.computed == {"prfnet": 0, "psnr": 0} and second.from_store == {"prfnet": 6, "psnr": 6}
    for name in ("prfnet", "psnr"):
        assert np.array_equal(first.scores[name], second.scores[name])
    with ScoreStore(store) as opened:
        assert opened.count() == 12

    changed = pairs[4][1]  # r1_d1.png: new bytes, same size in pixels
    before = Path(changed).read_bytes()
    write_png(Path(changed), np.random.default_rng(7).random((64, 64, 3)))
    assert Path(changed).read_bytes() != before
    third = run(checkpoints[0])
    assert third.computed == {"prfnet": 1, "psnr": 1} and third.from_store == {"prfnet": 5, "psnr": 5}
    fresh = score_pairs(pairs, [PRFNetMetric(load_model(checkpoints[0])), get_metric("psnr")], progress=False)
    for name in ("prfnet", "psnr"):
        np.testing.assert_allclose(third.scores[name], fresh.scores[name], rtol=1e-6)
        assert third.scores[name][4] != first.scores[name][4]

    other = run(checkpoints[1])  # other weights: another identity, PSNR still from the store
    assert other.computed == {"prfnet": 6, "psnr": 0} and other.from_store == {"prfnet": 0, "psnr": 6}
    assert not np.allclose(other.scores["prfnet"], third.scores["prfnet"])


def test_an_interrupted_run_keeps_whole_chunks_and_resumes(tmp_path, tiny_model):
    pairs = make_pairs(tmp_path / "images", refs=2, dists=5)

    class Interrupted(KeyboardInterrupt):
        pass

    class StopsAfter:
        name, higher_better = "stops", False

        def __init__(self, calls: int):
            self.calls = calls

        def __call__(self, ref, dist):
            self.calls -= 1
            if self.calls < 0:
                raise Interrupted()
            return (ref - dist).abs().mean(dim=(1, 2, 3))

    store = tmp_path / "scores.sqlite"
    with pytest.raises(Interrupted):  # killed while scoring the 4th of 6 chunks
        score_pairs(pairs, [PRFNetMetric(tiny_model), StopsAfter(3)], batch_size=2, progress=False, store=store)
    with ScoreStore(store) as opened:
        assert opened.count() == 2 * (2 + 2 + 1)  # 3 chunks of (2, 2, 1) pairs x 2 metrics; not the 4th one
    metrics = [PRFNetMetric(tiny_model), StopsAfter(10**6)]
    resumed = score_pairs(pairs, metrics, batch_size=2, progress=False, store=store)
    assert resumed.computed == {"prfnet": 5, "stops": 5} and resumed.from_store == {"prfnet": 5, "stops": 5}
    clean = score_pairs(pairs, metrics, batch_size=2, progress=False)
    for name in ("prfnet", "stops"):
        assert np.array_equal(resumed.scores[name], clean.scores[name])
