"""Evaluation: the one evaluation loop, a saved run read back, evaluated, plotted and used to predict.

- :mod:`.loop`: :func:`evaluate` (loss, top-1/top-5, per image on request) and :func:`predict_logits`;
  the trainer's validation and test evaluations run it too.
- :mod:`.run`: :func:`load_run` rebuilds a run's model from its folder.
- :mod:`.report`: :func:`evaluate_run` and :func:`write_eval`, what ``cnnlab eval`` runs.
- :mod:`.plots`: the confusion matrix and the highest-loss images.
- :mod:`.predict`: :func:`predict_images`, what ``cnnlab predict`` runs.
- :mod:`.tta`: test-time augmentation (flip, 10-crop, ResNet multi-scale).
"""
from .report import EVAL_SPLITS, evaluate_run, write_eval
from .loop import evaluate, predict_logits, top_k_correct
from .plots import plot_confusion, plot_top_losses
from .predict import predict_images
from .run import LoadedRun, load_run, load_split
from .tta import RESNET_TEST_SCALES, TTA_MODES, resize_shorter_side, ten_crop, translate_views, tta_predict

__all__ = ["EVAL_SPLITS", "LoadedRun", "RESNET_TEST_SCALES", "TTA_MODES", "evaluate", "evaluate_run", "load_run",
           "load_split", "plot_confusion", "plot_top_losses", "predict_images", "predict_logits", "resize_shorter_side",
           "ten_crop", "top_k_correct", "translate_views", "tta_predict", "write_eval"]
