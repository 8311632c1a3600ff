"""The one exception type that reaches the user as a single line, and the wrapper that prints it."""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable[..., object])


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
