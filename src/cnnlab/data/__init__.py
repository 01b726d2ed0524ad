"""Data sets, per-channel statistics, augmentation and loaders (lectures 6-7: data preprocessing).

``load_dataset(spec, split)`` reads CIFAR-10/100 (python release), MNIST/Fashion-MNIST
(IDX), scikit-learn's digits, and image-folder trees in folders or .tar/.tar.gz/.zip
archives; data sets that fit in memory are decoded once into a uint8 tensor and cached.
"""
from ..paths import default_cache_dir
from .datasets import (DATASET_NAMES, ArrayDataset, SourcePeek, StreamingImageDataset, default_data_root,
                       list_datasets, load_dataset, peek_source)
from .policy import DataWarning
from .splits import stratified_split
from .stats import channel_stats, describe_dataset, init_sample

__all__ = [
    "ArrayDataset",
    "DATASET_NAMES",
    "DataWarning",
    "StreamingImageDataset",
    "channel_stats",
    "default_cache_dir",
    "default_data_root",
    "describe_dataset",
    "init_sample",
    "list_datasets",
    "load_dataset",
    "peek_source",
    "SourcePeek",
    "stratified_split",
]

# Batched augmentation, the in-memory loader and the per-sample v2 twins (augment/, loader.py).
from .augment import (AUGMENTATION_NAMES, AugmentPipeline, ColorJitter, CutMix, Cutout, HorizontalFlip,
                      LabelSmoothing, Mixup, RandomCrop, RandomResizedCrop, RandomScaleCrop, parse_augment,
                      smooth_labels, v2_transform)
from .loader import InMemoryLoader, StreamingLoader, build_loader

__all__ += [
    "AUGMENTATION_NAMES",
    "AugmentPipeline",
    "ColorJitter",
    "CutMix",
    "Cutout",
    "HorizontalFlip",
    "InMemoryLoader",
    "StreamingLoader",
    "build_loader",
    "LabelSmoothing",
    "Mixup",
    "RandomCrop",
    "RandomResizedCrop",
    "RandomScaleCrop",
    "parse_augment",
    "smooth_labels",
    "v2_transform",
]
