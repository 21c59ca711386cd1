"""metainv: inverse design of architected metamaterials.

Give a target anisotropic stiffness; get manufacturable microstructures whose FE-homogenized
stiffness matches it. This module is the public API (:mod:`metainv.api`): ``load_target``,
``check_stiffness``, ``homogenize``, ``design``, ``export`` (``export_part``: in mm, with a
print report), ``check_print`` (printability for a process), ``grade``, the family registry
and the result types. Families live in subpackages (:mod:`metainv.truss`, :mod:`metainv.spinodoid`,
:mod:`metainv.tpms`) and are registered once (:mod:`metainv.families`).

Attributes are imported lazily (PEP 562), so that ``metainv --help`` and ``--version`` stay fast:
the first access to one of them imports :mod:`metainv.api` (and with it every family).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from metainv.errors import DesignError, MetainvError, TargetError
from metainv.version import VERSION

__version__ = VERSION

if TYPE_CHECKING:  # pragma: no cover
    from metainv.api import (
        as_design,
        check_print,
        check_stiffness,
        design,
        export,
        export_part,
        grade,
        homogenize,
        load_target,
        optimize_topology,
        read_stiffness,
    )
    from metainv.family import (
        Candidate,
        DesignResult,
        Family,
        Homogenized,
        Material,
        family_names,
        get_family,
        load_design,
        register_family,
    )
    from metainv.targets import Target

#: Lazily imported public names -> the module that defines them.
_LAZY = {
    **dict.fromkeys(
        [
            "as_design",
            "check_print",
            "check_stiffness",
            "design",
            "export",
            "export_part",
            "grade",
            "homogenize",
            "load_target",
            "optimize_topology",
            "read_stiffness",
        ],
        "metainv.api",
    ),
    **dict.fromkeys(
        [
            "Candidate",
            "DesignResult",
            "Family",
            "Homogenized",
            "Material",
            "family_names",
            "get_family",
            "load_design",
            "register_family",
        ],
        "metainv.family",
    ),
    "Target": "metainv.targets",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'metainv' has no attribute {name!r}")
    importlib.import_module("metainv.api")  # registers the built-in families
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Candidate",
    "DesignError",
    "DesignResult",
    "Family",
    "Homogenized",
    "Material",
    "MetainvError",
    "Target",
    "TargetError",
    "__version__",
    "as_design",
    "check_print",
    "check_stiffness",
    "design",
    "export",
    "export_part",
    "family_names",
    "get_family",
    "grade",
    "homogenize",
    "load_design",
    "load_target",
    "optimize_topology",
    "read_stiffness",
    "register_family",
]
