"""The lectures' quantitative claims, recomputed from the project's own models and training code.

Every number a lecture states (AlexNet's 55x55x96 after CONV1, VGG-16's 138M parameters,
the naive Inception module's 854M multiply-adds, batch norm's worked example, the
initialisation study, ...) is registered as a :class:`Claim`: the words, the seed file and
an exact quote it comes from, the lecture's value with a stated tolerance, and a function
that computes the same quantity from cnnlab's code. :func:`check_claims` runs them and
says, for each, whether the lecture's number *agrees* with what the code computes or
*differs*, and why.

Nothing here hard-codes an answer: each compute function builds a model or module (on
the ``meta`` device, so shapes and counts cost milliseconds and no memory) or runs a small
seeded experiment, and reads the number off it. Some lecture numbers do not survive that
check (VGG-16's "24M" total memory, the bottlenecked Inception module's "358M ops",
GoogLeNet's "12x fewer parameters than AlexNet"); their verdict is "differs" with the reason.

Layout: :mod:`.core` owns the registry and the verdicts, :mod:`.measure` the helpers the
computations share, and one module per topic registers that topic's claims when it is
imported. This package imports every topic module below, so importing it (or anything
in it) registers every claim. A new topic module uses ``from .core import claim`` and
gets a line in the imports below; its place there is its claims' place in the list.
"""
from .core import (
    LESSON,
    PRACTICE,
    REFERENCES,
    SLIDES_2019,
    SLIDES_2025,
    Claim,
    ClaimResult,
    all_claims,
    check_claims,
    claim,
    claims_of_one_number,
    claims_table_rows,
    evaluate,
    format_value,
    get_claim,
    normalize_whitespace,
    register_claim,
)

# The topic modules, in the order their claims are listed (registration happens at import).
from . import basics, alexnet, vgg, inception, resnet, efficient, lenet  # architectures
from . import training_layers, initialization, label_smoothing, augmentation  # training
from . import results  # results quoted from papers

from .efficient import TIMELINE, architecture_timeline
from .initialization import (
    INITIALIZATION_RUNS,
    SATURATION,
    ActivationStatistics,
    InitialLoss,
    initial_loss,
    initialization_studies,
    initialization_study,
    initialization_table,
    plot_initialization_study,
    write_claim_figures,
)
from .augmentation import MixupBlends, mixup_blends, tta_forward_passes
from .label_smoothing import LabelSmoothingExample, label_smoothing_example, smoothed_targets
from .training_layers import (
    BatchNormExample,
    BatchOfOne,
    DropoutExample,
    batch_of_one,
    batchnorm_example,
    dropout_example,
    dropout_units,
    residual_gradient_paths,
)

ARCHITECTURE_TOPICS = (basics, alexnet, vgg, inception, resnet, efficient, lenet)
TRAINING_TOPICS = (training_layers, initialization, label_smoothing, augmentation)
RESULTS_TOPICS = (results,)

__all__ = [
    "LESSON",
    "PRACTICE",
    "REFERENCES",
    "SLIDES_2019",
    "SLIDES_2025",
    "Claim",
    "ClaimResult",
    "all_claims",
    "check_claims",
    "claim",
    "claims_of_one_number",
    "claims_table_rows",
    "evaluate",
    "format_value",
    "get_claim",
    "normalize_whitespace",
    "register_claim",
    "ARCHITECTURE_TOPICS",
    "TRAINING_TOPICS",
    "RESULTS_TOPICS",
    "TIMELINE",
    "architecture_timeline",
    "INITIALIZATION_RUNS",
    "SATURATION",
    "ActivationStatistics",
    "InitialLoss",
    "initial_loss",
    "initialization_studies",
    "initialization_study",
    "initialization_table",
    "plot_initialization_study",
    "write_claim_figures",
    "MixupBlends",
    "mixup_blends",
    "tta_forward_passes",
    "LabelSmoothingExample",
    "label_smoothing_example",
    "smoothed_targets",
    "BatchNormExample",
    "BatchOfOne",
    "DropoutExample",
    "batch_of_one",
    "batchnorm_example",
    "dropout_example",
    "dropout_units",
    "residual_gradient_paths",
]
