"""The training data (``prfnet.training.datamodule``): BAPPS, PieAPP and MOS data (MOS pairs split by reference),
``ties``, and a data order that depends on the seed and the epoch only.

Every run is checked from the batches it trained on: each training image is recognised by its sorted pixel values
(the same for any flip, 90-degree rotation or whole-image crop), so the test knows which files were shown as R, A
and B and compares the batch's ``p_a``, majority label and loss, and the target the loss used (read back from its
gradient), with the label the test wrote into the data set's own files. CPU, timm's ``test_resnet``, 64 px images,
a handful of triplets.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from PIL import Image
from safetensors.torch import load_file

from prfnet import ConfigError, load_image
from prfnet.training import load_train_config, train
from prfnet.training.curves import read_metrics_csv
from prfnet.training.datamodule import EpochSampler, load_training_data
from tests.training.test_bapps import write_bapps
from tests.training.test_run import TINY, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

STEPS = ("classification", "regression")


def tiny(**changes):
    """TINY (test_resnet, 64 px) without a validation set unless asked, one thread, and ``changes`` (dotted)."""
    return load_train_config(TINY, {"data.val.holdout_fraction": 0.0, "trainer.cpu_threads": 1, **changes})


def fingerprint(image: torch.Tensor) -> str:
    """The same for an image and any flip, rotation or permutation of its pixels; different for other images."""
    return hashlib.sha1(torch.sort(image.flatten()).values.numpy().tobytes()).hexdigest()


def majority(p_a: float) -> float:
    return 1.0 if p_a > 0.5 else 0.0 if p_a < 0.5 else 0.5


class Record(Callback):
    """What training did: per batch the images, ``p_a``, ``label``, logits and loss; per optimizer step every
    parameter group's learning rate and settings (and, with ``params``, the parameters before and after)."""

    def __init__(self, params: bool = False):
        self.params = params
        self.batches: list[dict] = []
        self.steps: list[dict] = []
        self.start: dict[str, dict[str, torch.Tensor]] = {}
        self.optimizers: dict[str, type] = {}
        self._logit: torch.Tensor | None = None
        self._grad: torch.Tensor | None = None
        self._hook = None

    def on_train_start(self, trainer, pl_module):
        self.start[pl_module.step_name] = {k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}
        self.optimizers[pl_module.step_name] = type(trainer.optimizers[0])
        self._hook = pl_module.model.register_forward_hook(self._keep_logit)

    def _keep_logit(self, module, inputs, logit):
        self._logit = logit.detach().clone()
        if logit.requires_grad:  # training: d loss / d logit tells the target the loss used
            logit.register_hook(lambda grad: setattr(self, "_grad", grad.detach().clone()))

    def on_train_end(self, trainer, pl_module):
        self._hook.remove()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        record = {k: batch[k].detach().clone() for k in ("ref", "a", "b", "p_a", "label")}
        self.batches.append(record | {"step": pl_module.step_name, "epoch": trainer.current_epoch})

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        groups = {
            g["name"]: {k: g.get(k) for k in ("lr", "weight_decay", "betas", "momentum")}
            for g in optimizer.param_groups
        }
        step = {"step": pl_module.step_name, "global_step": trainer.global_step, "groups": groups}
        if self.params:
            named = pl_module.model.named_parameters()
            step["before"] = {n: (p.detach().clone(), p.grad.clone()) for n, p in named if p.grad is not None}
        self.steps.append(step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches[-1].update(loss=float(outputs["loss"]), logit=self._logit, grad=self._grad)
        if self.params:
            self.steps[-1]["after"] = {n: p.detach().clone() for n, p in pl_module.model.named_parameters()}


def check_training(record: Record, files: dict[Path, str], p_closer: dict, epochs: dict, batch_size: int, ties: str):
    """The batches of each step hold the right triplets with ``p_a`` = ``p_closer[(ref, a, b)]`` (the labels written
    into the data set, for the orientation shown; ``files`` names each image), the step's loss of them, and every
    triplet once per epoch, in ``ceil(triplets / batch_size)`` optimizer steps per epoch."""
    names = {fingerprint(load_image(path)[0]): name for path, name in files.items()}
    assert len(names) == len(files)  # every image is recognised by its pixels
    triplets = {_triplet(key) for key in p_closer}
    for step in STEPS:
        batches = [b for b in record.batches if b["step"] == step]
        expected = {t for t in triplets if step == "regression" or ties == "soft" or p_closer[t] != 0.5}
        per_epoch = Counter()
        for batch in batches:
            shown = [tuple(names[fingerprint(batch[k][i])] for k in ("ref", "a", "b")) for i in range(len(batch["a"]))]
            p_a = torch.tensor([p_closer[key] for key in shown])
            assert torch.equal(batch["p_a"], p_a), (step, shown, batch["p_a"])
            label = torch.tensor([majority(float(p)) for p in p_a])
            assert torch.equal(batch["label"], label)
            # the loss's target, from its gradient: BCE-with-logits: (sigmoid(x) - y) / n; MSE of sigmoid(x):
            # 2 (sigmoid(x) - y) sigmoid'(x) / n (an untrained model's logits are near 0: the loss alone barely differs)
            prob, n = torch.sigmoid(batch["logit"]), len(p_a)
            if step == "classification":  # BCE against the majority label: a tie's target is 0.5
                target, loss = label, F.binary_cross_entropy_with_logits(batch["logit"], label)
                used = prob - n * batch["grad"]
            else:  # MSE of sigmoid(logit) against the vote fraction
                target, loss = p_a, F.mse_loss(prob, p_a)
                used = prob - n * batch["grad"] / (2 * prob * (1 - prob))
            torch.testing.assert_close(used, target, rtol=0, atol=1e-4)
            assert math.isfinite(batch["loss"]) and batch["loss"] == pytest.approx(float(loss), rel=1e-6, abs=1e-8)
            per_epoch.update((batch["epoch"], _triplet(key)) for key in shown)
        assert per_epoch == Counter({(e, t): 1 for e in range(epochs[step]) for t in expected}), step
        per_step = [s["global_step"] for s in record.steps if s["step"] == step]
        assert per_step == list(range(epochs[step] * math.ceil(len(expected) / batch_size)))


def _triplet(key: tuple[str, str, str]) -> tuple[str, str, str]:
    """(ref, a, b) in a fixed order of a and b: the triplet whatever the side each image was shown on."""
    return (key[0], *sorted(key[1:]))


def both_orders(ref: str, a: str, b: str, p_a: float) -> dict:
    """P(the image shown as A is closer) for both orders of a and b."""
    return {(ref, a, b): p_a, (ref, b, a): 1.0 - p_a}


def noisy_images(folder: Path, names: list[str], seed: int) -> list[Path]:
    """A random 64 px reference (the first name) and noisier versions of it for the later names."""
    rng = np.random.default_rng(seed)
    ref = rng.random((64, 64, 3))
    paths = []
    for k, name in enumerate(names):
        image = np.clip(ref + rng.normal(0, 0.05 * k, ref.shape), 0, 1) if k else ref
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def weights_changed(record: Record, model_path: Path, step: str) -> bool:
    final = load_file(model_path)
    return any(not torch.equal(record.start[step][k], final[k]) for k in final if final[k].is_floating_point())


# -- data sets -----------------------------------------------------------------------------------
def test_bapps_training_reads_judge_as_the_fraction_preferring_p1(tmp_path):
    judges = {"traditional": [0.0, 0.5, 1.0], "cnn": [0.25, 0.9]}  # one tie: step 2 only trains on it
    root = write_bapps(tmp_path / "bapps", {"train": judges, "val": {"cnn": [0.2]}})
    files, p_closer = {}, {}
    for subset, values in judges.items():
        for i, judge in enumerate(values):
            ref, p0, p1 = (f"{subset}/{folder}/{i}" for folder in ("ref", "p0", "p1"))
            for name in (ref, p0, p1):
                kind, folder, _ = name.split("/")
                files[tmp_path / "bapps" / "2afc" / "train" / kind / folder / f"{i:06d}.png"] = name
            p_closer |= both_orders(ref, p0, p1, 1.0 - judge)  # judge: the fraction preferring p1 (= B)

    changes = {"data.format": "bapps", "data.train": "2afc/train", "data.val.path": "2afc/val"}
    config = tiny(**changes, **{"data.val.crop": None, "data.batch_size": 2, "steps.classification.epochs": 1})
    record = Record()
    result = train(config, root, tmp_path / "run", progress=False, callbacks=[record])

    check_training(record, files, p_closer, {"classification": 1, "regression": 1}, 2, "drop")
    assert weights_changed(record, result.model_path, "classification")
    rows = read_metrics_csv(result.metrics_csv)
    assert [(r["step"], r["epoch"]) for r in rows] == [("classification", 0), ("regression", 0)]
    assert all(math.isfinite(r["train_loss"]) and r["val_acc"] is not None for r in rows)


def test_pieapp_training_reads_the_processed_probability_of_a(tmp_path):
    root = tmp_path / "PieAPP"
    files, p_closer = {}, {}
    rows = ["ref. image,image A,image B,raw probability of preference for image A,"
            "processed probability of preference for image A"]  # fmt: skip
    for r, pairs in enumerate([[(1, 2, "0.9", 0.8), (1, 3, "", 0.3)], [(1, 2, "0.1", 0.25), (2, 3, "0.5", 0.6)]]):
        ref = f"ref_{r:04d}.png"
        names = [f"distort_{k}.png" for k in range(4)]
        paths = noisy_images(
            root,
            [f"reference_images/train/{ref}"] + [f"distorted_images/train/ref_{r:04d}/{n}" for n in names[1:]],
            seed=r,
        )
        files |= {path: f"{r}/{path.name}" for path in paths}
        for a, b, raw, processed in pairs:
            rows.append(f"{ref},{names[a]},{names[b]},{raw},{processed}")
            p_closer |= both_orders(f"{r}/{ref}", f"{r}/{names[a]}", f"{r}/{names[b]}", processed)
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "pairwise_labels.csv").write_text("\n".join(rows) + "\n")

    record = Record()
    config = tiny(**{"data.format": "pieapp", "steps.regression.epochs": 0, "data.batch_size": 3})
    result = train(config, root, tmp_path / "run", progress=False, callbacks=[record])
    check_training(record, files, p_closer, {"classification": 2, "regression": 0}, 3, "drop")
    assert weights_changed(record, result.model_path, "classification")


