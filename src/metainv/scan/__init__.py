"""From a micro-CT scan to stiffness: read 3-D images, segment, homogenize by voxel FE under
kinematic, periodic and static boundary conditions, bone morphometry (BV/TV, connectivity, MIL
fabric), stiffness maps over windows of a larger scan, and a deterministic demo scan.

Typical use::

    from metainv.scan import homogenize_scan_file

    document, result = homogenize_scan_file("bone.npy", tissue_modulus="10GPa",
                                            boundaries=("affine", "periodic", "static"))
    result.C            # (6, 6) in GPa, affine (kinematic) boundary conditions

:mod:`metainv.scan.implant` (designs per map window and the graded part) builds on
:mod:`metainv.api` and is imported on its own.
"""

from metainv.scan.homogenize import (
    PreparedScan,
    ScanHomogenization,
    check_boundaries,
    estimate_homogenization,
    homogenize_scan,
    homogenize_scan_file,
    prepare_scan,
    scan_document,
)
from metainv.scan.io import FORMATS, Image, read_image
from metainv.scan.maps import stiffness_map, window_origins
from metainv.scan.morphometry import (
    Fabric,
    bv_tv,
    fabric_tensor,
    largest_body_share,
    mean_intercept_lengths,
)
from metainv.scan.segment import coarsen, crop_cube, otsu_threshold, segment

__all__ = [
    "FORMATS",
    "Fabric",
    "Image",
    "PreparedScan",
    "ScanHomogenization",
    "bv_tv",
    "check_boundaries",
    "coarsen",
    "crop_cube",
    "estimate_homogenization",
    "fabric_tensor",
    "homogenize_scan",
    "homogenize_scan_file",
    "largest_body_share",
    "mean_intercept_lengths",
    "otsu_threshold",
    "prepare_scan",
    "read_image",
    "scan_document",
    "segment",
    "stiffness_map",
    "window_origins",
]
