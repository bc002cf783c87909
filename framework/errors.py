"""One exception type for every mistake a user can fix; `run.py` prints it as one line."""


class UserError(Exception):
    """A problem with the user's input (config, data, checkpoint) and what to do about it.

    The message must fit on one line and say what to do, e.g.
    ``UserError("data folder '/x' does not exist: set data.root=<folder of images>")``.
    """