def test_mos_training_pairs_images_of_one_reference_by_score(tmp_path):
    """Scores where lower is better (a DMOS, ``mos_higher_better: false``); the default direction is read by
    test_training.py::test_mos_csv_pairs_are_split_by_reference."""
    root = tmp_path / "mos"
    files, lines = {}, ["ref,dist,score"]
    scores = {0: [3.0, 1.0, 2.0], 1: [1.5, 1.5, 4.0]}  # reference 1 has a tie
    for r, values in scores.items():
        paths = noisy_images(root, [f"r{r}.png"] + [f"r{r}_d{k}.png" for k in range(3)], seed=r)
        files |= {path: path.name for path in paths}
        lines += [f"r{r}.png,r{r}_d{k}.png,{score}" for k, score in enumerate(values)]
    (root / "scores.csv").write_text("\n".join(lines) + "\n")
    p_closer = {}
    for r, values in scores.items():
        for i in range(3):
            for j in range(3):
                if i != j:
                    better = values[i] < values[j]
                    p = 1.0 if better else 0.5 if values[i] == values[j] else 0.0
                    p_closer[(f"r{r}.png", f"r{r}_d{i}.png", f"r{r}_d{j}.png")] = p

    changes = {"data.format": "mos", "data.train": "scores.csv", "data.mos_higher_better": False}
    changes["steps.classification.epochs"] = 1
    record = Record()
    result = train(tiny(**changes), root, tmp_path / "run", progress=False, callbacks=[record])
    check_training(record, files, p_closer, {"classification": 1, "regression": 1}, 4, "drop")
    assert weights_changed(record, result.model_path, "classification")


