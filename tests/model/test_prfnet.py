"""PRFNet model behaviour: antisymmetry, batch independence, shapes, rank/encode, a four-level backbone, gradients."""

from __future__ import annotations

import pytest
import timm
import torch

from prfnet import InputError, PRFNet
from prfnet.model.backbone import IMAGENET_MEAN, IMAGENET_STD
from tests.conftest import TINY


def test_compare_is_exactly_antisymmetric(tiny_model, images):
    r, a, b = images(4), images(4), images(4)
    with torch.no_grad():
        total = tiny_model.compare(r, a, b) + tiny_model.compare(r, b, a)
    assert total.shape == (4,)
    assert torch.allclose(total, torch.ones(4), atol=1e-5)


def test_compare_equals_sigmoid_of_score_difference(tiny_model, images):
    r, a, b = images(2), images(2), images(2)
    with torch.no_grad():
        p = tiny_model.compare(r, a, b)
        expected = torch.sigmoid(tiny_model.score(r, b) - tiny_model.score(r, a))
    assert torch.allclose(p, expected, atol=1e-6)


def test_result_does_not_depend_on_batch(tiny_model, images):
    r, a, b = images(8, 48, 80), images(8, 48, 80), images(8, 48, 80)
    with torch.no_grad():
        batched = tiny_model.compare(r, a, b)
        alone = torch.stack([tiny_model.compare(r[i : i + 1], a[i : i + 1], b[i : i + 1])[0] for i in range(8)])
    assert torch.allclose(batched, alone, atol=1e-5)


def test_score_is_zero_for_identical_image_and_positive_otherwise(tiny_model, images):
    r, d = images(2), images(2)
    with torch.no_grad():
        assert torch.all(tiny_model.score(r, r) == 0)
        assert torch.all(tiny_model.score(r, d) > 0)


def test_identical_image_bound_holds_on_the_batched_paths(tiny_model, images, tmp_path):
    """README: exactly 0 when reference and image share a batch size; below 1e-5 of a distorted image's
    distance where rank batches the candidates (the CLI path, through rank_files)."""
    from prfnet.api import rank_files
    from prfnet.images import save_image

    r = images(1, 64, 64)
    noisy = [(r + 0.05 * k * torch.randn_like(r)).clamp(0, 1) for k in (1, 2, 3)]
    with torch.no_grad():
        assert tiny_model.score(r, r).item() == 0.0
        assert tiny_model.compare(r, r, noisy[0]).item() > 0.5
        ranking = tiny_model.rank(r, [noisy[0], r, *noisy[1:]], batch_size=4)
    assert ranking.order[0].item() == 1
    assert abs(ranking.scores[1].item()) < 1e-5 * ranking.scores[[0, 2, 3]].min().item()
    paths = []
    for i, x in enumerate([r, noisy[0], r]):
        paths.append(tmp_path / f"{i}.png")
        save_image(x, paths[-1])
    ranked = dict(rank_files(tiny_model, paths[0], paths[1:], batch_size=2))
    assert abs(ranked[str(paths[2])]) < 1e-5 * ranked[str(paths[1])]


def test_compare_saturates_as_documented_and_the_logit_keeps_the_order(images):
    """README: float32 sigmoid gives exactly 1.0 once the logit passes ~17; the logit still orders the cases."""
    model = PRFNet(TINY)
    r = images(1)
    slight, strong = (r + 0.02 * torch.randn_like(r)).clamp(0, 1), (r + 0.5 * torch.randn_like(r)).clamp(0, 1)
    clearer = (r + 0.7 * torch.randn_like(r)).clamp(0, 1)
    with torch.no_grad():
        model.head.weight.fill_(40.0 / model(r, slight, strong).item())  # softplus(w) ~ w for large w
        logits = torch.cat([model(r, slight, strong), model(r, slight, clearer)])
        probs = torch.cat([model.compare(r, slight, strong), model.compare(r, slight, clearer)])
    assert probs.dtype == torch.float32 and (logits > 17).all()
    assert (probs == 1.0).all()  # saturated, as the README says
    assert logits[1] > logits[0]  # the logit still says which case is clearer


@pytest.mark.parametrize("size", [(32, 32), (45, 77), (100, 33)])
def test_any_size_from_32_pixels(tiny_model, images, size):
    r, a, b = images(1, *size), images(1, *size), images(1, *size)
    with torch.no_grad():
        p = tiny_model.compare(r, a, b)
    assert p.shape == (1,) and 0 < p.item() < 1


def test_encode_reuses_reference_features(tiny_model, images):
    r, d = images(1), images(5)
    with torch.no_grad():
        feats = tiny_model.encode(r)
        assert torch.allclose(tiny_model.score(feats, d), tiny_model.score(r, d), atol=1e-6)
    with pytest.raises(InputError, match="differs"):
        tiny_model.score(feats, images(1, 64, 96))


