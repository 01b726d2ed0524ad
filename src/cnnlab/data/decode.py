"""Image decoding for every data set format: bytes in, ``3 x H x W`` uint8 RGB tensor out.

JPEG files (nearly all real data sets) go through torchvision's libjpeg-turbo decoder in
batches, which is about four times faster than PIL per image; everything else, and any
JPEG that decoder refuses, goes through PIL, whose error messages name the problem.

Colour handling (the same for both decoders): grayscale, bilevel, palette, CMYK, YCbCr and
LAB images are converted to RGB; an alpha channel is dropped (the colour values are kept,
as torchvision's ``ImageReadMode.RGB`` does); 16-bit grayscale is scaled to 8 bits; of an
animated or multi-page file only the first frame is read. EXIF orientation is ignored,
as in torchvision's ``ImageFolder``.
"""
from __future__ import annotations

import functools
import io
import struct
import warnings
from typing import Sequence

import numpy as np
import torch

JPEG_MAGIC = b"\xff\xd8\xff"

# Decoding in batches amortises the per-call overhead of the C++ decoder.
JPEG_BATCH = 512


class BadImage(Exception):
    """Raised (internally) for one file that cannot be decoded; the message says why."""


def _torchvision_jpeg():
    """torchvision's JPEG decoder, or None where this torchvision has none."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchvision.io import ImageReadMode, decode_jpeg
    except Exception:  # pragma: no cover - torchvision without image support
        return None
    return decode_jpeg, ImageReadMode.RGB


_TV_JPEG = _torchvision_jpeg()


def _pil_image_module():
    from PIL import Image

    return Image


@functools.lru_cache(maxsize=1)
def image_extensions() -> frozenset[str]:
    """Lower-case file extensions (with the dot) that PIL can open: ``.jpg``, ``.png``, ``.webp``, ..."""
    Image = _pil_image_module()
    Image.init()
    return frozenset(ext.lower() for ext in Image.registered_extensions())


def decode_with_pil(data: bytes) -> torch.Tensor:
    """Decode any PIL-readable image to a ``3 x H x W`` uint8 RGB tensor, or raise :class:`BadImage`."""
    Image = _pil_image_module()
    try:
        with warnings.catch_warnings():
            # PIL warns about palette images with transparency; we convert them on purpose.
            warnings.simplefilter("ignore", UserWarning)
            image = Image.open(io.BytesIO(data))
            image.load()
            array = _to_rgb_array(image, Image)
    except Image.DecompressionBombError as error:
        raise BadImage(f"image too large to decode safely ({error})") from None
    except BadImage:
        raise
    except Image.UnidentifiedImageError:
        raise BadImage("not an image (PIL cannot identify the format)") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as error:
        raise BadImage(f"corrupt or truncated image ({error})") from None
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def _to_rgb_array(image, Image) -> np.ndarray:
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image)
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grayscale (PNG, TIFF): keep the top 8 bits of the 0-65535 range.
        values = np.asarray(image).astype(np.int64)
        grey = np.clip(values // 257, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        grey = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("P", "PA"):
        image = image.convert("RGBA")
    return np.asarray(image.convert("RGB"))


def decode_image(data: bytes) -> torch.Tensor:
    """Decode one image (any format PIL reads) to ``3 x H x W`` uint8 RGB, or raise :class:`BadImage`."""
    if not data:
        raise BadImage("empty file")
    if data.startswith(JPEG_MAGIC) and _TV_JPEG is not None:
        decode_jpeg, rgb = _TV_JPEG
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=rgb)
        except Exception:
            pass  # PIL decodes what libjpeg's strict mode refuses, or names the problem
    return decode_with_pil(data)


def decode_images(items: Sequence[bytes]) -> list[torch.Tensor | BadImage]:
    """Decode many images; JPEGs in batches. Each result is a tensor or the :class:`BadImage` for that file."""
    results: list[torch.Tensor | BadImage | None] = [None] * len(items)
    jpeg_positions = []
    for position, data in enumerate(items):
        if data.startswith(JPEG_MAGIC) and _TV_JPEG is not None:
            jpeg_positions.append(position)
        else:
            results[position] = _decode_or_error(data)
    if jpeg_positions:
        decode_jpeg, rgb = _TV_JPEG
        for start in range(0, len(jpeg_positions), JPEG_BATCH):
            chunk = jpeg_positions[start:start + JPEG_BATCH]
            tensors = [torch.frombuffer(bytearray(items[p]), dtype=torch.uint8) for p in chunk]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    decoded = decode_jpeg(tensors, mode=rgb)
            except Exception:
                # One bad file fails the whole batch: decode this batch one by one to find it.
                decoded = [_decode_or_error(items[p]) for p in chunk]
            for p, image in zip(chunk, decoded):
                results[p] = image
    return results  # type: ignore[return-value]


def _decode_or_error(data: bytes) -> torch.Tensor | BadImage:
    try:
        return decode_image(data)
    except BadImage as error:
        return error


def target_size(image_size) -> tuple[int, int] | None:
    """Normalise ``image_size`` (``None``, ``32``, ``(32, 32)``, ``"32"`` or ``"32x48"``) to ``(height, width)``."""
    from ..errors import CnnlabError

    if image_size is None:
        return None
    if isinstance(image_size, str):
        parts = image_size.lower().replace(",", "x").split("x")
        try:
            values = tuple(int(p) for p in parts)
        except ValueError:
            raise CnnlabError(f"image_size must look like 32 or 32x48 (height x width), got {image_size!r}") from None
    elif isinstance(image_size, int):
        values = (image_size,)
    else:
        values = tuple(image_size)
    if len(values) == 1:
        values = (values[0], values[0])
    if len(values) != 2 or not all(isinstance(v, int) and v >= 1 for v in values):
        raise CnnlabError(f"image_size must be a positive int or (height, width), got {image_size!r}")
    return values  # type: ignore[return-value]


RESIZE_MODES = ("crop", "stretch")


def resize_images(images: torch.Tensor, size: tuple[int, int], mode: str = "crop") -> torch.Tensor:
    """Resize a ``C x H x W`` or ``N x C x H x W`` uint8 batch to ``size`` = (height, width).

    ``mode="crop"`` (default, the usual evaluation preprocessing of ImageNet models) scales
    the image so that it covers the target (for a square target: the shorter side becomes
    the target size), keeping its aspect ratio, then takes the centre crop. ``"stretch"``
    resizes straight to the target and distorts the aspect ratio. Bilinear with
    antialiasing; images already at the target size are returned unchanged.
    """
    from torchvision.transforms.v2 import functional as F

    height, width = images.shape[-2:]
    if (height, width) == tuple(size):
        return images
    if mode == "stretch":
        return F.resize(images, list(size), antialias=True)
    if mode != "crop":
        from ..errors import CnnlabError

        raise CnnlabError(f"resize must be one of {RESIZE_MODES}, got {mode!r}")
    scale = max(size[0] / height, size[1] / width)
    scaled = (max(size[0], round(height * scale)), max(size[1], round(width * scale)))
    return F.center_crop(F.resize(images, list(scaled), antialias=True), list(size))
