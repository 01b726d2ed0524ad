"""The interface every cnnlab model shares (timm's): features, head, classifier access; the AlexNet/VGG head."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import CnnlabError


class ClassifierModel(nn.Module):
    """Base class of every model in the zoo.

    A model is :meth:`forward_features` (image -> final feature map or vector) followed
    by :meth:`forward_head` (features -> logits). It sets ``classifier_name``, the dotted
    path of its final ``nn.Linear`` (or 1x1 ``nn.Conv2d``), so that
    :meth:`get_classifier` and :meth:`reset_classifier` work without per-model code.
    ``num_classes`` holds the current number of outputs.

    The defaults fit most of the zoo: the features are ``self.features`` (torchvision's
    name for a convolutional body) and the head is the one Network in Network and
    GoogLeNet made standard, global average pooling (``self.avgpool``) and one
    classifier. A model overrides them where its body or head differs.
    """

    classifier_name: str = "fc"
    num_classes: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``avgpool``, flatten and the classifier; ``pre_logits=True`` returns the pooled features.

        The classifier runs as the top-level child that holds it: where ``classifier_name``
        points into an ``nn.Sequential`` (torchvision's ``classifier = Sequential(Dropout,
        Linear)`` with ``classifier_name = "classifier.1"``), the layers before it, the
        dropout, run too.
        """
        x = torch.flatten(self.avgpool(x), 1)
        if pre_logits:
            return x
        head = self.get_submodule(self.classifier_name.split(".")[0])
        return head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def _check_sizes(self, num_classes: int, in_chans: int) -> None:
        # For a model class built directly; create_model checks both before building.
        name = type(self).__name__
        if num_classes < 1:
            raise CnnlabError(f"{name}: num_classes must be at least 1, got {num_classes}")
        if in_chans < 1:
            raise CnnlabError(f"{name}: in_chans must be at least 1, got {in_chans}")

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


class FCHeadModel(ClassifierModel):
    """A convolutional body ``features``, ``avgpool`` to a fixed grid and a stack of FC layers ``classifier``.

    The layout of AlexNet and of VGG, which kept AlexNet's FC6-FC7-FC8 head unchanged
    (VGG paper, section 2.1). ``pre_logits=True`` returns the output of FC7, the
    4096-dimensional "fc7 features" of that era's transfer learning.
    """

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.classifier[:-1](torch.flatten(self.avgpool(x), 1))
        return x if pre_logits else self.classifier[-1](x)


def fc_head(in_features: int, num_classes: int, dropout: float, dropout_first: bool = False) -> nn.Sequential:
    """FC6-FC7-FC8 (4096, 4096, ``num_classes``) with ReLU, and dropout in front of FC6/FC7 or after them.

    AlexNet's paper (and VGG) put dropout after the ReLUs of FC6 and FC7; torchvision's
    AlexNet moves it in front of FC6 and FC7 (``dropout_first``). The final ``Linear`` is
    index 6 either way.
    """
    if dropout_first:
        layers = [nn.Dropout(dropout), nn.Linear(in_features, 4096), nn.ReLU(inplace=True),
                  nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True)]
    else:
        layers = [nn.Linear(in_features, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
                  nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout)]
    return nn.Sequential(*layers, nn.Linear(4096, num_classes))


def _device_of(module: nn.Module) -> torch.device:
    for parameter in module.parameters():
        return parameter.device
    return torch.device("cpu")
