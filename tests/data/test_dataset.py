"""TripletDataset: shared R/A/B geometry, A/B swap, centre crops, reproducibility, workers, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from prfnet.data import LabeledTriplet, Triplet, TripletDataset
from prfnet.errors import DataError
from prfnet.images import load_image


def save(path: Path, array: np.ndarray) -> str:
    Image.fromarray(array).save(path)
    return path.name


@pytest.fixture()
def related(tmp_path):
    """A random reference, its negative (A) and its half (B): pixel-wise functions of R, 24x20 pixels."""
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, size=(24, 20, 3), dtype=np.uint8)
    names = (save(tmp_path / "r.png", ref), save(tmp_path / "a.png", 255 - ref), save(tmp_path / "b.png", ref // 2))
    return tmp_path, LabeledTriplet(*names, p_a=0.8, votes=5)


def test_train_applies_one_geometry_to_ref_a_b(related):
    root, item = related
    data = TripletDataset([item] * 16, root, crop=12, train=True, seed=1, swap=False)
    views = set()
    for epoch in range(3):
        data.set_epoch(epoch)
        for i in range(len(data)):
            sample = data[i]
            ref, a, b = sample["ref"], sample["a"], sample["b"]
            assert ref.shape == a.shape == b.shape == (3, 12, 12) and ref.dtype == torch.float32
            torch.testing.assert_close(a, 1.0 - ref, atol=1e-6, rtol=0)
            torch.testing.assert_close(
                b, torch.div(torch.round(ref * 255), 2, rounding_mode="floor") / 255, atol=1e-6, rtol=0
            )
            assert sample["p_a"].item() == pytest.approx(0.8) and sample["label"].item() == 1.0
            views.add(ref.numpy().tobytes())
    assert len(views) > 10  # crops, flips and rotations really vary


def test_identical_images_stay_identical(tmp_path):
    rng = np.random.default_rng(1)
    name = save(tmp_path / "x.png", rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8))
    data = TripletDataset([LabeledTriplet(name, name, name, 0.5)] * 8, tmp_path, crop=8, train=True)
    for i in range(len(data)):
        sample = data[i]
        assert torch.equal(sample["ref"], sample["a"]) and torch.equal(sample["a"], sample["b"])


def test_swap_exchanges_images_and_flips_p_a(related):
    root, item = related
    data = TripletDataset([item] * 32, root, crop=None, train=True, seed=0, flip=False, rotate=False)
    swapped = 0
    for i in range(len(data)):
        sample = data[i]
        if torch.allclose(sample["b"], 1.0 - sample["ref"], atol=1e-6):  # the negative moved to B
            swapped += 1
            assert sample["p_a"].item() == pytest.approx(0.2) and sample["label"].item() == 0.0
            assert sample["files"] == (item.ref, item.b, item.a)  # the names follow the images
        else:
            torch.testing.assert_close(sample["a"], 1.0 - sample["ref"], atol=1e-6, rtol=0)
            assert sample["p_a"].item() == pytest.approx(0.8)
            assert sample["files"] == (item.ref, item.a, item.b)
    assert 0 < swapped < 32


def test_eval_is_a_deterministic_centre_crop(related):
    root, item = related
    full = load_image(root / item.ref)[0]
    sample = TripletDataset([item], root, crop=10, train=False)[0]
    torch.testing.assert_close(sample["ref"], full[:, 7:17, 5:15])
    assert sample["index"] == 0 and sample["p_a"].item() == pytest.approx(0.8)
    whole = TripletDataset([item], root, crop=None)[0]
    torch.testing.assert_close(whole["ref"], full)


def test_same_draws_for_same_seed_and_epoch(related):
    root, item = related
    first = TripletDataset([item] * 4, root, crop=8, train=True, seed=7)
    second = TripletDataset([item] * 4, root, crop=8, train=True, seed=7)
    assert all(torch.equal(first[i]["ref"], second[i]["ref"]) for i in range(4))
    second.set_epoch(1)
    assert any(not torch.equal(first[i]["ref"], second[i]["ref"]) for i in range(4))


def test_dataloader_workers_match_main_process_and_see_set_epoch(related):
    root, item = related
    data = TripletDataset([item] * 6, root, crop=8, train=True, seed=2)
    loader = DataLoader(data, batch_size=3, num_workers=2, persistent_workers=True)
    for epoch in range(2):
        data.set_epoch(epoch)
        batches = list(loader)
        expected = torch.stack([data[i]["ref"] for i in range(len(data))])
        assert torch.equal(torch.cat([b["ref"] for b in batches]), expected)
        assert torch.equal(torch.cat([b["index"] for b in batches]), torch.arange(6))


def test_non_square_whole_images_keep_their_shape(related):
    root, item = related
    data = TripletDataset([item] * 12, root, crop=None, train=True)
    assert {tuple(data[i]["ref"].shape) for i in range(len(data))} == {(3, 24, 20)}


def test_unlabelled_triplets_get_nan(related):
    root, item = related
    sample = TripletDataset([item.triplet()], root, crop=8)[0]
    assert torch.isnan(sample["p_a"]) and torch.isnan(sample["label"])
    assert isinstance(item.triplet(), Triplet)


def test_errors_name_the_file(related, tmp_path):
    root, item = related
    with pytest.raises(DataError, match=r"crop 32x32 is larger than the image \(20x24\)") as info:
        TripletDataset([item], root, crop=32)[0]
    assert "r.png" in str(info.value)
    missing = LabeledTriplet("r.png", "gone.png", "b.png", 1.0)
    with pytest.raises(DataError, match=r"gone\.png: image not found \(item 0"):
        TripletDataset([missing], root)
    with pytest.raises(DataError, match=r"gone\.png.*item 0"):
        TripletDataset([missing], root, crop=8, check_files=False)[0]
    save(root / "small.png", np.zeros((10, 10, 3), dtype=np.uint8))
    with pytest.raises(DataError, match="differ in size"):
        TripletDataset([LabeledTriplet("r.png", "small.png", "b.png", 1.0)], root, crop=8)[0]


def test_smallest_image_reads_headers_of_each_reference(related, tmp_path, monkeypatch):
    root, item = related  # r.png is 20x24 (width x height)
    rng = np.random.default_rng(2)
    small = save(tmp_path / "s.jpg", rng.integers(0, 256, size=(30, 18, 3), dtype=np.uint8))
    other = LabeledTriplet(small, small, small, 0.5)
    data = TripletDataset([item, other, item], root, crop=12)
    import prfnet.data.dataset as dataset_module

    monkeypatch.setattr(dataset_module, "load_image", None)  # headers only: nothing is decoded
    assert data.smallest_image() == (root / "s.jpg", 18, 30)
    assert TripletDataset([item], root).smallest_image() == (root / "r.png", 20, 24)
    assert TripletDataset([], root).smallest_image() is None
    (tmp_path / "s.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"s\.jpg.*item 1"):
        data.smallest_image()
