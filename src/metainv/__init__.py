"""metainv: inverse design of architected metamaterials.

Give a target anisotropic stiffness; get manufacturable microstructures whose FE-homogenized
stiffness matches it. This module is the public API (:mod:`metainv.api`): ``load_target``,
``check_stiffness``, ``homogenize``, ``design``, ``export``, ``grade``, the family registry and
the result types. Families live in subpackages (:mod:`metainv.truss`, :mod:`metainv.spinodoid`,
:mod:`metainv.tpms`) and are registered once (:mod:`metainv.families`).
"""

from metainv.api import (
    as_design,
    check_stiffness,
    design,
    export,
    grade,
    homogenize,
    load_target,
    optimize_topology,
    read_stiffness,
)
from metainv.errors import DesignError, MetainvError, TargetError
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
from metainv.version import __version__

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
    "check_stiffness",
    "design",
    "export",
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
