"""Evaluation: test-time augmentation (flip, 10-crop, ResNet multi-scale)."""
from .tta import RESNET_TEST_SCALES, TTA_MODES, resize_shorter_side, ten_crop, tta_predict

__all__ = ["RESNET_TEST_SCALES", "TTA_MODES", "resize_shorter_side", "ten_crop", "tta_predict"]
