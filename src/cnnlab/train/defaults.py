"""A training recipe derived from the model and the data, for ``cnnlab train --data D`` without ``--recipe``.

Lecture 7's data preprocessing and augmentation, chosen the way torchvision's and timm's
reference scripts choose them for the kind of images at hand:

- **photos** (images larger than 64 pixels): stored at ``crop / 0.875`` (256 for a 224 crop;
  the shorter side resized, then the centre square),
  trained on random-resized crops of the model's declared input size with flips, evaluated
  on the centre crop after a resize (the ImageNet protocol); normalised with the model's
  declared statistics when it has them (ImageNet's, for the torchvision-compatible models,
  whose pretrained weights expect them);
- **small images** (CIFAR-like, up to 64 pixels): kept at their size, padded-and-cropped by
  an eighth of their side and flipped (colour images only: a mirrored digit or letter is
  another symbol), normalised with the training split's own statistics.

Without ``--model`` the model follows the data: LeNet-5 for small greyscale images,
ResNet-20 for small colour ones, ResNet-18 for photos. The optimiser is SGD with momentum
0.9 and a cosine schedule, the learning rate 0.1 scaled by batch / 256 for photos (the
linear scaling rule) and 0.1 for small images. Every choice comes with its reason, which
``cnnlab train`` prints before it starts.
"""
from __future__ import annotations

from ..data import peek_source
from ..errors import CnnlabError
from ..registry import model_info
from ..runs import TrainConfig

__all__ = ["derive_config", "SMALL_IMAGE_LIMIT"]

#: Images up to this many pixels on their longer side get the CIFAR-style defaults.
SMALL_IMAGE_LIMIT = 64
CROP_FRACTION = 0.875  # the ImageNet evaluation protocol: resize to crop / 0.875, take the centre crop


def _default_model(channels: int, longer_side: int) -> tuple[str, str]:
    if longer_side > SMALL_IMAGE_LIMIT:
        return "resnet18", "photos: ResNet-18, the smallest ImageNet ResNet"
    if channels == 1 and longer_side <= 28:
        return "lenet5", "small greyscale images: LeNet-5"
    return "resnet20", "small colour images: ResNet-20, the ResNet paper's CIFAR-10 net"


def derive_config(overrides: dict) -> tuple[TrainConfig, list[str]]:
    """A config for ``overrides["data"]`` (and ``overrides["model"]`` if given), with the
    reasons for each choice; every key in ``overrides`` wins over the derived value."""
    if "data" not in overrides:
        raise CnnlabError("a recipe is derived from the data: give --data")
    peek = peek_source(overrides["data"])
    side = max(peek.height, peek.width)
    shape = f"{peek.height}x{peek.width}" + (" (median of the first " + str(peek.sampled) + ", sizes vary)"
                                              if peek.sizes_vary else "")
    reasons = [f"data {peek.name}: {peek.channels}-channel images of {shape}"]
    if "model" in overrides:
        model = overrides["model"]
    else:
        model, why = _default_model(peek.channels, side)
        reasons.append(f"model {model}: {why}")
    info = model_info(model)  # raises the clear unknown-model error
    values: dict = {"recipe": "auto", "model": model, "data": overrides["data"],
                    "description": f"derived from the model ({model}) and the data ({peek.name})",
                    "optimizer": "sgd", "momentum": 0.9, "schedule": "cosine"}
    if side > SMALL_IMAGE_LIMIT:
        crop = info.input_size[-1]
        store = round(crop / CROP_FRACTION)
        origin = f"{model}'s declared input size"
        batch = overrides.get("batch_size", 64)
        values.update(image_size=store, augment=f"random_resized_crop({crop}), flip", batch_size=64,
                      lr=round(0.1 * batch / 256, 6), weight_decay=1e-4)
        reasons.append(f"photos (longer side {side} > {SMALL_IMAGE_LIMIT} px): stored at {store}x{store} (shorter "
                       f"side resized, centre crop), trained "
                       f"on random-resized {crop}x{crop} crops ({origin}) with flips, evaluated on the centre "
                       f"{crop}x{crop} crop of the {store}x{store} image")
        reasons.append(f"SGD, momentum 0.9, cosine schedule, batch {batch}, lr {values['lr']:g} (0.1 x batch / "
                       "256, the linear scaling rule), weight decay 1e-4")
        if info.mean is not None:
            values.update(mean=list(info.mean), std=list(info.std))
            reasons.append(f"normalised with {model}'s declared statistics (ImageNet's: what its pretrained "
                           "weights expect)")
        else:
            reasons.append("normalised with the training split's own statistics")
    else:
        pad = max(1, side // 8)
        flip = peek.channels == 3
        values.update(augment=("flip, " if flip else "") + f"crop(pad={pad})", batch_size=128, lr=0.1,
                      weight_decay=5e-4)
        reasons.append(f"small images (longer side {side} <= {SMALL_IMAGE_LIMIT} px): kept at their size, "
                       f"{pad}-pixel pad-and-crop" + (" and flips (CIFAR-style)" if flip else
                                                      ", no flips (greyscale: a mirrored digit is another symbol)"))
        reasons.append("SGD, momentum 0.9, cosine schedule, batch 128, lr 0.1, weight decay 5e-4; normalised "
                       "with the training split's own statistics")
        declared = info.input_size[-2:]
        if tuple(declared) != (peek.height, peek.width):
            reasons.append(f"{model} declares {declared[0]}x{declared[1]} input; it runs at "
                           f"{peek.height}x{peek.width} here")
    rest = {k: v for k, v in overrides.items() if k not in ("model", "data")}
    config = TrainConfig().updated(values, where="derived recipe").updated(rest, where="overrides")
    if rest:
        reasons.append("then your settings: " + ", ".join(f"{k}={v}" for k, v in rest.items()))
    return config, reasons
