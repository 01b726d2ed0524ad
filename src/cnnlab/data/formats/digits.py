"""scikit-learn's bundled handwritten digits (UCI optdigits test set): 1,797 grey 8x8 images, no download."""
from __future__ import annotations

import numpy as np
import torch

from ...errors import CnnlabError
from ..splits import stratified_split

# The train/test split is part of the data set's definition: fixed, whatever ``seed`` says.
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def read_digits() -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], list[str], str]:
    """``({"train": 1,437 images, "test": 360}, ["0", ..., "9"], version)``, images 1 x 8 x 8 uint8.

    The original values 0-16 (counts of set pixels in 4x4 blocks) are scaled to 0-255.
    """
    try:
        import sklearn
        from sklearn.datasets import load_digits
    except ImportError:
        raise CnnlabError("the digits data set comes with scikit-learn: pip install scikit-learn") from None
    bunch = load_digits()
    values = np.asarray(bunch.images, dtype=np.float64)
    images = torch.from_numpy(np.rint(values * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    train, test = stratified_split(labels, TEST_FRACTION, SPLIT_SEED)
    splits = {"train": (images[train], labels[train]), "test": (images[test], labels[test])}
    return splits, [str(int(n)) for n in bunch.target_names], sklearn.__version__
