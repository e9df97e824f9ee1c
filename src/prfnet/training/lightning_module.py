"""The Lightning module of one training step (classification or regression) around a :class:`PRFNet`.

Step 1, ``classification``: loss = BCE-with-logits(model(R, A, B), majority label) (label 1: A closer).
Step 2, ``regression``: loss = MSE(sigmoid(model(R, A, B)), p_a), p_a = fraction of judges who found A closer.
Validation (both steps) logs, per epoch: ``val/acc`` (agreement of the predicted side with the majority
label; a tie label or a zero logit counts 0.5), ``val/agreement`` (expected agreement with a random judge,
p_a * pred + (1 - p_a) * (1 - pred), the BAPPS 2AFC score), ``val/bce`` and ``val/mse`` (of sigmoid(logit) vs
p_a) and ``val/loss`` (the step's own loss).

Backbone in a step: its batch-norm statistics are frozen when ``model.backbone_norm`` is ``frozen`` or the step
has ``freeze_backbone``; ``freeze_backbone`` also stops the gradients of every backbone tensor except
SE-Res2Net50's squeeze-and-excitation modules, which no pretrained file holds: they train in both steps, with
the heads' learning rate.
"""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric

from ..model import PRFNet
from ..model.backbone import added_modules
from .config import StepSettings

STEPS = ("classification", "regression")


def step_loss(step: str, logit: torch.Tensor, batch: dict) -> torch.Tensor:
    """The training loss of ``step`` for logits (N,) (> 0: A closer) and a batch with ``label``/``p_a`` (N,)."""
    if step == "classification":
        return F.binary_cross_entropy_with_logits(logit, batch["label"])
    return F.mse_loss(torch.sigmoid(logit), batch["p_a"])


def predicted_side(logit: torch.Tensor) -> torch.Tensor:
    """1.0 where A is predicted closer (logit > 0), 0.0 for B, 0.5 for a zero logit."""
    return (torch.sign(logit) + 1) / 2


