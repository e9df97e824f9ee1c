"""Keyword arguments (``ref=``, ``dist=``, ``a=``, ``b=``) on every entry point of the model and of prfnet.api, the
names the adapters and the docs call them with."""

from __future__ import annotations

import pytest
import torch

from prfnet.api import compare_files, score_files

pytestmark = pytest.mark.usefixtures("one_thread")


def test_keyword_calls_equal_positional(model, data, files):
    ref, dist = data
    torch.testing.assert_close(model.score(ref=ref, dist=dist), model.score(ref, dist))
    a, b = dist[:1], ref[:1].flip(-1)
    torch.testing.assert_close(model.compare(ref=ref[:1], a=a, b=b), model.compare(ref[:1], a, b))
    torch.testing.assert_close(model(ref=ref[:1], a=a, b=b), model(ref[:1], a, b))
    kw = model.rank(ref=ref[:1], candidates=[a, b])
    pos = model.rank(ref[:1], [a, b])
    assert kw.order.tolist() == pos.order.tolist()
    torch.testing.assert_close(kw.scores, pos.scores)
    feats = model.encode(ref=ref)
    torch.testing.assert_close(model.score(ref=feats, dist=dist), model.score(ref, dist))
    assert compare_files(model, ref=files["ref"], a=files["a"], b=files["b"]) == compare_files(
        model, files["ref"], files["a"], files["b"]
    )
    assert score_files(model, ref=files["ref"], dists=[files["a"], files["b"]]) == score_files(
        model, files["ref"], [files["a"], files["b"]]
    )


def test_what_a_swap_by_position_does(model, data):
    """``score`` is symmetric (|F_R - F_X| of features computed alike), so swapping ref and dist is harmless there;
    in ``compare`` the reference's position matters, which is why the docs call it with ``ref=``, ``a=``, ``b=``."""
    ref, dist = data
    torch.testing.assert_close(model.score(ref=dist, dist=ref), model.score(ref=ref, dist=dist))
    r, a, b = ref[:1], dist[:1], ref[1:2]
    right = model.compare(ref=r, a=a, b=b).item()
    swapped = model.compare(a, r, b).item()  # the reference given as A by position
    assert right > 0.5 and swapped > right  # R itself is closest to R: a different (and wrong-question) answer
