"""Inference settings (``prfnet.model.inference``) through ``PRFNet.optimize_for_inference``: device policies,
precision, a compiled backbone; none changes the scores beyond float rounding. CPU, timm's ``test_resnet``."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from prfnet import PRFNet
from prfnet.errors import ConfigError
from prfnet.model.inference import InferencePolicy, device_policy
from tests.conftest import TINY

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one intra-op thread is fastest


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
        batch = model.score(ref, dist)
        np.testing.assert_allclose(batch, bn_model.score(ref, dist), rtol=1e-5)  # float rounding only
        # one image per backbone call: a score does not depend on the batch it came in, to the last bit
        assert torch.equal(batch, torch.cat([model.score(ref, d) for d in dist.split(1)]))
    model.save_pretrained(tmp_path / "m.safetensors")
    model.inference_only = True  # what compile=True sets
    with pytest.raises(ConfigError, match="compiled"):
        model.train()
    with pytest.raises(ConfigError, match="compiled"):
        model.save_pretrained(tmp_path / "n.safetensors")


def test_device_policies_and_precisions():
    cpu, cuda = device_policy("cpu"), device_policy("cuda")  # only the device type is read: no GPU needed
    assert (cpu.joint_batch, cpu.channels_last, cpu.precision, cpu.backbone_batch) == (False, False, "fp32", 1)
    assert (cuda.joint_batch, cuda.channels_last, cuda.backbone_batch) == (True, True, None)
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
        for policy in (
            InferencePolicy(joint_batch=True),
            InferencePolicy(channels_last=True),
            InferencePolicy(backbone_batch=1),
        ):
            model = copy.deepcopy(bn_model)
            model.inference = policy
            joint = (model.score(ref, a), model.compare(ref.expand(2, -1, -1, -1), a, b))
            for x, y in zip(joint, separate, strict=True):
                np.testing.assert_allclose(x, y, rtol=1e-5)


def test_the_cpu_policy_feeds_the_backbone_one_image_at_a_time(bn_model):
    model = copy.deepcopy(bn_model).optimize_for_inference()
    assert model.inference.backbone_batch == 1
    batches = []
    hook = model.backbone.register_forward_hook(lambda module, args, out: batches.append(args[0].shape[0]))
    ref, candidates = _images(1, 3), _images(5, 4)
    try:
        with torch.no_grad():
            ranked = model.rank(ref, candidates, batch_size=4)
    finally:
        hook.remove()
    assert batches == [1] * 6  # the reference, then the 5 candidates one by one (chunks of 4 and 1 split)
    with torch.no_grad():
        np.testing.assert_allclose(ranked.scores, bn_model.rank(ref, candidates, batch_size=4).scores, rtol=1e-5)
