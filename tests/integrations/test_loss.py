"""PRFNetLoss: frozen model, gradients to the distorted image only, finite everywhere (identical image, tiling),
reference encoded once, and a few gradient steps bring a distorted image closer to its reference."""

from __future__ import annotations

import pytest
import torch

import prfnet
from prfnet import InputError, PRFNet
from prfnet.integrations.loss import PRFNetLoss
from tests.conftest import noisy_batch, ramp_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def model() -> PRFNet:
    return ramp_model()


def _pair(n: int = 2, size: int = 64, seed: int = 3):
    return noisy_batch(n, size, 0.15, seed)


def _grad(loss: PRFNetLoss, dist: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = dist.clone().requires_grad_(True)
    value = loss(x, ref)
    value.backward()
    return value.detach(), x.grad


def test_exported_and_frozen(model):
    loss = prfnet.PRFNetLoss(model)
    assert prfnet.PRFNetLoss is PRFNetLoss
    assert not any(p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.model.training and not any(m.training for m in loss.model.modules())


@pytest.mark.parametrize("tile", [None, 32])
def test_value_matches_score(model, tile):
    model.set_tiling(tile)
    ref, dist = _pair(size=80)
    expected = model.score(ref, dist)
    none = PRFNetLoss(model, reduction="none")(dist, ref)
    torch.testing.assert_close(none, expected, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(PRFNetLoss(model)(dist, ref), expected.mean(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(PRFNetLoss(model, reduction="sum")(dist, ref), expected.sum(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("tile", [None, 32])
def test_gradient_finite_at_identity_and_random_points(model, tile):
    model.set_tiling(tile)
    size = 64 if tile is None else 96
    ref, dist = _pair(size=size)
    loss = PRFNetLoss(model)
    value, grad = _grad(loss, ref, ref)  # the identical image
    assert value.item() == 0.0
    assert torch.isfinite(grad).all() and grad.abs().max().item() == 0.0  # the minimum: |F_R - F_X|' = 0 there
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        point = torch.rand(ref.shape, generator=g)
        value, grad = _grad(loss, point, ref)
        assert value.item() > 0 and torch.isfinite(grad).all() and grad.abs().sum() > 0
    for flat in (torch.zeros_like(ref), torch.ones_like(ref)):  # constant images: features near the eps of the norm
        _, grad = _grad(loss, flat, flat)
        assert torch.isfinite(grad).all()
        _, grad = _grad(loss, flat, ref)
        assert torch.isfinite(grad).all()


def test_no_gradient_to_the_reference(model):
    ref, dist = _pair()
    ref = ref.clone().requires_grad_(True)
    x = dist.clone().requires_grad_(True)
    PRFNetLoss(model)(x, ref).backward()
    assert ref.grad is None and x.grad is not None
    assert all(p.grad is None for p in model.parameters())


def test_reference_encoded_once(model):
    calls = []
    model.backbone.register_forward_hook(lambda *_: calls.append(1))
    ref, dist = _pair()
    loss = PRFNetLoss(model)
    for _ in range(4):
        loss(dist, ref)
    assert len(calls) == 1 + 4  # the reference once, then each distorted batch
    loss.set_reference(ref.clone())
    calls.clear()
    loss(dist)  # forward(dist) uses the set reference
    assert len(calls) == 1
    ref.mul_(0.5)  # an in-place change of the cached tensor is noticed
    calls.clear()
    loss(dist, ref)
    assert len(calls) == 2


def test_errors(model):
    loss = PRFNetLoss(model)
    ref, dist = _pair()
    with pytest.raises(InputError, match="no reference"):
        loss(dist)
    with pytest.raises(InputError, match="differs"):
        loss(dist[..., :48], ref)
    with pytest.raises(ValueError, match="reduction"):
        PRFNetLoss(model, reduction="max")


def _psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((x - y) ** 2).mean()))


def test_gradient_descent_brings_the_image_closer(model):
    ref, dist = _pair(n=1, seed=7)
    loss = PRFNetLoss(model)
    x = dist.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=1e-2)
    before, psnr_before = model.score(ref, dist).item(), _psnr(dist, ref)
    for _ in range(20):
        opt.zero_grad()
        loss(x, ref).backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    after = model.score(ref, x.detach()).item()
    assert after < 0.7 * before, (before, after)
    assert _psnr(x.detach(), ref) > psnr_before
