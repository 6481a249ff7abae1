"""The command line: bad input exits non-zero with one clear line; probe prints JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY_CLIP


def run_cli(*args: str, cache: Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """`python -m engine ARGS`; its frame cache goes to `cache` (a pytest tmp_path), never
    into the repository."""
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={"PIXEL_CACHE_DIR": str(cache), "PATH": "/usr/bin"})


def error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0, done.stdout
    lines = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_probe_prints_clip_facts(tmp_path: Path) -> None:
    done = run_cli("probe", str(TINY_CLIP), cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert (info["codec"], info["width"], info["height"], info["frame_count"]) == \
        ("h264", 192, 128, 15)


@pytest.mark.parametrize(("args", "expected"), [
    (["missing.mp4"], "not found"),
    ([str(TINY_CLIP), "--task", "sr_x8"], "choose one of: sr_x2, sr_x3, sr_x4, denoise, deblock"),
    ([str(TINY_CLIP), "--strategy", "grid"], "choose one of: nsga2, tpe, random"),
    ([str(TINY_CLIP), "--objective", "psnr,flops"], "unknown objectives"),
    ([str(TINY_CLIP), "--max-macs", "1K"], "smallest the space allows at 1280x720 output is"),
    ([str(TINY_CLIP), "--storage", "nosuchdb://x"], "cannot open storage"),
])
def test_bad_input_gets_one_clear_line(args: list[str], expected: str, tmp_path: Path) -> None:
    line = error_line(run_cli("search", *args, "--out", str(tmp_path / "out"),
                              cache=tmp_path / "cache", cwd=REPO))
    assert expected in line


def test_non_video_file(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    line = error_line(run_cli("search", str(fake), "--out", str(tmp_path / "out"),
                              cache=tmp_path / "cache"))
    assert "cannot decode" in line and "notes.mp4" in line


def test_bad_count_suffix_is_an_argparse_error(tmp_path: Path) -> None:
    done = run_cli("search", str(TINY_CLIP), "--max-macs", "5X", cache=tmp_path / "cache")
    assert done.returncode == 2 and "cannot read '5X' as a count" in done.stderr