def write_clic_votes(root: Path, votes: dict[int, list[tuple[str, str, int]]]) -> tuple[dict, dict]:
    """CLIC data: reference r{r}.png, distorted r{r}_d0/d1.png, one oracle row per vote (a, b, T); returns the
    image names and the vote fractions (as the test counts them)."""
    files, p_closer, rows = {}, {}, []
    for r, rows_of_r in votes.items():
        paths = noisy_images(root / "images", [f"r{r}.png", f"r{r}_d0.png", f"r{r}_d1.png"], seed=10 + r)
        files |= {path: path.name for path in paths}
        for_d0 = sum((t == 0) == (a == "d0") for a, _, t in rows_of_r)
        p_closer |= both_orders(f"r{r}.png", f"r{r}_d0.png", f"r{r}_d1.png", for_d0 / len(rows_of_r))
        rows += [f"r{r}.png,r{r}_{a}.png,r{r}_{b}.png,{t}" for a, b, t in rows_of_r]
    (root / "oracle.csv").write_text("\n".join(rows) + "\n")
    return files, p_closer


TIED_VOTES = {
    0: [("d0", "d1", 0), ("d0", "d1", 1)],  # 1 : 1
    1: [("d0", "d1", 0), ("d1", "d0", 0)],  # 1 : 1, one row swapped
    2: [("d0", "d1", 0), ("d1", "d0", 1), ("d0", "d1", 1)],  # 2 : 1 for d0
    3: [("d1", "d0", 0), ("d0", "d1", 1), ("d0", "d1", 0)],  # 2 : 1 for d1
}


