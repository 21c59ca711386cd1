"""Spinodoid data sets (``metainv generate spinodoid``) as arrays of ``Theta`` and ``S``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from metainv.errors import MetainvError
from metainv.spinodoid.learn.nets import DESIGN_NAMES, FAMILY, STIFFNESS_NAMES


@dataclass(frozen=True)
class SpinodoidData:
    """Design parameters ``Theta`` (N, 4), stiffness ``S`` (N, 9), seeds (N,) and the manifest."""

    theta: np.ndarray
    stiffness: np.ndarray
    seed: np.ndarray
    manifest: dict[str, Any]
    folder: Path

    def subset(self, index: np.ndarray) -> SpinodoidData:
        return replace(
            self, theta=self.theta[index], stiffness=self.stiffness[index], seed=self.seed[index]
        )


def load_spinodoid_data(folder: str | Path) -> SpinodoidData:
    """Read a complete data set of ``metainv generate spinodoid`` (checksums verified)."""
    from metainv.data.shards import complete_manifest, read_dataset

    folder = Path(folder)
    manifest = complete_manifest(folder)
    if manifest.get("family") != FAMILY:
        raise MetainvError(
            f"{folder} holds {manifest.get('family')!r} data; expected a spinodoid data set "
            "(metainv generate spinodoid)"
        )
    table = read_dataset(folder, columns=[*DESIGN_NAMES, "seed", *STIFFNESS_NAMES])
    theta = np.stack([table[name].to_numpy() for name in DESIGN_NAMES], axis=1)
    stiffness = np.stack([table[name].to_numpy() for name in STIFFNESS_NAMES], axis=1)
    return SpinodoidData(
        theta.astype(float), stiffness.astype(float), table["seed"].to_numpy(), manifest, folder
    )


def concatenate_data(sets: list[SpinodoidData]) -> SpinodoidData:
    """Rows of several data sets generated with the same geometry and FE settings.

    The relative-density ranges may differ (e.g. the published 0.3-0.9 and the low-density
    extension 0.15-0.3); the result's manifest records the smallest interval holding them all.
    """
    keys = ("resolution", "threshold", "kind", "n_waves", "beta", "boundary")
    first = sets[0].manifest["params"]
    for other in sets[1:]:
        for key in keys:
            if other.manifest["params"].get(key) != first.get(key):
                raise MetainvError(
                    f"data sets {sets[0].folder} and {other.folder} differ in {key} "
                    f"({first.get(key)!r} vs {other.manifest['params'].get(key)!r})"
                )
    ranges = np.array([s.manifest["params"]["relative_density"] for s in sets], dtype=float)
    manifest = dict(sets[0].manifest)
    manifest["params"] = {
        **first,
        "relative_density": [float(ranges[:, 0].min()), float(ranges[:, 1].max())],
    }
    return replace(
        sets[0],
        manifest=manifest,
        theta=np.concatenate([s.theta for s in sets]),
        stiffness=np.concatenate([s.stiffness for s in sets]),
        seed=np.concatenate([s.seed for s in sets]),
    )
