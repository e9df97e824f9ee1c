"""The PRFNet model: shared backbone -> cross subtract -> progressive fusion -> 2AFC / distance.

The paper: "Progressive Feature Fusion Network for Enhancing Image Quality Assessment" (PRFNet, arXiv 2401.06992),
2nd place in the CLIC 2022 image perceptual model track (0.781 accuracy on the CLIC-V validation set). Its pipeline
(pre-trained SE Res2Net50 -> cross subtraction module -> progressive feature fusion block -> quality prediction)
is :mod:`.backbone` -> :class:`~.blocks.CrossSubtract` -> :class:`~.blocks.ProgressiveFusion` ->
:class:`~.blocks.PositiveLinear`; its two-step training (classification, then regression) is in
:mod:`prfnet.training`. ``docs/design.md`` lists what the paper leaves open and what we chose.

Conventions for every method: images are float tensors of shape (N, 3, H, W), RGB, values in
[0, 1], H and W >= 32 (any size, not only multiples of 32). ImageNet normalisation happens inside.
uint8 tensors are accepted too and taken as 0..255: they are converted to float32 / 255 only when the
backbone needs them, one tile (or one candidate batch) at a time, so a huge image costs 1 byte per
sample in memory (``load_image(path, keep_8bit=True)``).
``score`` is a distance: >= 0, lower = closer to the reference, 0 for an identical image with the
default blocks (exactly 0 when the two images go through the backbone alike; within 1e-6 of the
distance scale when batching differs, see the README). ``compare`` is the probability that A is closer
to the reference than B.

A new ``PRFNet`` is in eval mode. The inference methods (``encode``, ``score``, ``compare``, ``rank``)
always run in eval mode and leave the model's mode as they found it; ``forward`` (the training path)
follows the module's mode. The backbone runs under any active autocast; everything after it (feature
normalisation, pair difference, fusion, pooling, cross subtraction, head) runs in float32.

Here: :class:`PRFNet` and :class:`ReferenceFeatures`. Method bodies that are pipelines of their own live beside it,
as functions of the model: :mod:`.vectors` (pair vectors by chunks and tiles), :mod:`.ranking` (``rank`` and
:class:`~.ranking.Ranking`, re-exported here), :mod:`.memory_estimate` (``scoring_memory``, ``check_memory``) and
:mod:`.maps` (score maps).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError, InputError
from . import maps, memory_estimate, ranking, vectors
from .backbone import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SE_RES2NET50,
    build_backbone,
    feature_channels,
    freeze_norm_statistics,
)
from .blocks import FUSION_BLOCKS, PAIR_BLOCKS, PositiveLinear, unit_normalise
from .checkpoint import INFERENCE_OPTIONS, CheckpointFile, load_checkpoint, locate_checkpoint, save_checkpoint
from .config import PRFNetConfig
from .inference import InferencePolicy, compile_backbone, device_policy
from .inputs import check_images, unit_float
from .ranking import Ranking
from .runtime import OnnxRuntime, check_runtime, check_threads
from .tiling import tile_windows

_PLAIN = InferencePolicy()


@dataclass
class ReferenceFeatures:
    """Backbone features of a reference image, computed once by :meth:`PRFNet.encode`.

    ``feats``: S tensors (N_ref, C_s, H_s, W_s); ``size``: the image's (H, W).
    """

    feats: list[torch.Tensor]
    size: tuple[int, int]


class PRFNet(nn.Module):
    """Full-reference 2AFC quality model for compressed images.

    Args:
        backbone: ``"seres2net50"`` (default) or any timm ``features_only`` model name.
        pretrained_backbone: seed the backbone with timm's ImageNet weights (hub name).
        backbone_weights: local ``.safetensors`` backbone weights (offline; overrides the hub).
        pair_block: ``"cross_subtract"`` or the ablation ``"concat"``.
        fusion: ``"progressive"`` or the ablation ``"single_scale"``.
        pair_channels, fusion_channels, attention: widths and channel attention of the blocks.
        se_gate: ``"identity"`` (SE gates start at exactly 1, so pretrained Res2Net-50 features are kept) or
            ``"sigmoid"`` (timm's SE); ``seres2net50`` only.
        backbone_norm: ``"frozen"`` (batch norms always use their running statistics; the default) or
            ``"batch"`` (in training, batch statistics of one backbone call over R, A and B together).
        tile_size, tile_stride: tile large images (see ``docs/design.md``); None = whole image.

    The new model is in eval mode.
    """

    def __init__(
        self,
        backbone: str = SE_RES2NET50,
        pretrained_backbone: bool = False,
        backbone_weights: str | Path | None = None,
        **config,
    ):
        super().__init__()
        self.config = PRFNetConfig(backbone=backbone, **config)
        c = self.config
        self.backbone = build_backbone(
            c.backbone, pretrained=pretrained_backbone, weights=backbone_weights, se_gate=c.se_gate
        )
        channels = feature_channels(self.backbone)
        fusion_cls = FUSION_BLOCKS[c.fusion]
        kwargs = {"attention": c.attention} if c.fusion == "progressive" else {}
        self.fusion = fusion_cls(len(channels), c.pair_channels, c.fusion_channels, **kwargs)
        self.levels = self.fusion.scales  # the backbone levels the fusion reads, finest first
        self.pair = PAIR_BLOCKS[c.pair_block]({s: channels[s] for s in self.levels}, c.pair_channels)
        self.head = PositiveLinear(self.fusion.out_channels)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.freeze_norm_statistics(c.backbone_norm == "frozen")
        #: the checkpoint file the weights came from (set by :meth:`from_pretrained`), or a description, for messages
        self.source: str | None = None
        #: the checkpoint file that holds exactly these weights (set by :meth:`from_pretrained`); None for a model
        #: built in memory and from ``train(True)`` or ``load_state_dict`` on (the weights may change). A score
        #: store's model identity is this file's SHA-256, computed only when a store asks
        #: (:func:`prfnet.api.model_identity`)
        self.checkpoint_file: CheckpointFile | None = None
        #: how eval-mode calls run the backbone (:meth:`optimize_for_inference`); the default changes nothing
        self.inference = InferencePolicy()
        self.inference_only = False  # set once the backbone is compiled with frozen weights: no training, no saving
        #: what runs eval-mode ``features`` and ``pair_vector``: None (PyTorch) or an :class:`OnnxRuntime`
        self.runtime: OnnxRuntime | None = None
        self.eval()

    # -- building blocks -------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.mean.device

    def set_tiling(self, tile_size: int | None, tile_stride: int | None = None) -> PRFNet:
        """Switch tiling on (square tiles of ``tile_size``) or off (``None``); returns self."""
        self.config = dataclasses.replace(self.config, tile_size=tile_size, tile_stride=tile_stride)
        return self

    def optimize_for_inference(self, precision: str = "fp32", compile: bool = False) -> PRFNet:
        """Make eval-mode calls faster on this model's device, in place; returns self.

        Picks the device's batching policy and memory format (:func:`prfnet.model.inference.device_policy`) and
        sets the backbone's autocast ``precision`` (``fp32`` keeps today's scores; ``bf16``/``fp16`` are faster on
        GPUs and change scores slightly; the head and the decision stay float32). With ``compile``, the backbone
        is compiled with frozen weights (:func:`~prfnet.model.inference.compile_backbone`: faster once compiled,
        a compilation per image size); the model can then no longer be trained or saved."""
        self.inference = device_policy(self.device, precision)
        if self.inference.channels_last:
            self.backbone.to(memory_format=torch.channels_last)
        if compile:
            self.backbone = compile_backbone(self.backbone)
            self.inference_only = True
        return self.eval()

    def use_runtime(self, runtime: str = "torch", threads: int | None = None):
        """Run eval-mode scoring in ``runtime``: ``"torch"`` (PyTorch, the default) or ``"onnxruntime"`` (CPU only,
        fp32: the backbone and the pair/fusion blocks as ONNX graphs, exported once per weights and cached; see
        :mod:`prfnet.model.runtime`) with ``threads`` intra-op threads (default: torch's setting; PyTorch's own is
        ``torch.set_num_threads``). :class:`ConfigError` for a runtime this model cannot use. ``train()`` drops the
        runtime (the weights may change): call this again afterwards. Returns self."""
        check_runtime(runtime, self.device, self.inference.precision, self.inference_only)
        check_threads(threads)
        self.runtime = None if runtime == "torch" else OnnxRuntime(self, threads)
        return self

    def train(self, mode: bool = True) -> PRFNet:
        if mode:  # weights may change from here on: no longer the checkpoint's (store keys) nor the runtime's graphs
            self.checkpoint_file, self.runtime = None, None
        if mode and getattr(self, "inference_only", False):
            raise ConfigError(
                "this model's backbone is compiled with frozen weights (optimize_for_inference(compile=True)): it "
                "cannot be trained; load the checkpoint again with PRFNet.from_pretrained"
            )
        return super().train(mode)

    def load_state_dict(self, *args, **kwargs):
        """:meth:`torch.nn.Module.load_state_dict`; the weights are then no longer a checkpoint file's."""
        result = super().load_state_dict(*args, **kwargs)
        self.checkpoint_file = None
        return result

    def will_tile(self, height: int, width: int) -> bool:
        """Whether images of this size are scored tile by tile (tiling on and a side above ``tile_size``)."""
        t = self.config.tile_size
        return t is not None and (height > t or width > t)

    def windows(self, height: int, width: int) -> list[tuple[slice, slice]]:
        """The (rows, columns) windows an H x W image is scored in, row-major: the tiles of
        :func:`~prfnet.model.tiling.tile_windows` when :meth:`will_tile`, else one window, the whole image. The
        distance of an image is the mean of its windows' distances."""
        if not self.will_tile(height, width):
            return [(slice(None), slice(None))]
        t = self.config.tile_size
        return tile_windows(height, width, t, self.config.tile_stride or t)

    def scoring_memory(self, height: int, width: int, images: int = 1) -> int:
        """Estimated peak bytes of scoring ``images`` distorted images of ``height`` x ``width`` against one reference
        (eval mode, the model's precision): :func:`~prfnet.model.backbone.scoring_bytes_per_pixel` of the backbone
        x the pixels of one window (the whole image, or a tile when :meth:`will_tile`) x (``images`` + 1); half
        that under 16-bit autocast. A lower bound (``docs/performance.md``, "Memory")."""
        return memory_estimate.scoring_memory(self, height, width, images)

    def check_memory(self, height: int, width: int, images: int, what: str, held: int = 0) -> None:
        """:class:`~prfnet.memory.NotEnoughMemory` (one line naming both amounts and a tile size that fits) when
        :meth:`scoring_memory` plus ``held`` (bytes the caller holds beside it, e.g. the decoded images) is more than
        the memory available on the model's device; called before any image is decoded or any backbone call by the
        file API and the scoring engine. ``what``: the job, for the message."""
        memory_estimate.check_scoring_memory(self, height, width, images, what, held)

    def freeze_norm_statistics(self, frozen: bool) -> PRFNet:
        """Freeze (``True``) the backbone's batch-norm statistics, in train mode too, or let them follow the
        batches in train mode (``False``); returns self. Training sets this per step (``backbone_norm``,
        ``freeze_backbone``)."""
        freeze_norm_statistics(self.backbone, frozen)
        return self

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """A context in eval mode (frozen norm statistics, no dropout); on exit every submodule's mode is exactly as
        it was. Gradients are not switched off (that is the caller's choice)."""
        modes = [(m, m.training) for m in self.modules()]
        self.eval()
        try:
            yield
        finally:
            for module, mode in modes:
                module.training = mode

    def autocast_off(self):
        """A context with autocast off on the model's device type: what runs inside (everything after the backbone)
        stays in float32 under AMP."""
        return torch.autocast(self.device.type, enabled=False)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, H, W) moved to the model's device: float input as float32 in [0, 1], uint8 kept as uint8
        0..255 (converted per tile in :meth:`features`). No checks (see :func:`~prfnet.model.inputs.check_images`)."""
        return x.to(self.device) if x.dtype == torch.uint8 else x.to(self.device, torch.float32)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) in [0, 1] (or uint8 0..255, divided by 255 here) -> the S backbone maps the fusion
        uses (``self.levels``), channel-unit-normalised in float32: (N, C_s, ~H/r_s, ~W/r_s). The backbone
        itself runs under any active autocast. No input checks (the public methods check)."""
        if self.runtime is not None and not self.training:
            return self.runtime.features(x)
        x = (unit_float(x) - self.mean) / self.std  # uint8: only this tile / batch is ever float
        policy = self.inference
        if self.training or policy == _PLAIN:
            maps = self.backbone(x)
        else:
            if policy.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            dtype = policy.autocast_dtype
            chunks = x.split(policy.backbone_batch) if policy.backbone_batch else (x,)
            with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
                parts = [self.backbone(chunk) for chunk in chunks]
            maps = parts[0] if len(parts) == 1 else [torch.cat(level) for level in zip(*parts, strict=True)]
        with self.autocast_off():
            return [unit_normalise(maps[s].float()) for s in self.levels]

    def pair_vector(self, ref_feats: list[torch.Tensor], dist_feats: list[torch.Tensor]) -> torch.Tensor:
        """Pooled quality-difference vector (N, F) >= 0, float32, of (reference, distorted) features.
        A reference batch of 1 broadcasts against N distorted images."""
        if self.runtime is not None and not self.training:
            return self.runtime.pair_vector(ref_feats, dist_feats)
        n = dist_feats[0].shape[0]
        ref_feats = [r.expand(n, *r.shape[1:]) for r in ref_feats]
        with self.autocast_off():
            return self.fusion(self.pair(ref_feats, dist_feats))

    def _pair_vectors(self, ref_feats: list[torch.Tensor], dist: torch.Tensor) -> torch.Tensor:
        """``pair_vector(ref_feats, features(dist))`` (N, F), eval mode, ``inference.backbone_batch`` images at a time
        on the torch path (CPUs: one): only one chunk's maps exist at once, which keeps them in the caches (N images'
        maps at 768 px are N x 70 MB, and joining them cost ``rank`` of 8 a quarter of its time)."""
        return vectors.pair_vectors(self, ref_feats, dist)

    def distance(self, v: torch.Tensor) -> torch.Tensor:
        """Pair vectors (N, F) >= 0 (:meth:`pair_vector`, or a mean of them over tiles) -> distances (N,) >= 0,
        float32, lower = closer: the linear head with positive weights, in float32."""
        with self.autocast_off():
            return self.head(v)

    def _joint_features(self, images: list[torch.Tensor]) -> list[list[torch.Tensor]]:
        """Features of several batches from one backbone call, so batch statistics (train mode) are shared."""
        return vectors.joint_features(self, images)

    def _vectors(self, ref: torch.Tensor, dists: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per distorted batch, the pair vector (N, F); tiles are averaged when tiling is on.

        In eval mode the backbone sees the reference once and each distorted batch once (per tile), so
        memory is bounded by one tile of the largest batch (with ``inference.joint_batch``, as on GPUs after
        :meth:`optimize_for_inference`, all of them in one call). In train mode R and every distorted batch go
        through the backbone in one call: with ``backbone_norm="batch"`` they share batch statistics, so
        an image-wide difference between A and B is never normalised away.
        """
        return vectors.window_vectors(self, ref, dists)

    # -- public API ------------------------------------------------------------------------------
    def _refuse_tiles(self, size: tuple[int, int], what: str) -> None:
        if self.will_tile(*size):
            raise InputError(
                f"{what} works on whole images, and this model tiles images larger than {self.config.tile_size} px "
                f"(got {size[1]}x{size[0]}): call score(ref, dist) or rank(ref, candidates), which encode each "
                "reference tile once per call, or set_tiling(None)"
            )

    def encode(self, ref: torch.Tensor) -> ReferenceFeatures:
        """Backbone features of reference images (N, 3, H, W) in [0, 1], to reuse in :meth:`score`.
        Whole images only: an image this model would tile raises :class:`InputError`."""
        check_images(ref, names=("ref",))
        self._refuse_tiles(tuple(ref.shape[-2:]), "encode()")
        with self.evaluating():
            return ReferenceFeatures(self.features(self.prepare(ref)), tuple(ref.shape[-2:]))

    def score(self, ref: torch.Tensor | ReferenceFeatures, dist: torch.Tensor) -> torch.Tensor:
        """Distance of ``dist`` (N, 3, H, W) to ``ref`` (a tensor or :meth:`encode` output): (N,) >= 0,
        float32, lower = closer. A reference batch of 1 is shared by all N distorted images."""
        with self.evaluating():
            if isinstance(ref, ReferenceFeatures):
                check_images(dist, names=("dist",))
                if tuple(dist.shape[-2:]) != ref.size:
                    raise InputError(f"dist size {tuple(dist.shape[-2:])} differs from the reference's {ref.size}")
                self._refuse_tiles(ref.size, "score() with encoded reference features")
                return self.distance(self._pair_vectors(ref.feats, self.prepare(dist)))
            check_images(ref, dist, names=("ref", "dist"))
            (v,) = self._vectors(self.prepare(ref), [self.prepare(dist)])
            return self.distance(v)

    def forward(self, ref: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """2AFC logit (N,), float32: > 0 when A is closer to ``ref`` than B; equals d(ref, B) - d(ref, A).
        Antisymmetric: f(r, a, b) = -f(r, b, a). Follows the module's mode (the training path)."""
        check_images(ref, a, b, names=("ref", "A", "B"))
        v_a, v_b = self._vectors(self.prepare(ref), [self.prepare(a), self.prepare(b)])
        with self.autocast_off():
            return self.head(self.pair.cross(v_a, v_b))

    def compare(self, ref: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Probability (N,) that A is closer to ``ref`` than B, float32: sigmoid of the logit, so in [0, 1]
        and exactly 0 or 1 once |logit| > ~17 (use ``model(ref, a, b)`` to order such cases);
        compare(r, a, b) + compare(r, b, a) = 1."""
        with self.evaluating():
            return torch.sigmoid(self(ref, a, b))

    def score_map(self, ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """Per-pixel distance map (N, 1, H, W) >= 0 whose spatial mean is ``score(ref, dist)`` (higher = farther
        there); see :func:`prfnet.model.maps.score_map`."""
        return maps.score_map(self, ref, dist)

    def compare_maps(self, ref: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score maps of A and B (N, 1, H, W): ``compare == sigmoid(mean(map_b - map_a))``; see :mod:`.maps`."""
        return maps.compare_maps(self, ref, a, b)

    @torch.no_grad()
    def rank(self, ref: torch.Tensor, candidates: torch.Tensor | list[torch.Tensor], batch_size: int = 8) -> Ranking:
        """Rank N candidates against one reference (1, 3, H, W), best (closest) first.

        ``candidates``: a tensor (N, 3, H, W) or a list of (1, 3, H, W) tensors. Reference features
        are computed once (per tile); candidates go through the backbone ``batch_size`` at a time.
        Runs in eval mode whatever mode the model is in, and leaves it unchanged.
        """
        return ranking.rank(self, ref, candidates, batch_size)

    # -- checkpoints -----------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
        """Write weights and architecture config to one ``.safetensors`` file (no pickle)."""
        if self.inference_only:
            raise ConfigError(
                "this model's backbone is compiled with frozen weights (optimize_for_inference(compile=True)): save "
                "the original checkpoint instead (load it again with PRFNet.from_pretrained)"
            )
        return save_checkpoint(self, path, metadata)

    @classmethod
    def from_pretrained(cls, path: str | Path, map_location="cpu", sha256: str | None = None, **overrides) -> PRFNet:
        """Rebuild a model from :meth:`save_pretrained` output (a file, an http(s) URL pinned by ``sha256`` or
        ``URL#sha256=HEX``, or a published name: docs/checkpoints.md), in eval mode; ``overrides``: ``tile_size``,
        ``tile_stride``. ``model.source`` names the checkpoint, ``model.checkpoint_file`` the file (read once)."""
        unknown = set(overrides) - INFERENCE_OPTIONS
        if unknown:
            raise InputError(f"only {sorted(INFERENCE_OPTIONS)} can be overridden at load time, got {sorted(unknown)}")
        PRFNetConfig(**overrides)  # a bad tile_size / tile_stride is the caller's ConfigError, not the checkpoint's
        return load_checkpoint(cls, *locate_checkpoint(path, sha256), map_location=map_location, **overrides)
