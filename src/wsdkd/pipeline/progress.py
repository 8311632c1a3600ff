"""Progress that suits where it goes: a tqdm bar on a terminal, plain lines in a log file.

tqdm redraws its bar with carriage returns many times a second; in a file (Snakemake's ``logs/<stage>.log``, a
redirected ``make run``) those frames pile up into hundreds of KB of one unreadable line. Off a terminal, a bar
here prints a whole line only when at least ``progress.log_seconds`` have passed since its last line and at
least ``progress.log_fraction`` of its total has been done since, plus the final count when it closes.
"""

from __future__ import annotations

import functools
import json
import math
import sys

from tqdm import tqdm

from .config import SCHEMA_PATH

_settings: dict = {}


def configure(cfg: dict) -> None:
    """Use params' ``progress`` section (the stages call this through ``stage_cli.start_logging``)."""
    _settings.update(cfg)


@functools.cache
def _schema_defaults() -> dict:
    """The documented defaults, for code that runs without a params file (library calls, tests)."""
    properties = json.loads(SCHEMA_PATH.read_text())["properties"]["progress"]["properties"]
    return {key: spec["default"] for key, spec in properties.items()}


def log_cadence(total: int | None, log_seconds: float, log_fraction: float) -> dict:
    """tqdm arguments for a bar in a file: a line at most every ``log_seconds`` and every ``log_fraction`` of
    ``total`` (time alone when the total is unknown). The monitor thread is kept out (maxinterval infinite): it
    would lower miniters to 1 on a slow bar."""
    miniters = max(1, math.ceil(total * log_fraction)) if total else 1
    return {"mininterval": log_seconds, "miniters": miniters, "maxinterval": math.inf}


class _LogLines(tqdm):
    """A tqdm bar whose every display is a new line, never a redrawn one."""

    def display(self, msg=None, pos=None):
        if msg == "":  # tqdm clears a bar it does not leave: in a file there is nothing to clear
            return False
        self.fp.write((self.__str__() if msg is None else msg) + "\n")
        self.fp.flush()
        return True

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        """The postfix shows on the next line the cadence allows: refreshing now would print a line per step."""
        super().set_postfix(ordered_dict, refresh=False, **kwargs)

    def close(self):
        if not self.disable and self.n != self.last_print_n:
            self.display()  # the final count, which the cadence may have held back
        self.leave = False
        super().close()


def progress_bar(iterable=None, **kwargs) -> tqdm:
    """``tqdm(iterable, **kwargs)`` on a terminal; off one, a bar that writes plain lines at the log cadence."""
    stream = kwargs.get("file") or sys.stderr
    if stream.isatty():
        return tqdm(iterable, **kwargs)
    kwargs.pop("dynamic_ncols", None)  # no terminal to measure
    total = kwargs.get("total", len(iterable) if hasattr(iterable, "__len__") else None)
    cadence = {**_schema_defaults(), **_settings}
    return _LogLines(iterable, **kwargs, **log_cadence(total, cadence["log_seconds"], cadence["log_fraction"]))