@pytest.mark.parametrize("ties", ["soft", "drop"])
def test_ties_train_with_target_one_half_or_are_left_out_of_step_1(tmp_path, ties):
    (tmp_path / "clic").mkdir()
    files, p_closer = write_clic_votes(tmp_path / "clic", TIED_VOTES)
    record = Record()
    epochs = {"classification": 1, "regression": 1 if ties == "drop" else 0}  # step 2 takes ties either way
    changes = {f"steps.{step}.epochs": n for step, n in epochs.items()}
    config = tiny(**changes, **{"steps.classification.ties": ties, "data.batch_size": 2})
    train(config, tmp_path / "clic", tmp_path / "run", progress=False, callbacks=[record])
    check_training(record, files, p_closer, epochs, 2, ties)
    tie_labels = [float(x) for b in record.batches if b["step"] == "classification" for x in b["label"] if x == 0.5]
    assert len(tie_labels) == (2 if ties == "soft" else 0)


def test_every_training_triplet_a_tie_with_ties_drop_is_a_config_error(tmp_path):
    (tmp_path / "clic").mkdir()
    write_clic_votes(tmp_path / "clic", {r: TIED_VOTES[r] for r in (0, 1)})
    with pytest.raises(ConfigError, match="ties: soft"):
        train(tiny(), tmp_path / "clic", tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_mos_csv_pairs_are_split_by_reference(clic_dir, tmp_path):
    lines = ["ref,dist,score"]
    for r in range(4):
        lines += [f"images/r{r}.png,images/r{r}_d0.png,{4 + r}", f"images/r{r}.png,images/r{r}_d1.png,{1 + r}"]
    (clic_dir / "scores.csv").write_text("\n".join(lines) + "\n")
    settings = tiny_config({"data.format": "mos", "data.train": "scores.csv", "data.root": str(clic_dir)}).data
    data = load_training_data(settings, seed=0)
    assert len(data.train) == 3 and len(data.val) == 1
    assert not {t.ref for t in data.train} & {t.ref for t in data.val}
    for t in data.train + data.val:  # the higher score (the mild d0) is the closer image
        assert t.p_a == (1.0 if t.a.endswith("_d0.png") else 0.0)
        assert Path(t.ref).is_absolute() and Path(t.a).is_file()
    with pytest.raises(ConfigError, match="data.train"):
        load_training_data(tiny_config({"data.format": "mos", "data.root": str(clic_dir)}).data)


def test_data_order_depends_on_seed_and_epoch_only():
    items = list(range(20))

    def order(seed, epoch):
        sampler = EpochSampler(items, num_replicas=1, rank=0, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(0, 3) == order(0, 3)
    assert order(0, 3) != order(0, 4) and order(0, 3) != order(1, 3)
    assert sorted(order(0, 3)) == items


def test_clic_validation_reads_its_own_images_folder(tmp_path):
    """The paper's split: train on one CLIC set, validate on another set's oracle and images (data.val.images)."""
    from prfnet.errors import DataError
    from tests.conftest import make_clic_dir

    for name in ("train_set", "val_set"):
        (tmp_path / name).mkdir()
    train_dir, val_dir = make_clic_dir(tmp_path / "train_set"), make_clic_dir(tmp_path / "val_set")
    changes = {"data.root": str(train_dir), "data.val.path": str(val_dir / "oracle.csv")}
    own = load_training_data(tiny(**changes, **{"data.val.images": str(val_dir / "images")}).data)
    assert {Path(t.ref).parent for t in own.val} == {(val_dir / "images").resolve()}
    assert {Path(t.ref).parent for t in own.train} == {(train_dir / "images").resolve()}
    shared = load_training_data(tiny(**changes).data)  # without it: the training images folder, as before
    assert {Path(t.ref).parent for t in shared.val} == {(train_dir / "images").resolve()}
    with pytest.raises(DataError, match="data.val.images"):
        load_training_data(tiny(**changes, **{"data.val.images": str(tmp_path / "missing")}).data)
