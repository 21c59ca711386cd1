"""The installed version of metainv (``importlib.metadata``), importable without the API."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("metainv")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    VERSION = "0.0.0+unknown"

#: The conventional spelling (``metainv.__version__`` is this value).
__version__ = VERSION

__all__ = ["VERSION", "__version__"]
