"""The scoring engine (``prfnet.scoring.engine``): each reference encoded once, decoding in DataLoader workers,
the score store (lookups, per-chunk commits, metric identities, an interrupted run resumed), metrics that refuse
the images, data errors; and ``PRFNet.optimize_for_inference`` (device policy, precision, compiled backbone).
CPU, timm's ``test_resnet``, 64 px images."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prfnet import PRFNet
from prfnet.api import load_model
from prfnet.baselines import get_metric
from prfnet.errors import ConfigError, DataError
from prfnet.images import load_image
from prfnet.model.inference import InferencePolicy, device_policy
from prfnet.scoring import pair_loader as pair_loader_module
from prfnet.scoring.engine import score_pairs
from prfnet.scoring.metrics import PRFNetMetric
from prfnet.scoring.pair_loader import PairChunkDataset, chunk_loader, plan_chunks
from prfnet.scoring.plan import metric_identity
from prfnet.store import ScoreStore

TINY = "test_resnet"
pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one intra-op thread is fastest


def _save(path, array: np.ndarray) -> None:
    Image.fromarray((np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def make_pairs(folder, refs: int = 2, dists: int = 5, side: int = 64, seed: int = 0) -> list[tuple[str, str]]:
    """``refs`` random references with ``dists`` noisy versions each: the (reference, distorted) path pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pairs = []
    for r in range(refs):
        ref = rng.random((side, side, 3))
        _save(folder / f"r{r}.png", ref)
        for k in range(dists):
            _save(folder / f"r{r}_d{k}.png", ref + rng.normal(0.0, 0.03 * (k + 1), ref.shape))
            pairs.append((str(folder / f"r{r}.png"), str(folder / f"r{r}_d{k}.png")))
    return pairs


