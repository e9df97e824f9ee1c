"""Memory checks (prfnet.memory): the available memory read from /proc/meminfo, the cgroup (v1 and v2) and the
address-space limit; the one-line refusal; and the callers that check before they allocate: whole-image scoring
(PRFNet.check_memory, the file API, the scoring engine, the CLI) and synthetic sets. The available memory is
monkeypatched: no test allocates more than a few small images."""

from __future__ import annotations

import resource

import pytest
import torch
from PIL import Image

import prfnet.memory as memory
from prfnet.api import compare_files, score_files
from prfnet.cli import main
from prfnet.errors import PRFNetError
from prfnet.memory import NotEnoughMemory, available_bytes, check_memory, format_bytes
from prfnet.scoring.engine import score_pairs
from prfnet.scoring.metrics import PRFNetMetric
from prfnet.synth import codec_set, distortion_set

MiB = 2**20


@pytest.fixture()
def procfs(tmp_path, monkeypatch):
    """/proc and /sys/fs/cgroup replaced by files under tmp_path (all empty at first); no RLIMIT_AS."""
    root = tmp_path / "cgroup"
    root.mkdir()
    monkeypatch.setattr(memory, "PROC_MEMINFO", tmp_path / "meminfo")
    monkeypatch.setattr(memory, "PROC_SELF_CGROUP", tmp_path / "self_cgroup")
    monkeypatch.setattr(memory, "PROC_SELF_STATM", tmp_path / "statm")
    monkeypatch.setattr(memory, "CGROUP_ROOT", root)
    monkeypatch.setattr(memory.resource, "getrlimit", lambda _: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    return tmp_path


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_nothing_readable_means_nothing_refused(procfs):
    assert available_bytes() is None
    check_memory(10**18, "a huge job", "do less")  # no reading: not refused


def test_meminfo_alone(procfs):
    _write(procfs / "meminfo", "MemTotal:       8000000 kB\nMemAvailable:    2000000 kB\n")
    assert available_bytes() == 2000000 * 1024


def test_cgroup_v2_limit_minus_usage_less_reclaimable_cache(procfs):
    _write(procfs / "meminfo", "MemAvailable:    9000000 kB\n")
    _write(procfs / "self_cgroup", "0::/job.slice/job-1\n")
    own = procfs / "cgroup" / "job.slice" / "job-1"
    _write(own / "memory.max", "6000000000\n")
    _write(own / "memory.current", "2500000000\n")
    _write(own / "memory.stat", "anon 2000000000\ninactive_file 500000000\n")
    assert available_bytes() == 6000000000 - (2500000000 - 500000000)
    _write(own / "memory.max", "max\n")  # no limit: MemAvailable decides
    assert available_bytes() == 9000000 * 1024


def test_cgroup_v1_with_a_parents_limit(procfs):
    _write(procfs / "self_cgroup", "4:memory:/docker/abc\n3:cpu:/docker/abc\n")
    own = procfs / "cgroup" / "memory" / "docker" / "abc"
    _write(own / "memory.limit_in_bytes", "9223372036854771712\n")  # "no limit" in v1
    _write(own / "memory.usage_in_bytes", "1000000000\n")
    _write(own / "memory.stat", "total_inactive_file 200000000\nhierarchical_memory_limit 3000000000\n")
    assert available_bytes() == 3000000000 - 800000000


def test_the_container_root_is_read_when_the_own_path_is_absent(procfs):
    _write(procfs / "self_cgroup", "0::/somewhere/outside/the/namespace\n")
    _write(procfs / "cgroup" / "memory.max", "4000000000\n")
    _write(procfs / "cgroup" / "memory.current", "1000000000\n")
    assert available_bytes() == 3000000000


def test_address_space_limit(procfs, monkeypatch):
    monkeypatch.setattr(memory.resource, "getrlimit", lambda _: (6 * 2**30, resource.RLIM_INFINITY))
    _write(procfs / "statm", f"{2**30 // memory.os.sysconf('SC_PAGE_SIZE')} 100 0 0 0 0 0\n")
    assert available_bytes() == 5 * 2**30


def test_a_gpu_reads_the_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev: (3 * 2**30, 80 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda dev: 2**30)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda dev: 2**29)
    assert available_bytes("cuda:0") == 3 * 2**30 + 2**29
    assert available_bytes("meta") is None  # no portable reading: nothing refused


def test_refusal_is_one_line_with_both_amounts(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 6 * 2**30)
    check_memory(6 * 2**30, "an exact fit", "never shown")  # need == available: not refused
    with pytest.raises(NotEnoughMemory) as caught:
        check_memory(101 * 2**30, "scoring it", lambda available: f"advice for {available}")
    message = str(caught.value)
    assert message == (
        f"scoring it needs about 101 GiB of memory, 6.0 GiB is available here (RAM); advice for {6 * 2**30}"
    )
    assert isinstance(caught.value, PRFNetError) and isinstance(caught.value, MemoryError)


