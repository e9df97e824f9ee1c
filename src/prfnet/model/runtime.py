"""ONNX Runtime for eval-mode scoring on CPUs: ``--runtime onnxruntime`` (the ``onnxruntime`` extra).

:meth:`PRFNet.use_runtime` attaches an :class:`OnnxRuntime` to a model: from then on its eval-mode ``features`` (the
backbone and the normalised maps) and ``pair_vector`` (cross subtract and fusion) run as two ONNX graphs in
onnxruntime, and everything around them stays the model's Python: input checks, uint8 conversion one tile at a time,
tiling, the reference encoded once (``encode``, ``rank``, the scoring engine), the head, the logit and the
probability. Training (train mode) never uses it. Scores agree with PyTorch's to float rounding (tested: 1e-4
relative on distances, 1e-5 on probabilities), not bit for bit, so a score store keys them apart
(:func:`prfnet.api.model_identity` ends in ``/onnxruntime``).

The graphs are exported once per weights and cached (:func:`prfnet.cache.cache_dir`, ``onnx/<key>/``), keyed by
the weights' SHA-256, the architecture and the prfnet, torch, onnx and onnxruntime versions. Graph files are named
by their own SHA-256 and checked against it before a session opens them; a missing, corrupt or unreadable file is
rebuilt (and the rebuilt graphs are checked against PyTorch on one image), never trusted. The weights are read when
the runtime is attached: change them afterwards (training) and attach again. The graphs of the
:data:`KEPT_GRAPH_SETS` most recently used weights are kept (about 80 MB each for SE-Res2Net50); older ones, and
builds a killed process left behind, are removed (:func:`prune_graph_cache`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import re
import secrets
import threading
import time
from pathlib import Path

import numpy as np
import torch

from .._version import __version__
from ..cache import cache_dir
from ..errors import CheckpointError, ConfigError, InputError
from ..images import unit_float
from ..ioutil import file_sha256, write_json
from .digest import weights_sha256
from .export import OPSET, SAMPLE_SIZE, check_exportable, export_scoring_graphs, plain_cpu

log = logging.getLogger(__name__)

RUNTIMES = ("torch", "onnxruntime")
INSTALL = "pip install 'prfnet[onnxruntime]'"
#: agreement required of freshly built graphs with PyTorch on one image (relative, on the pair vector)
BUILD_CHECK_RTOL = 1e-3
_GRAPHS = ("encoder", "pair")
#: the cached graphs of this many weights, the most recently used, are kept (see :func:`prune_graph_cache`)
KEPT_GRAPH_SETS = 8
#: a build's temporary file (or an unfinished key folder) this old was left by a process that died: removed
STALE_BUILD_SECONDS = 3600
#: the only files :func:`prune_graph_cache` removes: those this module writes
_OWN_FILE = re.compile(r"(?:encoder|pair)-[0-9a-f]{16}\.onnx|\.(?:encoder|pair)\.\d+\.[0-9a-f]{8}\.onnx|graphs\.json")
_build_lock = threading.Lock()


def require_onnxruntime() -> None:
    """:class:`ConfigError` (one line, naming the extra) unless onnxruntime and onnx can be imported."""
    missing = [name for name in ("onnxruntime", "onnx") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"--runtime onnxruntime needs the {' and '.join(missing)} package(s): {INSTALL}")


def check_runtime(runtime: str, device: str | torch.device = "cpu", precision: str = "fp32", compile: bool = False):
    """:class:`ConfigError` (one line) for a runtime this model cannot use: an unknown name, or onnxruntime on a
    device other than the CPU, with bf16/fp16 or with ``--compile``, or without its packages."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if runtime == "torch":
        return
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError, TypeError):
        kind = str(device)
    if kind != "cpu":
        raise ConfigError(f"--runtime onnxruntime runs on the CPU, not {device}: on a GPU use --runtime torch")
    if precision != "fp32":
        raise ConfigError(f"--runtime onnxruntime computes in fp32: drop --precision {precision} (or use torch)")
    if compile:
        raise ConfigError("--compile compiles PyTorch's backbone: it does not apply to --runtime onnxruntime")
    require_onnxruntime()