def _checkpoint(path, seed: int):
    torch.manual_seed(seed)
    model = PRFNet(TINY)
    with torch.no_grad():
        model.head.weight.normal_()
    return model.save_pretrained(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs") / "images")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    return [_checkpoint(folder / f"m{seed}.safetensors", seed) for seed in (0, 1)]


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
    _save(changed, np.random.default_rng(7).random((64, 64, 3)))
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


def test_metric_identities(checkpoints):
    one, again, two = (PRFNetMetric(load_model(c)) for c in (checkpoints[0], checkpoints[0], checkpoints[1]))
    assert metric_identity(one) == metric_identity(again) != metric_identity(two)
    assert metric_identity(one).startswith("prfnet/") and metric_identity(one).endswith("/whole/fp32")
    tiled = PRFNetMetric(load_model(checkpoints[0], tile_size=32))
    assert metric_identity(tiled) != metric_identity(one)
    assert metric_identity(get_metric("psnr")) == metric_identity(get_metric("psnr"))  # stable, not per object
    assert metric_identity(get_metric("psnr")).startswith("psnr/")
    assert metric_identity(get_metric("psnr")) != metric_identity(get_metric("ssim"))


def test_identity_follows_the_model_as_it_is_now(checkpoints):
    """Precision and tiling set after loading, and an in-memory model's weights, are part of the identity."""
    loaded = load_model(checkpoints[0])
    before = metric_identity(PRFNetMetric(loaded))
    loaded.set_tiling(32)
    assert metric_identity(PRFNetMetric(loaded)) == before.replace("/whole/", "/tile-32x32/")
    bf16 = PRFNet(TINY).optimize_for_inference("bf16")
    assert metric_identity(PRFNetMetric(bf16)).endswith("/bf16")
    torch.manual_seed(0)
    model = PRFNet(TINY)
    metric = PRFNetMetric(model)
    first = metric_identity(metric)
    with torch.no_grad():
        model.head.weight.add_(1.0)  # e.g. trained further between two evaluations
    assert metric_identity(metric) != first


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


def test_reference_features_are_not_reused_by_a_later_run(tmp_path):
    """The metric caches one reference's features within a run; a later run (the model changed) encodes again."""
    pairs = make_pairs(tmp_path / "images", refs=1, dists=2)
    torch.manual_seed(0)
    model = PRFNet(TINY).eval()
    metric = PRFNetMetric(model)
    score_pairs(pairs, [metric], progress=False)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.backbone.parameters():  # e.g. trained further between two evaluations
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    again = score_pairs(pairs, [metric], progress=False)
    with torch.no_grad():
        expected = [model.score(load_image(r), load_image(d)).item() for r, d in pairs]
    np.testing.assert_allclose(again.lookup("prfnet", pairs), expected, rtol=1e-5)


# -- metrics that refuse the images, data errors ----------------------------------------------------------------------


def test_a_metric_refusing_the_images_is_listed_and_the_others_score(data):
    result = score_pairs(data, [get_metric("ms_ssim"), get_metric("psnr")], batch_size=2, progress=False)
    assert set(result.failed) == {"ms_ssim"}
    assert "first refused" in result.failed["ms_ssim"] and "64x64" in result.failed["ms_ssim"]
    assert np.isfinite(result.scores["psnr"]).all() and result.computed["psnr"] == 10


@pytest.mark.parametrize("workers", [0, 2])
def test_a_size_mismatch_is_one_data_error_naming_the_file(tmp_path, workers):
    pairs = make_pairs(tmp_path / "images", refs=2, dists=3)
    wrong = tmp_path / "images" / "r1_d2.png"
    _save(wrong, np.zeros((48, 64, 3)))
    with pytest.raises(DataError) as info:
        score_pairs(pairs, [get_metric("psnr")], batch_size=2, progress=False, workers=workers, source="pairs.csv")
    message = str(info.value)
    assert str(wrong) in message and "differs from its reference" in message and "pairs.csv" in message
    assert "Traceback" not in message and len(message.splitlines()) == 1


# -- optimize_for_inference -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bn_model():
    """test_resnet with non-trivial batch-norm statistics and affine parameters (folding must carry them)."""
    torch.manual_seed(3)
    model = PRFNet(TINY).eval()
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        model.head.weight.normal_(generator=g)
        for bn in (m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.normal_(0.0, 0.2, generator=g)
            bn.running_var.uniform_(0.5, 2.0, generator=g)
            bn.weight.uniform_(0.5, 1.5, generator=g)
            bn.bias.normal_(0.0, 0.2, generator=g)
    return model


def _images(n: int, seed: int, side: int = 64) -> torch.Tensor:
    return torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


@pytest.mark.slow
def test_a_compiled_backbone_gives_the_same_scores_and_refuses_training_and_saving(bn_model, tmp_path):
    ref, dist = _images(1, 0), _images(3, 1)
    compiled = copy.deepcopy(bn_model).optimize_for_inference(compile=True)  # ~30 s of Inductor compilation
    assert compiled.inference_only and compiled.inference == device_policy("cpu")
    with torch.no_grad():
        np.testing.assert_allclose(compiled.score(ref, dist), bn_model.score(ref, dist), rtol=1e-5)
    with pytest.raises(ConfigError, match="compiled"):
        compiled.train()
    with pytest.raises(ConfigError, match="compiled"):
        compiled.save_pretrained(tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()
    compiled.eval()  # eval mode stays allowed


def test_optimize_without_compile_keeps_the_model_trainable_and_its_scores(bn_model, tmp_path):
    ref, dist = _images(1, 0), _images(3, 1)
    model = copy.deepcopy(bn_model).optimize_for_inference()
    assert not model.inference_only and model.inference == device_policy("cpu")
    with torch.no_grad():
        assert torch.equal(model.score(ref, dist), bn_model.score(ref, dist))
    model.save_pretrained(tmp_path / "m.safetensors")
    model.inference_only = True  # what compile=True sets
    with pytest.raises(ConfigError, match="compiled"):
        model.train()
    with pytest.raises(ConfigError, match="compiled"):
        model.save_pretrained(tmp_path / "n.safetensors")


def test_device_policies_and_precisions():
    cpu, cuda = device_policy("cpu"), device_policy("cuda")  # only the device type is read: no GPU needed
    assert (cpu.joint_batch, cpu.channels_last, cpu.precision) == (False, False, "fp32")
    assert (cuda.joint_batch, cuda.channels_last) == (True, True)
    assert device_policy(torch.device("cuda", 1), "fp16").autocast_dtype == torch.float16
    with pytest.raises(ConfigError, match="fp16"):
        device_policy("cpu", "fp16")
    with pytest.raises(ConfigError, match="fp16"):
        PRFNet(TINY).optimize_for_inference("fp16")
    with pytest.raises(ConfigError, match="precision"):
        InferencePolicy(precision="fp8")


def test_bf16_backbone_on_cpu_is_close_and_the_head_stays_float32(bn_model):
    ref, dist = _images(1, 0), _images(3, 1)
    fp32 = copy.deepcopy(bn_model).optimize_for_inference()
    bf16 = copy.deepcopy(bn_model).optimize_for_inference("bf16")
    head_dtypes = []
    hook = bf16.head.register_forward_hook(lambda module, args, out: head_dtypes.append(out.dtype))
    try:
        with torch.no_grad():
            low, full = bf16.score(ref, dist), fp32.score(ref, dist)
    finally:
        hook.remove()
    assert low.dtype == torch.float32 and head_dtypes == [torch.float32]
    np.testing.assert_allclose(low, full, rtol=5e-2)


def test_joint_batch_and_channels_last_change_nothing(bn_model):
    ref, a, b = _images(1, 0), _images(2, 1), _images(2, 2)
    with torch.no_grad():
        separate = (bn_model.score(ref, a), bn_model.compare(ref.expand(2, -1, -1, -1), a, b))
        for policy in (InferencePolicy(joint_batch=True), InferencePolicy(channels_last=True)):
            model = copy.deepcopy(bn_model)
            model.inference = policy
            joint = (model.score(ref, a), model.compare(ref.expand(2, -1, -1, -1), a, b))
            for x, y in zip(joint, separate, strict=True):
                np.testing.assert_allclose(x, y, rtol=1e-5)
