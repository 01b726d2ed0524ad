"""Evaluation: test-time augmentation (flip, 10-crop, ResNet multi-scale)."""
from .tta import RESNET_TEST_SCALES, TTA_MODES, resize_shorter_side, ten_crop, tta_predict

__all__ = ["RESNET_TEST_SCALES", "TTA_MODES", "resize_shorter_side", "ten_crop", "tta_predict"]

# Evaluating and predicting with a trained run (`cnnlab eval`, `cnnlab predict`).
from .evaluate import LoadedRun, evaluate_run, load_run, plot_confusion, predict_images, write_eval

__all__ += ["LoadedRun", "evaluate_run", "load_run", "plot_confusion", "predict_images", "write_eval"]
