"""The one exception type for mistakes a user can fix (bad name, bad path, bad value)."""
import errno


class CnnlabError(Exception):
    """A user error: the message says what went wrong and what to do instead.

    The command-line tool prints it without a traceback and exits with status 2.
    """


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
