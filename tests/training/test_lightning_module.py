"""What training computes is what evaluation computes: batch norms, SE gates, modes, precision, ablations; and the
optimizers of a step (SGD's momentum and weight decay per parameter group, warm-up, constant and cosine rates).

CPU only; the tiny ``test_resnet`` backbone except where SE-Res2Net50's own structure is the point.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
import yaml
from safetensors.torch import load_file, save_file

from prfnet import PRFNet
from prfnet.model.backbone import IdentityInitSE, added_modules
from prfnet.training import load_train_config, train
from prfnet.training.curves import read_metrics_csv
from tests.conftest import TINY
from tests.training.test_datamodule import STEPS, Record, tiny
from tests.training.test_run import TINY as TINY_RUN
from tests.training.test_run import _same


def _triplets(n: int = 4, size: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    r = torch.rand(n, 3, size, size, generator=g)
    a = (r + 0.15 * torch.randn(r.shape, generator=g)).clamp(0, 1)
    b = (r * 0.7 + 0.1).clamp(0, 1)  # an image-wide contrast change
    return r, a, b


def _train_mode_distances(model: PRFNet, r: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """d(R, X) as the training path computes it (one backbone call over R and X, train mode)."""
    (v,) = model._vectors(r, [x])
    return model.head(v)


# -- batch statistics ----------------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["frozen", "batch"])
def test_train_mode_gives_zero_for_a_copy_of_the_reference_inside_a_batch(norm):
    torch.manual_seed(0)
    model = PRFNet(TINY, backbone_norm=norm).train()
    r, a, _ = _triplets(4)
    a[0] = r[0]  # only item 0 is a copy: the A batch and the R batch have different statistics
    with torch.no_grad():
        d = _train_mode_distances(model, r, a)
    assert d[0].item() == 0.0
    assert (d[1:] > 0).all()


def test_frozen_norm_logit_does_not_depend_on_the_other_triplets_in_training():
    torch.manual_seed(0)
    model = PRFNet(TINY).train()  # backbone_norm: frozen is the default
    with torch.no_grad():
        model.head.weight.normal_()
    r, a, b = _triplets(6)
    with torch.no_grad():
        batched = model(r, a, b)
        alone = torch.cat([model(r[i : i + 1], a[i : i + 1], b[i : i + 1]) for i in range(6)])
        shuffled = model(r.flip(0), a.flip(0), b.flip(0)).flip(0)
        evaluated = model.eval()(r, a, b)
    assert torch.allclose(batched, alone, rtol=1e-5, atol=1e-7)
    assert torch.allclose(batched, shuffled, rtol=1e-5, atol=1e-7)
    assert torch.allclose(batched, evaluated, rtol=1e-5, atol=1e-7)  # training computes what evaluation does


def test_batch_norm_mode_normalises_reference_and_distorted_together():
    """With batch statistics, R and X go through every batch norm in one call (statistics shared), so an
    image-wide contrast change is not normalised away; the running statistics follow the batches."""
    torch.manual_seed(0)
    model = PRFNet(TINY, backbone_norm="batch").train()
    r, _, b = _triplets(4)
    norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    seen: list[int] = []
    hooks = [m.register_forward_pre_hook(lambda mod, args: seen.append(args[0].shape[0])) for m in norms]
    before = [m.running_mean.clone() for m in norms]
    with torch.no_grad():
        d = _train_mode_distances(model, r, b)
    for h in hooks:
        h.remove()
    assert (d > 0).all()
    assert seen == [8] * len(norms)  # each batch norm ran once, on R and B together
    assert all(not torch.equal(x, m.running_mean) for x, m in zip(before, norms, strict=True))


# -- modes ---------------------------------------------------------------------------------------
def test_new_model_is_in_eval_mode_and_inference_methods_keep_the_mode():
    model = PRFNet(TINY, backbone_norm="batch")
    assert not any(m.training for m in model.modules())
    r, a, b = _triplets(3)
    with torch.no_grad():
        expected = model.rank(r[:1], a).scores
        model.train()
        state = {k: v.clone() for k, v in model.state_dict().items()}
        got = model.rank(r[:1], a, batch_size=2).scores
        score = model.score(r[:1], a)
        p = model.compare(r, a, b)
    assert torch.allclose(got, expected, rtol=1e-5)
    assert torch.allclose(score, expected, rtol=1e-5)
    assert p.shape == (3,)
    assert all(m.training for m in model.modules())  # left as it was found
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())  # no statistic moved


# -- SE gates and pretrained features ------------------------------------------------------------
def test_identity_se_gate_starts_at_exactly_one():
    se = IdentityInitSE(256)
    x = torch.randn(2, 256, 5, 7)
    assert torch.equal(se(x), x)
    assert se.fc1.weight.shape == (16, 256, 1, 1) and se.fc2.weight.shape == (256, 16, 1, 1)  # timm's SE shapes


def _pretrained_like(net: torch.nn.Module) -> torch.nn.Module:
    """Give ``net`` non-trivial BatchNorm weights and statistics, as trained weights have (timm zero-initialises
    the last BatchNorm of every residual branch, which would hide whatever the SE gates do)."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return net