class PRFNetModule(L.LightningModule):
    """Trains ``model`` with the loss of ``step`` (``"classification"`` or ``"regression"``) and ``settings``."""

    def __init__(self, model: PRFNet, step: str, settings: StepSettings):
        super().__init__()
        if step not in STEPS:
            raise ValueError(f"step must be one of {STEPS}, got {step!r}")
        self.model, self.step_name, self.settings = model, step, settings
        self.save_hyperparameters({"step": step, "model": dict(vars(model.config)), "settings": vars(settings)})
        self._val_distances: dict[tuple[str, str], torch.Tensor] = {}
        self.val_metrics = torch.nn.ModuleDict(
            {name: MeanMetric() for name in ("loss", "acc", "agreement", "bce", "mse")}
        )
        model.backbone.requires_grad_(not settings.freeze_backbone)
        for module in added_modules(model.backbone, model.config.backbone):  # SE-Res2Net50's SE: new layers
            module.requires_grad_(True)
        model.freeze_norm_statistics(settings.freeze_backbone or model.config.backbone_norm == "frozen")
        self.train()  # a new PRFNet is in eval mode; Lightning >= 2.6 does not switch modes at fit start

    def forward(self, batch: dict) -> torch.Tensor:
        return self.model(batch["ref"], batch["a"], batch["b"])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = step_loss(self.step_name, self(batch), batch)
        n = batch["ref"].shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=True)
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=False, on_epoch=True, batch_size=n)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_distances = {}  # the weights changed since the last pass

    def validation_logits(self, batch: dict) -> torch.Tensor:
        """2AFC logits (N,) of a validation batch, d(R, B) - d(R, A) (what :meth:`forward` gives, to float rounding).

        Each (reference, distorted) distance is computed once per validation pass and kept by file names
        (``batch["files"]``; validation images are whole or centre-cropped, so a name always means the same
        pixels): a pair that several triplets share (CLIC's triplets share them) costs one backbone pass, and a
        reference goes through the backbone once per batch for all its new pairs. Eval mode only."""
        if "files" not in batch:  # batches built by hand
            return self(batch)
        known = self._val_distances
        refs, names_a, names_b = batch["files"]
        todo: dict[str, tuple[int, dict[str, torch.Tensor]]] = {}  # ref name -> (row of R, new distorted images)
        for i, ref in enumerate(refs):
            for name, images in ((names_a[i], batch["a"]), (names_b[i], batch["b"])):
                if (ref, name) not in known:
                    todo.setdefault(ref, (i, {}))[1].setdefault(name, images[i])
        for ref, (row, dists) in todo.items():
            distances = self.model.score(batch["ref"][row : row + 1], torch.stack(list(dists.values())))
            known.update(zip(((ref, name) for name in dists), distances, strict=True))
        d_a = torch.stack([known[ref, name] for ref, name in zip(refs, names_a, strict=True)])
        d_b = torch.stack([known[ref, name] for ref, name in zip(refs, names_b, strict=True)])
        return d_b - d_a

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logit = self.validation_logits(batch).float()
        p_a, label = batch["p_a"], batch["label"]
        pred = predicted_side(logit)
        prob = torch.sigmoid(logit)
        values = {
            "loss": step_loss(self.step_name, logit, batch),
            "acc": 1 - (pred - label).abs(),
            "agreement": p_a * pred + (1 - p_a) * (1 - pred),
            "bce": F.binary_cross_entropy_with_logits(logit, p_a, reduction="none"),
            "mse": (prob - p_a) ** 2,
        }
        for name, value in values.items():
            metric = self.val_metrics[name]
            if value.ndim == 0:
                metric.update(value, weight=logit.shape[0])
            else:
                metric.update(value)
            self.log(f"val/{name}", metric, on_step=False, on_epoch=True, prog_bar=name == "acc")

    def _param_groups(self) -> list[dict]:
        """Two groups: new layers (blocks, head, backbone SE modules) at ``lr``; the rest of the backbone at
        ``lr * backbone_lr_mult``."""
        s = self.settings
        added = added_modules(self.model.backbone, self.model.config.backbone)
        new_ids = {id(p) for module in added for p in module.parameters()}
        new_ids |= {id(p) for name, p in self.model.named_parameters() if not name.startswith("backbone.")}
        backbone = [p for p in self.model.parameters() if p.requires_grad and id(p) not in new_ids]
        rest = [p for p in self.model.parameters() if p.requires_grad and id(p) in new_ids]
        groups = [{"params": rest, "lr": s.lr, "name": "heads"}]
        if backbone:
            groups.append({"params": backbone, "lr": s.lr * s.backbone_lr_mult, "name": "backbone"})
        return groups

    def on_train_start(self) -> None:
        """Set the optimizer's settings from ``settings`` again: a resumed step restores the optimizer and scheduler
        state of its checkpoint, learning rates and weight decay included, and the config it resumes with wins."""
        s = self.settings
        optimizer, scheduler = self.optimizers(use_pl_optimizer=False), self.lr_schedulers()
        for i, group in enumerate(optimizer.param_groups):
            base = s.lr * (s.backbone_lr_mult if group["name"] == "backbone" else 1.0)
            scheduler.base_lrs[i] = group["initial_lr"] = base
            group["lr"] = base * scheduler.lr_lambdas[i](scheduler.last_epoch)
            group["weight_decay"] = s.weight_decay
            if s.optimizer == "sgd":
                group["momentum"] = s.momentum
            else:
                group["betas"] = tuple(s.betas)

    def configure_optimizers(self):
        s = self.settings
        groups = self._param_groups()
        if s.optimizer == "sgd":
            optimizer = torch.optim.SGD(groups, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
        else:
            cls = torch.optim.AdamW if s.optimizer == "adamw" else torch.optim.Adam
            optimizer = cls(groups, lr=s.lr, betas=tuple(s.betas), weight_decay=s.weight_decay)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        schedule = lr_factor(s, total)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def lr_factor(settings: StepSettings, total_steps: int):
    """Multiplier of the base LR at optimizer step ``i``: linear warm-up, then cosine to ``min_lr_ratio`` or flat."""
    warmup, floor = settings.warmup_steps, settings.min_lr_ratio

    def factor(i: int) -> float:
        if i < warmup:
            return (i + 1) / warmup
        if settings.scheduler == "constant":
            return 1.0
        progress = min((i - warmup) / max(total_steps - warmup, 1), 1.0)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor
