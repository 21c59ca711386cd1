"""metainv: inverse design of architected metamaterials.

Give a target anisotropic stiffness; get manufacturable microstructures whose FE-homogenized
stiffness matches it. Subpackages: :mod:`metainv.tensors` (notation), :mod:`metainv.truss`
(design space and beam homogenization).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("metainv")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