@pytest.mark.slow
def test_prfnet_with_res2net_weights_starts_from_the_plain_res2net_features(tmp_path):
    torch.manual_seed(3)
    plain = _pretrained_like(timm.create_model("res2net50_26w_4s", features_only=True, out_indices=(1, 2, 3, 4)))
    classifier = timm.create_model("res2net50_26w_4s")
    classifier.load_state_dict({**classifier.state_dict(), **plain.state_dict()})
    weights = tmp_path / "res2net50.safetensors"
    save_file(classifier.state_dict(), str(weights))
    model = PRFNet(backbone_weights=weights)
    timm_se = PRFNet(backbone_weights=weights, se_gate="sigmoid")  # what the gates would do otherwise
    assert len(added_modules(model.backbone, "seres2net50")) == 16
    x = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        ours, theirs, random_gates = model.backbone(x), plain.eval()(x), timm_se.backbone(x)
    for f, g, h in zip(ours, theirs, random_gates, strict=True):
        assert f.shape == g.shape
        assert ((f - g).norm() / g.norm()).item() < 1e-4
        assert ((h - g).norm() / g.norm()).item() > 1e-2


def test_frozen_backbone_training_changes_no_backbone_tensor_but_trains_the_se_gates(clic_dir, tmp_path):
    """A real two-step run with freeze_backbone in both steps: every backbone tensor (weights and BatchNorm
    running statistics) ends as it started, except SE-Res2Net50's SE modules, which train in both steps."""
    torch.manual_seed(0)
    plain = _pretrained_like(timm.create_model("res2net50_26w_4s"))
    weights = tmp_path / "backbone.safetensors"
    save_file(plain.state_dict(), str(weights))
    frozen = {"epochs": 1, "lr": 0.05, "freeze_backbone": True}
    overrides = {"model.backbone": "seres2net50", "model.backbone_weights": str(weights), "data.batch_size": 2}
    overrides |= {"steps.classification": frozen, "steps.regression": frozen, "trainer.limit_train_batches": 2}
    result = train(load_train_config(TINY_RUN, overrides), clic_dir, tmp_path / "run", progress=False)
    initial = {k: v for k, v in plain.state_dict().items() if not k.startswith("fc.")}
    step1 = load_file(tmp_path / "run" / "step1_classification" / "model.safetensors")
    final = load_file(result.model_path)
    n_norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert sum("running_mean" in k or "running_var" in k for k in initial) == 2 * n_norms > 100
    assert all(torch.equal(v, final["backbone." + k]) for k, v in initial.items())
    se = [k for k in final if ".se.fc2.weight" in k]
    assert len(se) == 16
    assert all(step1[k].abs().sum() > 0 for k in se)  # trained in step 1 (they start at exactly zero) ...
    assert all(not torch.equal(step1[k], final[k]) for k in se)  # ... and in step 2


