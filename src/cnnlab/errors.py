"""The exception types for mistakes a user can fix (bad name, bad path, bad value).

:class:`CnnlabError` is the one type the command line catches: it prints the message
without a traceback and exits with status 2. Its subclasses say *which* mistake it was,
so that code which recovers from one (a data set without a test split, a model that does
not take an argument) tests the type, never the wording of the message.
"""
import difflib
import errno
from collections.abc import Iterable, Mapping, Sequence


class CnnlabError(Exception):
    """A user error: the message says what went wrong and what to do instead.

    The command-line tool prints it without a traceback and exits with status 2.
    """


class UnknownNameError(CnnlabError):
    """A name that is not among the valid ones (a model, recipe, claim, augmentation, key)."""


class MissingSplitError(CnnlabError):
    """A data set has no such split (no test folder, or no validation part with val_fraction 0)."""

    def __init__(self, message: str, split: str):
        super().__init__(message)
        self.split = split


class ModelArgumentError(CnnlabError):
    """A model's constructor does not take an argument it was given (``argument`` names it)."""

    def __init__(self, message: str, argument: str):
        super().__init__(message)
        self.argument = argument


def close_names(name: str, choices: Iterable[str], n: int = 5, cutoff: float = 0.5) -> list[str]:
    """The valid names closest to a mistyped ``name``, closest first (none when none is close)."""
    return difflib.get_close_matches(str(name), list(choices), n=n, cutoff=cutoff)


def did_you_mean(name: str, choices: Iterable[str], n: int = 5) -> str:
    """``" Did you mean: a, b?"`` with the valid names closest to ``name``, or ``""`` when none is close."""
    close = close_names(name, choices, n)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def unknown_name(kind: str, name: str, choices: Iterable[str], advice: str, n: int = 5) -> UnknownNameError:
    """The error for an unknown ``kind`` called ``name``: the closest valid names, then ``advice``
    (how to list them all). Raise what it returns: ``raise unknown_name(...) from None``."""
    return UnknownNameError(f"unknown {kind} {name!r}.{did_you_mean(name, choices, n)} {advice}")


def canonical_name(kind: str, requested: str, names: Sequence[str], aliases: Mapping[str, str]) -> str:
    """``requested`` as one of ``names``, case-insensitively and with ``aliases`` (``he`` for
    ``kaiming``, ``float16`` for ``fp16``) mapped; otherwise an :class:`UnknownNameError` that
    lists the names."""
    key = str(requested).lower()
    key = aliases.get(key, key)
    if key not in names:
        raise UnknownNameError(f"unknown {kind} {requested!r}; choose one of {', '.join(names)}")
    return key


# What torch's allocators say when memory runs out: CUDA and MPS ("... out of memory"), the
# CPU allocator ("DefaultCPUAllocator: can't allocate memory"); numpy raises MemoryError.
_OUT_OF_MEMORY_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory")


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is a device or the host running out of memory (torch.OutOfMemoryError,
    the CPU allocator's RuntimeError, MemoryError, a process that cannot fork: ENOMEM), which
    a smaller batch usually cures."""
    if isinstance(error, MemoryError):
        return True
    if isinstance(error, OSError):
        return error.errno == errno.ENOMEM
    return isinstance(error, RuntimeError) and any(m in str(error).lower() for m in _OUT_OF_MEMORY_MESSAGES)


def first_line(error: BaseException) -> str:
    """The first non-empty line of ``error``'s message, or its type's name when it has none."""
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
