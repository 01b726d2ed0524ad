"""The interface every cnnlab model shares (timm's): features, head, classifier access."""
from __future__ import annotations

import torch
from torch import nn


class ClassifierModel(nn.Module):
    """Base class of every model in the zoo.

    A subclass implements :meth:`forward_features` (image -> final feature map or
    vector) and :meth:`forward_head` (features -> logits), and sets
    ``classifier_name``, the dotted path of its final ``nn.Linear`` (or 1x1
    ``nn.Conv2d``), so that :meth:`get_classifier` and :meth:`reset_classifier` work
    without per-model code. ``num_classes`` holds the current number of outputs.
    """

    classifier_name: str = "fc"
    num_classes: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The final classification layer."""
        return self.get_submodule(self.classifier_name)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final layer by a freshly initialised one with ``num_classes`` outputs.

        ``num_classes=0`` removes it (``nn.Identity``), turning the model into a feature
        extractor: the usual first step of transfer learning.
        """
        self._replace_layer(self.classifier_name, num_classes)
        self.num_classes = num_classes

    def _replace_layer(self, path: str, num_classes: int) -> None:
        old = self.get_submodule(path)
        if num_classes == 0:
            new: nn.Module = nn.Identity()
        elif isinstance(old, nn.Conv2d):
            new = nn.Conv2d(old.in_channels, num_classes, old.kernel_size, old.stride, old.padding)
        elif isinstance(old, nn.Linear):
            new = nn.Linear(old.in_features, num_classes)
        else:
            raise TypeError(f"cannot resize classifier of type {type(old).__name__}")
        new = new.to(device=_device_of(self))
        parent_path, _, child = path.rpartition(".")
        parent = self.get_submodule(parent_path) if parent_path else self
        setattr(parent, child, new)


def _device_of(module: nn.Module) -> torch.device:
    for parameter in module.parameters():
        return parameter.device
    return torch.device("cpu")
