"""Progress bars: tqdm's own on a terminal; in a file, whole lines at the log cadence and never a carriage return."""

from __future__ import annotations

import io
import math

import pytest
from tqdm import tqdm

from wsdkd.pipeline import progress
from wsdkd.pipeline.progress import log_cadence, progress_bar


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def cadence(monkeypatch):
    monkeypatch.setattr(progress, "_settings", {})
    return progress.configure


def test_cadence_from_total_and_params():
    assert log_cadence(250, 10, 0.1) == {"mininterval": 10, "miniters": 25, "maxinterval": math.inf}
    assert log_cadence(5, 10, 0.1)["miniters"] == 1, "a short bar still prints"
    assert log_cadence(None, 3, 0.1)["miniters"] == 1, "unknown total: time alone"


def test_a_file_gets_one_line_per_tenth_without_carriage_returns(cadence):
    cadence({"log_seconds": 0, "log_fraction": 0.1})
    out = io.StringIO()
    for _ in progress_bar(range(100), desc="epoch 1/2", file=out, leave=False, dynamic_ncols=True):
        pass
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert [line.split("|")[0].split(":")[1].strip() for line in lines] == [f"{p}%" for p in range(0, 101, 10)]
    assert lines[-1].startswith("epoch 1/2: 100%") and "100/100" in lines[-1]


def test_a_slow_cadence_prints_the_start_and_the_final_count_only(cadence):
    cadence({"log_seconds": 3600, "log_fraction": 0.1})
    out = io.StringIO()
    with progress_bar(total=40, desc="epoch 1/1", file=out) as bar:
        for step in range(40):
            bar.update(1)
            bar.set_postfix(loss=f"{1 / (step + 1):.4f}")  # as the training loop does every step
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "0/40" in lines[0] and "40/40" in lines[1] and "loss=0.0250" in lines[1]


def test_a_terminal_gets_tqdms_own_bar(cadence):
    terminal = Terminal()
    bar = progress_bar(range(3), file=terminal, dynamic_ncols=True)
    assert type(bar) is tqdm
    list(bar)
    assert "\r" in terminal.getvalue(), "redrawn in place"


def test_defaults_are_the_schemas(cadence, default_params):
    assert progress._schema_defaults() == default_params["progress"], "params.yaml ships the documented defaults"
