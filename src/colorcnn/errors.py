"""The one exception type the command line turns into a single clear error line."""


class ColorcnnError(Exception):
    """A problem the user can fix: bad input, missing data, an unknown name.

    The message is one line that says what was expected and what came instead.
    """