def check_threads(threads: int | None) -> None:
    """:class:`ConfigError` unless ``threads`` is None (torch's setting) or a positive count."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"--threads must be a positive number of threads, got {threads!r}")


def session_options(threads: int):
    """onnxruntime session options for scoring: the extended graph optimisations (constant folding, Conv + activation
    and other fusions; BatchNorm is already folded into the convolutions by the exporter) without the NCHWc layout
    transformer of ``ORT_ENABLE_ALL``, whose reorders around Res2Net's split/concat cost more than they gain (4-8 %
    slower at 768 px); ``threads`` intra-op threads, one inter-op thread, sequential execution.
    ``docs/performance.md`` records what each setting bought (``benchmarks/bench_runtime.py --only tune``)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: no notes about fused nodes on every session
    return options


def graph_key(model, digest: str) -> dict:
    """What the cached graphs depend on: the weights, the architecture and the versions that trace and run them."""
    import onnx
    import onnxruntime

    config = dataclasses.asdict(model.config) | {"tile_size": None, "tile_stride": None}  # tiling stays in Python
    return {
        "weights_sha256": digest,
        "config": config,
        "prfnet": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "opset": OPSET,
    }


def prune_graph_cache(root: Path, keep: Path, kept: int | None = None) -> list[Path]:
    """Remove the cached graphs under ``root`` (the ``onnx`` cache folder) of all but the ``kept`` (default
    :data:`KEPT_GRAPH_SETS`) most recently used weights (an index's modification time is its last use; ``keep``, the
    folder in use, always stays), and builds left half-way by a killed process once :data:`STALE_BUILD_SECONDS` old.
    Only files this module writes are removed (a folder holding anything else keeps it, and stays). Returns the
    folders removed."""
    now, folders, kept = time.time(), [], kept or KEPT_GRAPH_SETS
    for folder in root.iterdir():
        if folder.is_dir() and folder != keep:
            index = folder / "graphs.json"
            complete = index.is_file()
            try:
                folders.append(((index if complete else folder).stat().st_mtime, complete, folder))
            except FileNotFoundError:  # another process pruned it just now
                continue
    folders.sort(reverse=True)
    removed, recent = [], 1  # the folder in use counts as one
    for used, complete, folder in folders:
        if complete and recent < kept:
            recent += 1
            continue
        if not complete and now - used < STALE_BUILD_SECONDS:
            continue  # perhaps another process is exporting into it now
        for path in folder.iterdir():
            if _OWN_FILE.fullmatch(path.name):
                path.unlink(missing_ok=True)
        try:
            folder.rmdir()
            removed.append(folder)
        except OSError:
            pass  # something that is not the cache's is in it: the folder stays
    for leftover in keep.glob(".*.onnx"):  # a build of this key killed half-way (its `finally` never ran)
        if _OWN_FILE.fullmatch(leftover.name) and now - leftover.stat().st_mtime >= STALE_BUILD_SECONDS:
            leftover.unlink(missing_ok=True)
    return removed


