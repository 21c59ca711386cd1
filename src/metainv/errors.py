"""Exception types of metainv. Every user-facing error is a :class:`MetainvError`.

Messages are one line: what is wrong and what is expected.
"""

from __future__ import annotations


class MetainvError(ValueError):
    """Base class: bad input or an impossible request, with a one-line explanation."""


class TargetError(MetainvError):
    """A stiffness target could not be read, parsed or interpreted."""


class DesignError(MetainvError):
    """A design (JSON or parameters) is invalid; the message names the parameter at fault."""
