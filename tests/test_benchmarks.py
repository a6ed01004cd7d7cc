"""The benchmark scripts run and print their figures (at a size that takes seconds)."""

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_script(name, *arguments):
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_edgeconv_speed_prints_step_time_throughput_and_memory():
    result = run_script(
        "edgeconv_speed.py",
        "--batch-size",
        "4",
        "--points",
        "40",
        "--steps",
        "2",
        "--warmup",
        "1",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "batch 4, 40 points, default path" in result.stdout
    best, median = map(
        int, re.search(r"ms/step: best (\d+), median (\d+)", result.stdout).groups()
    )
    assert 0 < best <= median
    assert int(re.search(r"peak RSS: (\d+) MiB", result.stdout).group(1)) > 0


def test_book_layer_speed_says_where_to_get_the_layer_when_it_is_missing(tmp_path):
    result = run_script("book_layer_speed.py", "--layer", str(tmp_path / "none.py"))
    assert result.returncode == 2
    assert "is not a file" in result.stderr and "curl" in result.stderr
