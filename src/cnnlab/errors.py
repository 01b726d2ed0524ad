"""The one exception type for mistakes a user can fix (bad name, bad path, bad value)."""


class CnnlabError(Exception):
    """A user error: the message says what went wrong and what to do instead.

    The command-line tool prints it without a traceback and exits with status 2.
    """
