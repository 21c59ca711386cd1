"""Prepare a scan for voxel FE: crop a cube, segment (Otsu, a threshold, or already binary),
coarsen.

Order: crop the grey image, segment the crop (so Otsu's threshold sees the region analysed),
then coarsen the binary image by an integer factor (a coarse voxel is solid when at least half
of its fine voxels are).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metainv.errors import MetainvError

#: Segmentation modes besides a number.
SEGMENTATIONS = ("otsu", "binary")


@dataclass(frozen=True)
class Segmented:
    """A segmented cube: ``solid`` (n, n, n) bool; ``threshold`` the grey value at or above
    which a voxel is solid (``None`` for an already binary image); ``method`` ``"otsu"``,
    ``"threshold"`` or ``"binary"``."""

    solid: np.ndarray
    threshold: float | None
    method: str


def crop_cube(image: np.ndarray, crop: Sequence[int] | None) -> np.ndarray:
    """The cube ``image[x:x+n, y:y+n, z:z+n]`` for ``crop = (x, y, z, n)``; ``None`` keeps the
    whole image, which must then be a cube."""
    if crop is None:
        if len(set(image.shape)) != 1:
            raise MetainvError(
                f"the scan is {'x'.join(map(str, image.shape))} voxels, not a cube: choose a "
                "cubic region with --crop X,Y,Z,N"
            )
        return image
    if len(crop) != 4 or any(int(c) != c for c in crop):
        raise MetainvError(f"--crop must be 4 whole numbers X,Y,Z,N, got {list(crop)}")
    x, y, z, n = (int(c) for c in crop)
    if n < 1 or min(x, y, z) < 0:
        raise MetainvError(f"--crop needs X,Y,Z >= 0 and N >= 1, got {x},{y},{z},{n}")
    if x + n > image.shape[0] or y + n > image.shape[1] or z + n > image.shape[2]:
        raise MetainvError(
            f"--crop {x},{y},{z},{n} reaches outside the scan of shape "
            f"{'x'.join(map(str, image.shape))}"
        )
    return image[x : x + n, y : y + n, z : z + n]


def crop_box(image: np.ndarray, box: Sequence[int] | None) -> np.ndarray:
    """The box ``image[x:x+nx, y:y+ny, z:z+nz]`` for ``box = (x, y, z, nx, ny, nz)``, or the
    cube of :func:`crop_cube` for four numbers; ``None`` keeps the whole image."""
    if box is None:
        return image
    if len(box) == 4:
        return crop_cube(image, box)
    if len(box) != 6 or any(int(c) != c for c in box):
        raise MetainvError(f"--crop must be X,Y,Z,N or X,Y,Z,NX,NY,NZ, got {list(box)}")
    origin, size = [int(c) for c in box[:3]], [int(c) for c in box[3:]]
    if min(origin) < 0 or min(size) < 1:
        raise MetainvError(f"--crop needs X,Y,Z >= 0 and sizes >= 1, got {list(box)}")
    if any(o + s > n for o, s, n in zip(origin, size, image.shape, strict=True)):
        raise MetainvError(
            f"--crop {','.join(map(str, box))} reaches outside the scan of shape "
            f"{'x'.join(map(str, image.shape))}"
        )
    return image[tuple(slice(o, o + s) for o, s in zip(origin, size, strict=True))]


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold (scikit-image) of the grey values; a voxel ``>=`` it is solid."""
    from skimage.filters import threshold_otsu

    finite = np.asarray(values, dtype=np.float64)
    if np.ptp(finite) == 0:
        raise MetainvError(
            "the image has a single grey value: Otsu's method cannot separate bone from "
            "marrow (give --threshold, or --segment binary for a 0/1 image)"
        )
    # skimage returns t with foreground > t; the next representable value makes it ">="
    return float(np.nextafter(threshold_otsu(finite), np.inf))


def segment(image: np.ndarray, segmentation: str | float = "otsu") -> Segmented:
    """Binary solid of a grey image: ``"otsu"``, a number (solid: value ``>=`` it) or
    ``"binary"`` (the image holds only 0 and 1, or is boolean)."""
    values = np.asarray(image)
    if not np.all(np.isfinite(values)):
        raise MetainvError("the image holds NaN or infinite values")
    if isinstance(segmentation, str):
        mode = segmentation.strip().lower()
        if mode == "binary":
            if values.dtype != bool and not np.all((values == 0) | (values == 1)):
                raise MetainvError(
                    "--segment binary needs an image of 0 and 1 only; use otsu or a threshold"
                )
            return Segmented(values.astype(bool), None, "binary")
        if mode == "otsu":
            t = otsu_threshold(values)
            return Segmented(values >= t, t, "otsu")
        try:
            segmentation = float(mode)
        except ValueError:
            raise MetainvError(
                f"unknown segmentation {segmentation!r} (expected otsu, binary or a number)"
            ) from None
    t = float(segmentation)
    return Segmented(values >= t, t, "threshold")


def coarsen(solid: np.ndarray, factor: int) -> np.ndarray:
    """Coarsen a binary box by ``factor`` per axis (majority: solid when at least half of
    the ``factor^3`` fine voxels are); the edge must be a multiple of ``factor``."""
    if int(factor) != factor or factor < 1:
        raise MetainvError(f"--coarsen must be a whole number >= 1, got {factor}")
    factor = int(factor)
    if factor == 1:
        return solid
    if any(n % factor for n in solid.shape):
        raise MetainvError(
            f"--coarsen {factor} needs edges that are multiples of {factor}, got "
            f"{'x'.join(map(str, solid.shape))} voxels (adjust --crop)"
        )
    a, b, c = (n // factor for n in solid.shape)
    blocks = solid.reshape(a, factor, b, factor, c, factor).mean(axis=(1, 3, 5))
    return blocks >= 0.5
