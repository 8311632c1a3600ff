"""The one exception type that reaches the user as a single line, the wrapper that prints it, and how such a
line names a few of many items."""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable[..., object])


# How many names one error or log line lists before it just counts the rest.
MAX_NAMED = 5


def name_a_few(names: list[str]) -> str:
    """``a, b, c, d, e and 7 more``: many problem items on one line."""
    more = f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else ""
    return ", ".join(names[:MAX_NAMED]) + more


class UserError(Exception):
    """A problem the user can fix (bad params, missing file, corrupt input).

    Its message is shown as it is, one line per problem, without a traceback.
    """


class DamagedFile(UserError):
    """A file that exists but cannot be used as what it should be (truncated, foreign, wrong shapes).

    ``path`` names it, so that a stage can remove the upstream output it belongs to (see remake.py).
    """

    def __init__(self, path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


def exits_cleanly(main: F) -> F:
    """Run a command-line ``main``; turn a UserError into ``error: ...`` on stderr and exit status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as exc:
            for line in str(exc).splitlines():
                print(f"error: {line}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
