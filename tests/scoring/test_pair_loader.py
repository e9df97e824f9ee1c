"""Decoding of image pairs (``prfnet.scoring.pair_loader``): chunks of one reference, decoded in DataLoader worker
processes with the same scores as in the main process, and a size mismatch as one data error naming the file.
CPU, timm's ``test_resnet``, 64 px images."""

from __future__ import annotations

import os

import numpy as np
import pytest

from prfnet.baselines import get_metric
from prfnet.errors import DataError
from prfnet.scoring import pair_loader as pair_loader_module
from prfnet.scoring.engine import score_pairs
from prfnet.scoring.metrics import PRFNetMetric
from prfnet.scoring.pair_loader import PairChunkDataset, chunk_loader, plan_chunks
from tests.conftest import make_pairs, write_png

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one intra-op thread is fastest


def test_worker_processes_decode_and_give_the_same_scores(tiny_model, data, tmp_path, monkeypatch):
    log = tmp_path / "decoders.txt"
    real = pair_loader_module.load_image

    def recording(path, **kwargs):  # runs where the chunk is decoded: a forked worker sees this patch too
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        return real(path, **kwargs)

    monkeypatch.setattr(pair_loader_module, "load_image", recording)
    metrics = [PRFNetMetric(tiny_model), get_metric("psnr")]
    here = score_pairs(data, metrics, batch_size=2, progress=False, workers=0)
    assert set(log.read_text().split()) == {str(os.getpid())}
    log.unlink()
    workers = score_pairs(data, metrics, batch_size=2, progress=False, workers=2)
    decoders = set(log.read_text().split())
    assert decoders and str(os.getpid()) not in decoders  # decoded in other processes only
    for name in ("prfnet", "psnr"):
        assert np.array_equal(here.scores[name], workers.scores[name])  # exactly
    chunks = plan_chunks(sorted(data), range(len(data)), 2)
    assert [len(c.dists) for c in chunks] == [2, 2, 1, 2, 2, 1]  # one reference per chunk
    assert chunk_loader(PairChunkDataset(chunks, "test"), 2).num_workers == 2


@pytest.mark.parametrize("workers", [0, 2])
def test_a_size_mismatch_is_one_data_error_naming_the_file(tmp_path, workers):
    pairs = make_pairs(tmp_path / "images", refs=2, dists=3)
    wrong = tmp_path / "images" / "r1_d2.png"
    write_png(wrong, np.zeros((48, 64, 3)))
    with pytest.raises(DataError) as info:
        score_pairs(pairs, [get_metric("psnr")], batch_size=2, progress=False, workers=workers, source="pairs.csv")
    message = str(info.value)
    assert str(wrong) in message and "differs from its reference" in message and "pairs.csv" in message
    assert "Traceback" not in message and len(message.splitlines()) == 1
