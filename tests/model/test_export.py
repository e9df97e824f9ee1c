"""``prfnet export --onnx``: the exported score and compare graphs agree with PyTorch on CPU (onnxruntime)."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
import torch

from prfnet import PRFNet
from prfnet.cli import main
from tests.conftest import TINY

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

pytestmark = pytest.mark.usefixtures("one_thread")
SIZES = [(64, 64), (96, 80)]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = PRFNet(TINY)
    with torch.no_grad():
        model.head.weight.normal_()
    return model.save_pretrained(tmp_path_factory.mktemp("export") / "tiny.safetensors")


@pytest.mark.parametrize("what", ["score", "compare"])
def test_onnx_agrees_with_pytorch_on_two_sizes(capsys, checkpoint, tmp_path, what):
    out = tmp_path / f"{what}.onnx"
    code = main(["export", "--onnx", str(out), "--what", what, "-c", str(checkpoint)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert str(out) in captured.out and "opset 17" in captured.out
    model = PRFNet.from_pretrained(checkpoint)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == (["ref", "dist"] if what == "score" else ["ref", "a", "b"])
    g = torch.Generator().manual_seed(1)
    for h, w in SIZES:
        xs = [torch.rand(2, 3, h, w, generator=g) for _ in names]
        got = session.run(None, {n: x.numpy() for n, x in zip(names, xs, strict=True)})
        with torch.no_grad():
            if what == "score":
                expected = [model.score(*xs)]
            else:
                expected = [model.compare(*xs), model.score(xs[0], xs[1]), model.score(xs[0], xs[2])]
        assert len(got) == len(expected)
        for g_out, e_out in zip(got, expected, strict=True):
            assert g_out.shape == (2,)
            np.testing.assert_allclose(g_out, e_out.numpy(), atol=1e-4, rtol=0)


def test_bad_what_is_a_one_line_error(capsys, checkpoint, tmp_path):
    code = main(["export", "--onnx", str(tmp_path / "x.onnx"), "--what", "rank", "-c", str(checkpoint)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--what" in err
    assert not (tmp_path / "x.onnx").exists()


def test_tiled_model_is_refused(checkpoint, tmp_path):
    from prfnet.errors import ConfigError
    from prfnet.model.export import export_onnx

    model = PRFNet.from_pretrained(checkpoint, tile_size=64)
    with pytest.raises(ConfigError, match="whole images"):
        export_onnx(model, tmp_path / "t.onnx")


def test_missing_onnx_names_the_extra(capsys, checkpoint, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    code = main(["export", "--onnx", str(tmp_path / "x.onnx"), "-c", str(checkpoint)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "prfnet[onnx]" in err
