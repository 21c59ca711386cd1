"""The built-in design families, registered once: truss, spinodoid and tpms, plus any plug-in
family a package declares under the ``metainv.families`` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points

from metainv.family import Family, register_family
from metainv.spinodoid.family import SPINODOID
from metainv.tpms.family import TPMS
from metainv.truss.family import TRUSS

#: The families that ship with metainv, in the order the CLI lists them.
BUILTIN_FAMILIES: tuple[Family, ...] = (TRUSS, SPINODOID, TPMS)

#: Entry-point group of plug-in families (each entry point names a Family value).
ENTRY_POINT_GROUP = "metainv.families"


def register_builtin_families() -> None:
    """Register the built-in families and the installed plug-ins (idempotent)."""
    for family in BUILTIN_FAMILIES:
        register_family(family, replace=True)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        family = entry.load()
        if isinstance(family, Family):
            register_family(family, replace=True)


register_builtin_families()
