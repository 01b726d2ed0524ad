"""The real images the explorer shows and feeds its networks: the digits, CIFAR-10, a folder.

The digits ship with scikit-learn, so there is always a source; CIFAR-10 (the official
python archive) is used where the data root has it (``$CNNLAB_DATA``, the cache's
``datasets`` folder, or ``../shared/data`` beside the project); ``--data PATH`` adds any
data set ``load_dataset`` reads (a folder or archive of an image-folder tree, CIFAR,
MNIST). Each source is decoded once and kept; a folder is streamed, so only the images
shown are decoded.
"""
from __future__ import annotations

import base64
import io
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data import default_data_root, load_dataset
from ..data.formats.cifar import CIFAR10
from ..errors import CnnlabError

# Images of a folder are brought to one size (shorter side, then centre crop) so a batch of
# them can be augmented together; 64 pixels keeps crops and cut-outs visible and cheap.
FOLDER_IMAGE_SIZE = 64
SHARED_DATA = Path("..") / "shared" / "data"


@dataclass
class ImageSource:
    """One data set the panels can draw images from: a uint8 batch or a streamed data set."""

    name: str
    description: str
    dataset: object
    classes: list[str]

    def __len__(self) -> int:
        return len(self.dataset)

    def pick(self, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """``count`` images chosen by ``seed`` (uint8 N x C x H x W), their labels and indices."""
        generator = torch.Generator().manual_seed(seed)
        total = len(self.dataset)
        order = torch.randperm(total, generator=generator)[:min(count, total)].tolist()
        labels = self.dataset.labels[order]
        if hasattr(self.dataset, "images"):
            return self.dataset.images[order], labels, order
        return torch.stack([self.dataset.load_image(i) for i in order]), labels, order


def cifar_root() -> Path | None:
    """The data root that holds the CIFAR-10 python release, or ``None``."""
    for root in (default_data_root(), SHARED_DATA):
        for candidate in (root / CIFAR10.archive, root / CIFAR10.folder, root / "cifar10" / CIFAR10.archive,
                          root / "cifar10" / CIFAR10.folder):
            if candidate.exists():
                return root
    return None


class ImageSources:
    """The sources of one explorer: names to lazily loaded :class:`ImageSource` objects."""

    def __init__(self, data: str | Path | None = None):
        self.data = None if data is None else Path(data).expanduser()
        if self.data is not None and not self.data.exists():
            raise CnnlabError(f"--data {str(data)!r} does not exist; give a folder or archive of images")
        self._loaded: dict[str, ImageSource] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """The sources available here, the richest first: folder, cifar10, digits."""
        names = ["folder"] if self.data is not None else []
        if cifar_root() is not None:
            names.append("cifar10")
        return names + ["digits"]

    def default(self) -> str:
        return self.names()[0]

    def describe(self) -> list[dict]:
        labels = {"folder": f"--data {self.data.name if self.data else ''}", "cifar10": "CIFAR-10 (test split)",
                  "digits": "scikit-learn digits (8x8, grey)"}
        return [{"name": name, "label": labels[name]} for name in self.names()]

    def get(self, name: str) -> ImageSource:
        if name not in self.names():
            raise CnnlabError(f"no image source {name!r} here; available: {', '.join(self.names())}")
        with self._lock:  # two panels asking at once decode the data set once
            if name not in self._loaded:
                self._loaded[name] = self._load(name)
            return self._loaded[name]

    def _load(self, name: str) -> ImageSource:
        if name == "digits":
            dataset = load_dataset("digits", "test", val_fraction=0)
            return ImageSource("digits", "scikit-learn digits, test split (8x8 grey)", dataset, dataset.classes)
        if name == "cifar10":
            dataset = load_dataset("cifar10", "test", root=cifar_root(), val_fraction=0)
            return ImageSource("cifar10", "CIFAR-10, test split (32x32)", dataset, dataset.classes)
        dataset = load_dataset(self.data, "train", val_fraction=0, image_size=FOLDER_IMAGE_SIZE, in_memory=False)
        if len(dataset) == 0:
            raise CnnlabError(f"--data {str(self.data)!r} holds no images")
        return ImageSource("folder", f"{dataset.name} ({len(dataset)} images at {FOLDER_IMAGE_SIZE}x"
                           f"{FOLDER_IMAGE_SIZE})", dataset, dataset.classes)


def to_network_input(images: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """A uint8 batch as float in [0, 1] with ``channels`` channels at ``size`` x ``size``
    (grey repeated to RGB, RGB averaged to grey, bilinear resize), for a network's first layer."""
    x = images.float() / 255
    if x.shape[1] != channels:
        x = x.mean(dim=1, keepdim=True).expand(-1, channels, -1, -1) if channels in (1, 3) else x
        if x.shape[1] != channels:
            raise CnnlabError(f"cannot feed {images.shape[1]}-channel images to a {channels}-channel network")
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.contiguous()


def png_data_uri(image: torch.Tensor) -> str:
    """One ``C x H x W`` uint8 image as a ``data:image/png`` URI (the page shows it pixel for pixel)."""
    from PIL import Image

    pixels = image.detach().cpu()
    if pixels.dtype != torch.uint8:
        pixels = (pixels.float() * 255).round().clamp(0, 255).to(torch.uint8)
    array = pixels[0].numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).contiguous().numpy()
    buffer = io.BytesIO()
    Image.fromarray(array, "L" if pixels.shape[0] == 1 else "RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