# -- reduced precision ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_decision_runs_in_float32_under_autocast(dtype):
    torch.manual_seed(0)
    model = PRFNet(TINY)
    r, a, b = _triplets(8, 64)
    with torch.no_grad():
        model.head.weight.fill_(0.69 * 2 / model(r, a, b).abs().median().item())  # logits of order 2
        p32 = model.compare(r, a, b)
        with torch.autocast("cpu", dtype=dtype):
            logit = model(r, a, b)
            p = model.compare(r, a, b)
            d = model.score(r, a)
    assert logit.dtype == p.dtype == d.dtype == torch.float32
    assert (p - p32).abs().max().item() < 0.01
    assert ((p - 0.5).abs() > 0.1).any()  # the check is not about probabilities that all sit at 0.5


# -- ablations: every parameter gets a gradient, so DDP runs them --------------------------------
ABLATIONS = {"concat": {"pair_block": "concat"}, "single_scale": {"fusion": "single_scale"}, "no_attention": {}}
ABLATIONS["no_attention"] = {"attention": False}


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_every_ablation_gives_every_parameter_a_gradient(name):
    model = PRFNet(TINY, **ABLATIONS[name]).train()
    r, a, b = _triplets(2)
    model(r, a, b).sum().backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ABLATIONS))
def test_every_ablation_trains_under_two_process_ddp(clic_dir, tmp_path, name):
    config = tmp_path / "ablation.yaml"
    tiny = TINY_RUN | {"model": TINY_RUN["model"] | ABLATIONS[name]}
    tiny["trainer"] = TINY_RUN["trainer"] | {"save_rank_weights": True, "process_group_backend": "gloo"}
    tiny["steps"] = {"classification": {"epochs": 1, "lr": 0.01}, "regression": {"epochs": 0}}
    config.write_text(yaml.safe_dump(tiny))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "prfnet", "train", "-c", str(config), "--data", str(clic_dir), "--out", str(out)]
    command += ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--no-progress", "--json"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert Path(json.loads(done.stdout)["model"]) == out / "model.safetensors"
    rank0, rank1 = (load_file(out / f"rank{k}.safetensors") for k in (0, 1))
    assert _same(rank0, rank1)


def test_sgd_applies_momentum_and_weight_decay_at_each_groups_rate(clic_dir, tmp_path):
    lr, momentum, decay, mult = 0.05, 0.5, 0.01, 0.2
    steps = {"optimizer": "sgd", "lr": lr, "momentum": momentum, "weight_decay": decay, "backbone_lr_mult": mult}
    changes = {f"steps.classification.{k}": v for k, v in steps.items()}
    config = tiny(**changes, **{"steps.classification.scheduler": "constant", "steps.classification.epochs": 1})
    config = load_train_config(config.to_dict(), {"steps.regression.epochs": 0, "data.batch_size": 2})
    record = Record(params=True)
    train(config, clic_dir, tmp_path / "run", progress=False, callbacks=[record])

    assert record.optimizers["classification"] is torch.optim.SGD
    first, second = record.steps  # 4 triplets, batch size 2
    buffers = {}
    for step in (first, second):
        assert step["groups"] == {
            "heads": {"lr": lr, "weight_decay": decay, "betas": None, "momentum": momentum},
            "backbone": {"lr": lr * mult, "weight_decay": decay, "betas": None, "momentum": momentum},
        }
        assert len(step["before"]) > 10 and any(n.startswith("backbone.") for n in step["before"])
        for name, (before, grad) in step["before"].items():
            d_p = grad + decay * before
            buffers[name] = momentum * buffers[name] + d_p if name in buffers else d_p
            rate = lr * mult if name.startswith("backbone.") else lr
            torch.testing.assert_close(step["after"][name], before - rate * buffers[name], rtol=0, atol=2e-7)


