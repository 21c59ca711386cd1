"""Read 3-D images (micro-CT scans) into numpy arrays, axis 0 along x1.

Formats (by suffix):

* ``.npy``: a 3-D numpy array (``allow_pickle=False``);
* ``.tif`` / ``.tiff``: a multi-page TIFF (pages are the slices along axis 0), or a folder of
  single-page TIFF slices read in name order (tifffile);
* ``.mat``: MATLAB v5 (scipy.io) or v7.3 (HDF5, h5py; MATLAB stores arrays column-major, so
  the HDF5 dataset is transposed back to MATLAB's index order); ``key`` names the variable,
  else the only 3-D array in the file;
* ``.nii`` / ``.nii.gz``: NIfTI (nibabel), the voxel size from the header (mm);
* ``.raw``: headerless binary with a JSON sidecar (``scan.raw`` -> ``scan.json``) holding
  ``{"shape": [nx, ny, nz], "dtype": "uint8", "order": "C", "voxel_size": 0.02}``
  (``order`` ``"C"``: the last axis varies fastest, ``"F"``: the first; ``voxel_size``
  optional).

:func:`read_image` returns the array and the voxel size the file records (``None`` if it
records none). Every problem raises :class:`metainv.errors.MetainvError` with a one-line message.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metainv.errors import MetainvError
from metainv.files import read_json

#: Suffixes read, in the order the error messages list them.
FORMATS = (".npy", ".tif", ".tiff", ".mat", ".nii", ".nii.gz", ".raw")
#: Keys of the JSON header of a ``.raw`` image.
RAW_KEYS = ("shape", "dtype", "order", "voxel_size")


@dataclass(frozen=True)
class Image:
    """A 3-D image as read: ``values`` (nx, ny, nz), any numeric or boolean dtype, axis 0
    along x1; ``voxel_size`` the edge of a voxel recorded by the file (its unit, e.g. mm for
    NIfTI), else ``None``; ``source`` the path read."""

    values: np.ndarray
    voxel_size: float | None
    source: str


def image_format(path: str | Path) -> str:
    """The format suffix of ``path`` (``.nii.gz`` counts as one), lower case."""
    name = Path(path).name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return Path(name).suffix


def read_image(path: str | Path, key: str | None = None) -> Image:
    """Read a 3-D image of any supported format (module docstring).

    Args:
        path: the image file (or a folder of TIFF slices).
        key: variable name in a ``.mat`` file.

    Raises:
        MetainvError: a missing file, an unknown format, a file that is not a 3-D numeric
            image, or a missing optional reader package.
    """
    path = Path(path)
    if not path.exists():
        raise MetainvError(f"scan not found: {path}")
    if path.is_dir():
        values, size = _read_tiff_folder(path)
    else:
        fmt = image_format(path)
        readers = {
            ".npy": _read_npy,
            ".tif": _read_tiff,
            ".tiff": _read_tiff,
            ".mat": lambda p: _read_mat(p, key),
            ".nii": _read_nifti,
            ".nii.gz": _read_nifti,
            ".raw": _read_raw,
        }
        if fmt not in readers:
            raise MetainvError(
                f"{path}: unknown image format {fmt or '(no suffix)'!r} "
                f"(expected one of: {', '.join(FORMATS)}, or a folder of TIFF slices)"
            )
        values, size = readers[fmt](path)
    values = np.asarray(values)
    values = np.squeeze(values) if values.ndim > 3 else values
    if values.ndim != 3:
        raise MetainvError(f"{path}: expected a 3-D image, got {values.ndim} dimensions")
    if values.dtype != bool and not np.issubdtype(values.dtype, np.number):
        raise MetainvError(f"{path}: expected numeric voxels, got dtype {values.dtype}")
    if np.issubdtype(values.dtype, np.complexfloating):
        raise MetainvError(f"{path}: expected real voxels, got complex dtype {values.dtype}")
    if min(values.shape) < 1:
        raise MetainvError(f"{path}: the image is empty (shape {values.shape})")
    return Image(values=np.ascontiguousarray(values), voxel_size=size, source=str(path))


def _optional(module: str, fmt: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MetainvError(
            f"reading {fmt} images needs the package {module} (pip install 'metainv[scan]')"
        ) from None


def _read_npy(path: Path) -> tuple[np.ndarray, None]:
    try:
        return np.load(path, allow_pickle=False), None
    except (ValueError, OSError) as error:
        raise MetainvError(f"{path}: not a readable .npy array ({error})") from None


def _read_tiff(path: Path) -> tuple[np.ndarray, None]:
    tifffile = _optional("tifffile", "TIFF")
    try:
        return tifffile.imread(path), None
    except Exception as error:  # tifffile raises many types for a bad file
        raise MetainvError(f"{path}: not a readable TIFF ({error})") from None


def _read_tiff_folder(path: Path) -> tuple[np.ndarray, None]:
    files = sorted(p for p in path.iterdir() if image_format(p) in (".tif", ".tiff"))
    if not files:
        raise MetainvError(f"{path}: a folder must hold TIFF slices (.tif, .tiff), found none")
    slices = [_read_tiff(f)[0] for f in files]
    shapes = {s.shape for s in slices}
    if len(shapes) != 1 or slices[0].ndim != 2:
        raise MetainvError(f"{path}: TIFF slices must be 2-D images of one shape, got {shapes}")
    return np.stack(slices), None


def _read_mat(path: Path, key: str | None) -> tuple[np.ndarray, None]:
    import scipy.io

    try:
        variables = scipy.io.loadmat(path)
    except (NotImplementedError, scipy.io.matlab.MatReadError):  # MATLAB v7.3 is HDF5
        return _read_mat73(path, key), None
    except (ValueError, OSError, TypeError) as error:
        raise MetainvError(f"{path}: not a readable MATLAB file ({error})") from None
    arrays = {k: v for k, v in variables.items() if not k.startswith("__")}
    return _pick(path, arrays, key), None


def _read_mat73(path: Path, key: str | None) -> np.ndarray:
    h5py = _optional("h5py", "MATLAB v7.3")
    if not h5py.is_hdf5(path):
        raise MetainvError(f"{path}: neither a MATLAB v5 nor a v7.3 (HDF5) file")
    with h5py.File(path, "r") as handle:
        arrays = {
            k: handle[k]
            for k in handle
            if isinstance(handle[k], h5py.Dataset) and not k.startswith("#")
        }
        chosen = _pick(path, arrays, key)
        # MATLAB writes column-major: the HDF5 dataset is the transpose of the MATLAB array
        return np.asarray(chosen[()]).transpose()


def _pick(path: Path, arrays: dict[str, Any], key: str | None) -> Any:
    if key is not None:
        if key not in arrays:
            raise MetainvError(
                f"{path}: no variable {key!r} (variables: {', '.join(sorted(arrays)) or 'none'})"
            )
        return arrays[key]
    three_d = [k for k, v in arrays.items() if len(v.shape) == 3]
    if len(three_d) != 1:
        raise MetainvError(
            f"{path}: {len(three_d)} 3-D variables ({', '.join(three_d) or 'none'}); "
            "name one with --key"
        )
    return arrays[three_d[0]]


def _read_nifti(path: Path) -> tuple[np.ndarray, float | None]:
    nibabel = _optional("nibabel", "NIfTI")
    try:
        image = nibabel.load(str(path))
        values = np.asarray(image.dataobj)
        zooms = image.header.get_zooms()[:3]
    except Exception as error:  # nibabel raises many types for a bad file
        raise MetainvError(f"{path}: not a readable NIfTI image ({error})") from None
    size = float(zooms[0]) if len(set(np.round(zooms, 9))) == 1 and zooms[0] > 0 else None
    return values, size


def raw_header_path(path: str | Path) -> Path:
    """The JSON header of a ``.raw`` image: the same name with ``.json``."""
    return Path(path).with_suffix(".json")


def _read_raw(path: Path) -> tuple[np.ndarray, float | None]:
    header_path = raw_header_path(path)
    if not header_path.is_file():
        raise MetainvError(
            f"{path}: a .raw image needs the JSON header {header_path.name} with "
            '{"shape": [nx, ny, nz], "dtype": "uint8"} (optional "order", "voxel_size")'
        )
    header = read_json(header_path)
    if not isinstance(header, dict) or "shape" not in header or "dtype" not in header:
        raise MetainvError(f"{header_path}: expected an object with 'shape' and 'dtype'")
    unknown = [k for k in header if k not in RAW_KEYS]
    if unknown:
        raise MetainvError(
            f"{header_path}: unknown key {unknown[0]!r} (expected {', '.join(RAW_KEYS)})"
        )
    shape = header["shape"]
    if (
        not isinstance(shape, list)
        or len(shape) != 3
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)
    ):
        raise MetainvError(f"{header_path}: 'shape' must be 3 positive integers, got {shape!r}")
    try:
        dtype = np.dtype(header["dtype"])
    except TypeError:
        raise MetainvError(f"{header_path}: unknown dtype {header['dtype']!r}") from None
    order = header.get("order", "C")
    if order not in ("C", "F"):
        raise MetainvError(f'{header_path}: \'order\' must be "C" or "F", got {order!r}')
    data = path.read_bytes()
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise MetainvError(
            f"{path}: {len(data)} bytes, but shape {shape} of {dtype} needs {expected}"
        )
    values = np.frombuffer(data, dtype=dtype).reshape(shape, order=order)
    size = header.get("voxel_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, float))):
        raise MetainvError(f"{header_path}: 'voxel_size' must be a number, got {size!r}")
    return values, None if size is None else float(size)
