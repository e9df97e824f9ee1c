"""Scoring split across 2 gloo processes (Lightning Trainer.predict under DDP on the CPU): every pair scored exactly
once, by one of the processes, each process writing its own shard, and the union merged into the store equals a
single-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from prfnet import PRFNet
from prfnet.store import ScoreStore

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from prfnet.api import load_model
    from prfnet.baselines import get_metric
    from prfnet.scoring.engine import score_pairs
    from prfnet.scoring.metrics import PRFNetMetric

    class Counting:  # PSNR that records the pairs this process scored
        name, higher_better, accepts_uint8 = "psnr", True, True
        def __init__(self):
            self.inner, self.pairs = get_metric("psnr"), 0
            self.about = self.inner.about
        def __call__(self, ref, dist):
            self.pairs += dist.shape[0]
            return self.inner(ref, dist)

    checkpoint, pairs_file, store, out, devices = sys.argv[1:6]
    pairs = json.load(open(pairs_file))
    counting = Counting()
    metrics = [PRFNetMetric(load_model(checkpoint)), counting]
    trainer = dict(accelerator="cpu", devices=int(devices), strategy="ddp") if int(devices) > 1 else None
    scores = score_pairs(pairs, metrics, batch_size=2, progress=False, store=store, trainer=trainer)
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0)))
    with open(f"{out}.rank{rank}.json", "w") as f:
        json.dump({"psnr_pairs": counting.pairs, "scores": {k: v.tolist() for k, v in scores.scores.items()},
                   "computed": scores.computed, "partial": scores.partial}, f)
    """
)


def _corpus(root) -> list[tuple[str, str]]:
    rng = np.random.default_rng(0)
    pairs = []
    for r in range(3):
        ref = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(ref).save(root / f"r{r}.png")
        for d in range(5):
            noisy = np.clip(ref.astype(int) + rng.integers(-30, 31, ref.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(root / f"r{r}_d{d}.png")
            pairs.append((str(root / f"r{r}.png"), str(root / f"r{r}_d{d}.png")))
    return pairs


def _run(tmp_path, devices: int, name: str) -> dict:
    script = tmp_path / "score.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    args = [str(tmp_path / "tiny.safetensors"), str(tmp_path / "pairs.json"), str(tmp_path / f"{name}.sqlite")]
    command = [sys.executable, str(script), *args, str(tmp_path / name), str(devices)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return {rank: json.loads((tmp_path / f"{name}.rank{rank}.json").read_text()) for rank in range(devices)}


def test_two_gloo_processes_score_every_pair_once_and_match_one_process(tmp_path):
    PRFNet("test_resnet").save_pretrained(tmp_path / "tiny.safetensors")
    (tmp_path / "images").mkdir()
    pairs = _corpus(tmp_path / "images")
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))

    two = _run(tmp_path, 2, "ddp")
    one = _run(tmp_path, 1, "single")[0]

    # each process scored a share, together every pair exactly once (no padding, no repeat)
    shares = [two[rank]["psnr_pairs"] for rank in (0, 1)]
    assert min(shares) > 0 and sum(shares) == len(pairs) == one["psnr_pairs"]
    # global rank 0 gathered the union from the store: the same scores as one process; rank 1 knows it holds a part
    assert not two[0]["partial"] and two[1]["partial"] and not one["partial"]
    for metric in ("prfnet", "psnr"):
        assert np.allclose(two[0]["scores"][metric], one["scores"][metric], rtol=1e-6, atol=1e-7), metric
        assert two[0]["computed"][metric] == len(pairs)
    with ScoreStore(tmp_path / "ddp.sqlite") as a, ScoreStore(tmp_path / "single.sqlite") as b:
        assert a.metrics() == b.metrics() and set(a.metrics().values()) == {len(pairs)}
        assert a._db().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not list(tmp_path.glob("ddp.sqlite.rank-*"))  # the processes' shards were merged and removed
