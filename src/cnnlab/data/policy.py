"""What happens to a few bad files among many: a documented skip with a warning, else a clear error."""
from __future__ import annotations

import warnings

from ..errors import CnnlabError

# Up to 1% of the files in class folders may be unreadable (corrupt, truncated, not images):
# they are skipped with a DataWarning that counts them and names the first few. More than
# that means something is wrong with the data set as a whole, and loading stops.
MAX_BAD_FRACTION = 0.01

_SHOWN = 5


class DataWarning(UserWarning):
    """Something in a data set was skipped or looks suspicious; the data set still loaded."""


def describe_bad(bad: list[tuple[str, str]]) -> str:
    shown = "; ".join(f"{name}: {reason}" for name, reason in bad[:_SHOWN])
    return shown + (f"; and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else "")


def apply_bad_file_policy(bad: list[tuple[str, str]], total: int, source: str,
                          max_bad_fraction: float = MAX_BAD_FRACTION) -> list[str]:
    """Skip ``bad`` files (``(name, reason)``) with a warning if few enough, else raise.

    Returns the skipped names. ``total`` counts every file that should have been an image.
    """
    if not bad:
        return []
    if len(bad) > max_bad_fraction * total:
        if len(bad) == 1:
            name, reason = bad[0]
            raise CnnlabError(f"{source}: {name}: {reason}. Fix or remove the file.")
        raise CnnlabError(f"{source}: {len(bad)} of {total} files cannot be used as images (at most "
                          f"{max_bad_fraction:.0%} may be skipped): {describe_bad(bad)}. Fix or remove them, "
                          "or pass a larger max_bad_fraction.")
    warnings.warn(DataWarning(f"{source}: skipped {len(bad)} of {total} files that cannot be used as images: "
                              f"{describe_bad(bad)}"), stacklevel=3)
    return [name for name, _ in bad]
