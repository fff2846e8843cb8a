"""The one exception type the command line turns into a single clear error line."""


class ColorcnnError(Exception):
    """A problem the user can fix: bad input, missing data, an unknown name.

    The message is one line that says what was expected and what came instead.
    """


def first_line(error: BaseException) -> str:
    """The first line of an error from another library, to quote inside one of ours; the
    error's type where it has no message."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
