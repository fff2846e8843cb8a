"""The exception types the command line turns into a single clear error line."""

from __future__ import annotations

import re
from collections.abc import Callable

# A parameter's name in a SettingError's message: `batch_size`.
_PARAMETER = re.compile(r"`([a-z][a-z0-9_]*)`")


class ColorcnnError(Exception):
    """A problem the user can fix: bad input, missing data, an unknown name.

    The message is one line that says what was expected and what came instead.
    """


class SettingError(ColorcnnError):
    """A setting out of range, or at odds with another.

    The message names the parameters it is about in backticks, as in
    SettingError(f"`batch_size` must be a positive integer, got {value}"); the error reads
    "batch_size must be ...", while the command line spells each name as its flag
    ("--batch-size must be ...") through `spelled`.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def parameters(self) -> list[str]:
        """The parameters the message names, in order."""
        return list(dict.fromkeys(_PARAMETER.findall(self.message)))

    def spelled(self, spell: Callable[[str], str]) -> str:
        """The message with each parameter's name written as `spell(name)`."""
        return _PARAMETER.sub(lambda match: spell(match.group(1)), self.message)

    def __str__(self) -> str:
        return self.spelled(lambda name: name)


def first_line(error: BaseException) -> str:
    """The first line of an error from another library, to quote inside one of ours; the
    error's type where it has no message."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
