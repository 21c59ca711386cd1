"""Build all 560 compound periodic lattices and count the distinct ones under each rule.

Usage: ``python scripts/count_topologies.py``. Logs the build time and, per rule of
:data:`metainv.truss.lattice.TOPOLOGY_RULES`, the number of classes and the time taken.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from metainv.truss.lattice import (
    TOPOLOGY_RULES,
    enumerate_topologies,
    periodic_lattice,
    topology_classes,
)

logger = logging.getLogger("count_topologies")


def main() -> dict[str, int]:
    """Return ``{rule: number of classes}`` after logging timings and lattice sizes."""
    topologies = enumerate_topologies()
    start = time.perf_counter()
    lattices = [periodic_lattice(t) for t in topologies]
    elapsed = time.perf_counter() - start
    n_nodes = np.array([lat.n_nodes for lat in lattices])
    n_struts = np.array([lat.n_struts for lat in lattices])
    logger.info("built %d periodic lattices in %.2f s", len(lattices), elapsed)
    logger.info(
        "nodes %d..%d (median %d), struts %d..%d (median %d)",
        n_nodes.min(),
        n_nodes.max(),
        np.median(n_nodes),
        n_struts.min(),
        n_struts.max(),
        np.median(n_struts),
    )
    counts = {}
    for rule in TOPOLOGY_RULES:
        start = time.perf_counter()
        counts[rule] = len(topology_classes(rule))
        logger.info(
            "rule %-13s %4d classes (%.2f s)", rule, counts[rule], time.perf_counter() - start
        )
    return counts


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