def test_warm_up_constant_and_cosine_learning_rates_per_step(clic_dir, tmp_path):
    steps = {
        "classification": {"lr": 0.01, "scheduler": "constant", "warmup_steps": 3, "epochs": 2},
        "regression": {"lr": 0.001, "scheduler": "cosine", "warmup_steps": 2, "min_lr_ratio": 0.2, "epochs": 2},
    }
    changes = {f"steps.{s}.{k}": v for s, values in steps.items() for k, v in values.items()}
    record = Record()
    result = train(
        tiny(**changes, **{"data.batch_size": 1}), clic_dir, tmp_path / "run", progress=False, callbacks=[record]
    )

    # 4 triplets, batch size 1: 8 optimizer steps per training step; warm-up from lr / W to lr over W steps
    warm_constant = [1 / 3, 2 / 3, 1, 1, 1, 1, 1, 1]
    cosine = [0.5, 1.0] + [0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * k / 6)) for k in range(6)]  # over 8 - 2 steps
    expected = {"classification": [0.01 * f for f in warm_constant], "regression": [0.001 * f for f in cosine]}
    for step in STEPS:
        used = [s["groups"] for s in record.steps if s["step"] == step]
        assert [g["heads"]["lr"] for g in used] == pytest.approx(expected[step], rel=1e-9)
        assert [g["backbone"]["lr"] for g in used] == pytest.approx([0.1 * x for x in expected[step]], rel=1e-9)
    rows = read_metrics_csv(result.metrics_csv)  # lr: the epoch's mean over its steps
    means = [sum(expected[r["step"]][4 * r["epoch"] : 4 * r["epoch"] + 4]) / 4 for r in rows]
    assert [r["lr"] for r in rows] == pytest.approx(means, rel=1e-6)


# -- validation --------------------------------------------------------------------------------------------------------
def test_validation_scores_each_pair_once_per_pass_and_gives_the_forward_logits():
    """Triplets sharing pairs (as CLIC's do): the logits equal the model's own, with one backbone pass per distinct
    distorted image and per reference and batch; a new pass (new weights) computes them again."""
    from prfnet.training.config import StepSettings
    from prfnet.training.lightning_module import PRFNetModule

    torch.manual_seed(0)
    module = PRFNetModule(PRFNet(TINY, backbone_norm="batch"), "classification", StepSettings(epochs=1)).eval()
    g = torch.Generator().manual_seed(1)
    images = {name: torch.rand(3, 40, 48, generator=g) for name in ("r1", "r2", "x1", "y1", "z1", "x2", "y2")}
    triplets = [("r1", "x1", "y1"), ("r1", "y1", "z1"), ("r2", "x2", "y2"), ("r1", "z1", "x1"), ("r2", "y2", "x2")]
    batches = [triplets[:3], triplets[3:]]

    def batch(rows):
        stack = {key: torch.stack([images[row[i]] for row in rows]) for i, key in enumerate(("ref", "a", "b"))}
        return {**stack, "files": [tuple(row[i] for row in rows) for i in range(3)]}

    passes = []
    original = module.model.features
    module.model.features = lambda x: passes.append(x.shape[0]) or original(x)
    with torch.no_grad():
        for _ in range(2):  # two validation passes
            module.on_validation_epoch_start()
            before = len(passes)
            for rows in batches:
                b = batch(rows)
                torch.testing.assert_close(module.validation_logits(b), module(b), rtol=1e-5, atol=1e-6)
            # the forward calls above run 3 images per triplet; the memo: r1, r2 and the 5 distorted images once
            memo_images = sum(passes[before:]) - 3 * len(triplets)
            assert memo_images == 2 + 5
    assert module.validation_logits({k: v for k, v in batch(triplets).items() if k != "files"}).shape == (5,)