def _key_name(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


class OnnxRuntime:
    """The two scoring graphs of one model in onnxruntime sessions (see the module doc).

    ``features(x)``: (N, 3, H, W) float in [0, 1] or uint8 -> S maps (N, C_s, H_s, W_s) float32;
    ``pair_vector(ref_feats, dist_feats)``: -> (N, F) >= 0. ``threads``: intra-op threads (default: torch's).
    """

    name = "onnxruntime"

    def __init__(self, model, threads: int | None = None):
        check_exportable(model, whole_images=False)  # the runtime and thread checks are use_runtime's
        self.threads = threads or torch.get_num_threads()
        self.key = graph_key(model, weights_sha256(model))
        self.folder = cache_dir("onnx", _key_name(self.key))
        self.levels = len(model.levels)
        self.files = self._cached() or self._build(model)
        try:
            os.utime(self.folder / "graphs.json")  # its last use, which pruning keeps by
            prune_graph_cache(self.folder.parent, self.folder)
        except OSError as exc:  # a cache that cannot be tidied still scores
            log.warning("could not prune the ONNX graph cache %s: %s", self.folder.parent, exc)
        self._sessions = None
        try:
            self.sessions()
        except CheckpointError:  # verified files that onnxruntime still cannot open: built again, once
            self.files = self._build(model)
            self.sessions()

    # -- the cache -------------------------------------------------------------------------------------------------
    def _cached(self) -> dict[str, Path] | None:
        """The graph files of this key if the index names them and each still has its SHA-256, else None."""
        if not (self.folder / "graphs.json").exists():
            return None  # never built
        try:
            index = json.loads((self.folder / "graphs.json").read_text(encoding="utf-8"))
            if index.get("key") != self.key:
                return None
            files = {what: self.folder / index["files"][what]["path"] for what in _GRAPHS}
            if all(file_sha256(files[w]) == index["files"][w]["sha256"] for w in _GRAPHS):
                return files
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        log.warning(
            "the cached ONNX graphs in %s are missing or do not match their hashes: rebuilding them", self.folder
        )
        return None

    def _build(self, model) -> dict[str, Path]:
        """Export both graphs into the cache (files named by their SHA-256, the index written last), then check them
        against PyTorch on one image; :class:`CheckpointError` if they disagree."""
        log.warning(
            "exporting %s to ONNX once for onnxruntime (cached in %s)", model.source or "the model", self.folder
        )
        with _build_lock:
            # names of this process alone: processes that build the same key at once (DDP ranks) never meet
            tmp = {what: self.folder / f".{what}.{os.getpid()}.{secrets.token_hex(4)}.onnx" for what in _GRAPHS}
            entries, files = {}, {}
            try:
                export_scoring_graphs(model, tmp["encoder"], tmp["pair"])
                for what, path in tmp.items():
                    sha = file_sha256(path)
                    files[what] = path.replace(self.folder / f"{what}-{sha[:16]}.onnx")
                    entries[what] = {"path": files[what].name, "sha256": sha}
            finally:  # an export that failed half-way (a full disk, Ctrl-C) leaves nothing behind
                for path in tmp.values():
                    path.unlink(missing_ok=True)
            self.files, self._sessions = files, None
            self._check_against(model)
            write_json(self.folder / "graphs.json", {"key": self.key, "files": entries})
        return files

    def _check_against(self, model) -> None:
        g = torch.Generator().manual_seed(0)
        ref, dist = (torch.rand(1, 3, *SAMPLE_SIZE, generator=g) for _ in range(2))
        with plain_cpu(model), torch.no_grad():
            expected = model.pair_vector(model.features(ref), model.features(dist))
        got = self.pair_vector(self.features(ref), self.features(dist))
        scale = expected.abs().max().item() or 1.0
        if not torch.allclose(got, expected, rtol=BUILD_CHECK_RTOL, atol=BUILD_CHECK_RTOL * scale):
            error = (got - expected).abs().max().item()
            raise CheckpointError(
                f"{model.source or 'the model'}: its ONNX graphs disagree with PyTorch (max difference {error:.3g} "
                f"against values up to {scale:.3g}); use --runtime torch"
            )

    # -- sessions --------------------------------------------------------------------------------------------------
    def sessions(self) -> dict:
        """The two onnxruntime sessions, opened on first use (:class:`CheckpointError` if a graph cannot be opened)."""
        if self._sessions is None:
            import onnxruntime as ort

            options = session_options(self.threads)
            try:
                self._sessions = {
                    what: ort.InferenceSession(str(self.files[what]), options, providers=["CPUExecutionProvider"])
                    for what in _GRAPHS
                }
            except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph / InvalidProtobuf types
                raise CheckpointError(f"{self.folder}: onnxruntime cannot open a cached graph ({exc})") from None
            self._pair_inputs = [i.name for i in self._sessions["pair"].get_inputs()]
        return self._sessions

    def __getstate__(self):  # sessions are rebuilt in the process that unpickles (workers, spawn)
        return self.__dict__ | {"_sessions": None}

    # -- the two graphs --------------------------------------------------------------------------------------------
    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.requires_grad:
            raise InputError("--runtime onnxruntime computes no gradients: use the torch runtime to differentiate")
        image = unit_float(x).float()  # uint8: only this tile / batch is ever float
        outputs = self.sessions()["encoder"].run(None, {"image": np.ascontiguousarray(image.detach().cpu().numpy())})
        return [torch.from_numpy(o) for o in outputs]

    def pair_vector(self, ref_feats: list[torch.Tensor], dist_feats: list[torch.Tensor]) -> torch.Tensor:
        session = self.sessions()["pair"]
        names = self._pair_inputs
        arrays = [np.ascontiguousarray(t.detach().cpu().float().numpy()) for t in (*ref_feats, *dist_feats)]
        (vector,) = session.run(None, dict(zip(names, arrays, strict=True)))
        return torch.from_numpy(vector)