class _BackboneCounter:
    """Counts the images the backbone sees, through a forward hook."""

    def __init__(self, model):
        self.images = 0
        self.max_side = 0
        self.handle = model.backbone.register_forward_hook(self)

    def __call__(self, module, inputs, output):
        self.images += inputs[0].shape[0]
        self.max_side = max(self.max_side, *inputs[0].shape[-2:])


def test_rank_encodes_reference_once_and_compare_sees_three_images(tiny_model, images):
    r, cands = images(1), images(6)
    counter = _BackboneCounter(tiny_model)
    try:
        ranking = tiny_model.rank(r, cands, batch_size=4)
        assert counter.images == 6 + 1
        counter.images = 0
        with torch.no_grad():
            tiny_model.compare(r, cands[:1], cands[1:2])
        assert counter.images == 3
    finally:
        counter.handle.remove()
    scores = torch.stack([tiny_model.score(r, c[None]).detach()[0] for c in cands])
    assert torch.allclose(ranking.scores, scores, atol=1e-5)
    assert ranking.order.tolist() == torch.argsort(scores).tolist()
    assert ranking.scores[ranking.order].diff().ge(0).all()


def test_rank_puts_the_reference_itself_first(tiny_model, images):
    r = images(1)
    cands = [images(1), r.clone(), images(1)]
    assert tiny_model.rank(r, cands).order[0].item() == 1


def test_rank_rejects_bad_calls(tiny_model, images):
    with pytest.raises(InputError):
        tiny_model.rank(images(2), images(3))
    with pytest.raises(InputError):
        tiny_model.rank(images(1), [])


def test_a_four_level_timm_backbone_runs_end_to_end(images):
    """ConvNeXt has four feature levels (no stride-2 stem level): all four are fused, at strides 4..32. The
    feature maps are checked against timm's own classifier network with the same weights
    (the output of each of its 4 stages), and each level must change the score."""
    torch.manual_seed(0)
    model = PRFNet("test_convnext")
    with torch.no_grad():
        model.head.weight.normal_()
    r, a, b = images(2, 64, 96), images(2, 64, 96), images(2, 64, 96)

    # the same network built as timm's classifier (keys stem.0 / stages.0 instead of stem_0 / stages_0)
    classifier = timm.create_model("test_convnext").eval()
    state = {
        k.replace("stem_", "stem.").replace("stages_", "stages."): v for k, v in model.backbone.state_dict().items()
    }
    missing, unexpected = classifier.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("head.") for k in missing)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():  # each stage's output, by hand: forward_intermediates' list differs between timm versions
        x, stages = classifier.stem((r - mean) / std), []
        for stage in classifier.stages:
            x = stage(x)
            stages.append(x)
        feats = model.features(r)
    assert len(stages) == 4 and model.levels == (0, 1, 2, 3)
    assert [tuple(f.shape[-2:]) for f in feats] == [(64 // s, 96 // s) for s in (4, 8, 16, 32)]
    for ours, stage in zip(feats, stages, strict=True):
        norm = stage.pow(2).sum(dim=1, keepdim=True).sqrt()
        torch.testing.assert_close(ours, stage / norm, rtol=1e-4, atol=1e-5)
    assert [p.in_channels for p in model.pair.proj.values()] == [s.shape[1] for s in stages]

    # every level is read: each projection sees its level's pair of maps, and silencing any one of them changes
    # the distance (the coarse levels only slightly at random initialisation, hence the exact comparison: the
    # same computation on the same input is bitwise reproducible on the CPU)
    seen = {}

    def record(level):
        def hook(module, inputs, output):
            seen[level] = tuple(inputs[0].shape)

        return hook

    hooks = [proj.register_forward_hook(record(level)) for level, proj in model.pair.proj.items()]
    with torch.no_grad():
        p = model.compare(r, a, b) + model.compare(r, b, a)
        for h in hooks:
            h.remove()
        base = model.score(r, a)
        for level, proj in model.pair.proj.items():
            saved = proj.weight.clone()
            proj.weight.zero_()
            try:
                changed = model.score(r, a)
            finally:
                proj.weight.copy_(saved)
            assert not torch.equal(changed, base), f"level {level} is not used"
    assert seen == {str(s): tuple(stage.shape) for s, stage in enumerate(stages)}
    assert torch.allclose(p, torch.ones(2), atol=1e-6)


def test_gradients_flow_for_training(images):
    model = PRFNet(TINY).train()
    logit = model(images(2), images(2), images(2))
    logit.sum().backward()
    assert model.head.weight.grad is not None and model.pair.proj["0"].weight.grad.abs().sum() > 0