def test_format_bytes():
    assert [format_bytes(n) for n in (5 * 2**10, 5 * MiB, 6 * 2**30, 229 * 2**40)] == [
        "5 KiB",
        "5.0 MiB",
        "6.0 GiB",
        "229 TiB",
    ]


# ------------------------------------------------------------------------------------- whole-image scoring


@pytest.fixture()
def scarce(monkeypatch):
    """50 MiB available on every device."""
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 50 * MiB)


def test_model_estimate_and_tile_advice(tiny_model, scarce):
    model = tiny_model
    need = model.scoring_memory(4000, 4000, 2)
    assert need == 100 * 4000 * 4000 * 3  # test_resnet: 100 bytes per pixel per image, reference included
    with pytest.raises(NotEnoughMemory, match=r"needs about 4\.5 GiB .* 50\.0 MiB .*--tile 256 .*tile_size=256"):
        model.check_memory(4000, 4000, 2, "scoring it")
    model.set_tiling(256)
    try:
        assert model.scoring_memory(4000, 4000, 2) == 100 * 256 * 256 * 3
        model.check_memory(4000, 4000, 2, "scoring it")  # 19 MB: fits
    finally:
        model.set_tiling(None)
    model.check_memory(64, 64, 8, "small images")  # never refused


def _png(path, side):
    Image.fromarray(torch.zeros(side, side, 3, dtype=torch.uint8).numpy()).save(path)
    return path


def test_file_api_checks_before_decoding(tiny_model, tmp_path, monkeypatch):
    ref, a, b = (_png(tmp_path / f"{n}.png", 64) for n in "rab")
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 1000)  # less than 64 x 64 images need
    monkeypatch.setattr("prfnet.api.load_image", lambda *a, **k: pytest.fail("decoded before the memory check"))
    with pytest.raises(NotEnoughMemory, match=r"scoring against .*r\.png \(64x64 px\) 2 at a time as whole images"):
        compare_files(tiny_model, ref, a, b)
    with pytest.raises(NotEnoughMemory, match=r"free some memory, or score fewer images at once \(--batch-size\)"):
        score_files(tiny_model, ref, [a, b, a], batch_size=2)


def test_file_api_runs_when_it_fits(tiny_model, tmp_path, scarce):
    ref, a, b = (_png(tmp_path / f"{n}.png", 64) for n in "rab")
    assert compare_files(tiny_model, ref, a, b).closer in "AB"


def test_engine_refuses_instead_of_dropping_the_metric(tiny_model, tmp_path, monkeypatch):
    ref, a = _png(tmp_path / "r.png", 64), _png(tmp_path / "a.png", 64)
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 1000)
    with pytest.raises(NotEnoughMemory, match=r"prfnet: scoring against .*r\.png \(64x64 px\) 1 at a time"):
        score_pairs([(ref, a)], [PRFNetMetric(tiny_model)], progress=False)


def test_cli_compare_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    ref, a, b = (_png(tmp_path / f"{n}.png", 512) for n in "rab")
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 40 * MiB)  # 512 px: 75 MiB + 3.25 decoded
    argv = ["compare", str(ref), str(a), str(b), "--random-init", "--backbone", "test_resnet"]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("WARNING: --random-init") and len(lines) == 2  # the warning, then one error line
    assert "needs about 78.2 MiB of memory, 40.0 MiB is available here (RAM); score in tiles: --tile 256" in lines[1]
    assert main([*argv, "--tile", "256"]) == 0


# ------------------------------------------------------------------------------------------ synthetic sets


def test_synth_functions_refuse_before_making_anything(tmp_path, scarce):
    out = tmp_path / "set"
    with pytest.raises(NotEnoughMemory, match=r"synthesize_clic\(refs=12, size=100000\) needs about .* TiB"):
        distortion_set.synthesize_clic(out, refs=12, size=100000)
    with pytest.raises(NotEnoughMemory, match=r"use a smaller size \(at most about \d+ px could fit here\)"):
        codec_set.synthesize_codec_clic(out, refs=2, size=100000, workers=1)
    assert not out.exists()


@pytest.mark.parametrize("kind", ["distortions", "codecs"])
def test_cli_synth_size_is_one_line_and_nothing_written(tmp_path, scarce, capsys, kind):
    out = tmp_path / "set"
    assert main(["synth", str(out), "--kind", kind, "--size", "100000"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"prfnet synth --kind {kind} --size 100000" in err
    assert "smaller --size" in err and "Traceback" not in err
    assert not out.exists()


def test_synth_estimate_scales_with_workers(monkeypatch):
    seen = []
    monkeypatch.setattr("prfnet.synth.common.check_memory", lambda need, *a, **k: seen.append(need))
    codec_set.check_memory_for(refs=16, size=1000, workers=1)
    codec_set.check_memory_for(refs=16, size=1000, workers=4)
    distortion_set.check_memory_for(refs=16, size=1000)
    per_ref = 10**6 * codec_set.WORKING_BYTES_PER_PIXEL
    assert seen[1] - seen[0] == 3 * per_ref  # three more references worked on at once
    assert seen[2] == 10**6 * (3 * 16 + distortion_set.WORKING_BYTES_PER_PIXEL)
