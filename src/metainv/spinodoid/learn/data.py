"""Spinodoid data sets (``metainv generate spinodoid``, and the published set of Kumar et al.
2020) as arrays of ``Theta`` and ``S`` with the FE resolution of every row."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from metainv.errors import MetainvError
from metainv.spinodoid.learn.nets import DESIGN_NAMES, FAMILY, STIFFNESS_NAMES


@dataclass(frozen=True)
class SpinodoidData:
    """Design parameters ``Theta`` (N, 4), stiffness ``S`` (N, 9), seeds (N,; -1: unknown), the
    FE resolution of each row (N,; voxels per cell edge) and the manifest."""

    theta: np.ndarray
    stiffness: np.ndarray
    seed: np.ndarray
    manifest: dict[str, Any]
    folder: Path
    resolution: np.ndarray

    def subset(self, index: np.ndarray) -> SpinodoidData:
        return replace(
            self,
            theta=self.theta[index],
            stiffness=self.stiffness[index],
            seed=self.seed[index],
            resolution=self.resolution[index],
        )

    @property
    def multi_fidelity(self) -> bool:
        """Whether the rows come from more than one FE resolution."""
        return len(np.unique(self.resolution)) > 1


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
    resolution = np.full(len(theta), int(manifest["params"]["resolution"]))
    return SpinodoidData(
        theta.astype(float),
        stiffness.astype(float),
        table["seed"].to_numpy(),
        manifest,
        folder,
        resolution,
    )


def load_published_data(path: str | Path) -> SpinodoidData:
    """The published data set (Kumar et al. 2020, the authors' data.csv) as training rows.

    Its rows count as FE at ``REFERENCE_RESOLUTION`` (22) voxels per edge with the ensemble
    level of Eq. 3: the fidelity at which our FE reproduces them
    (``docs/spinodoid_published.md``). Seeds are unknown (-1).
    """
    from metainv.data.shards import file_sha256
    from metainv.spinodoid.dataset import generation_parameters
    from metainv.spinodoid.homogenize import REFERENCE_RESOLUTION
    from metainv.spinodoid.published import read_published
    from metainv.tensors import orthotropic9_from_matrix

    path = Path(path)
    rho, angles, C = read_published(path)
    params = generation_parameters(REFERENCE_RESOLUTION, "ensemble")
    params["relative_density"] = [float(rho.min()), float(rho.max())]
    manifest = {
        "family": FAMILY,
        "source": "Kumar et al. 2020, data.csv (published data set)",
        "rows": len(rho),
        "sha256": file_sha256(path),
        "params": params,
    }
    return SpinodoidData(
        np.column_stack([rho, angles]),
        orthotropic9_from_matrix(C),
        np.full(len(rho), -1),
        manifest,
        path,
        np.full(len(rho), REFERENCE_RESOLUTION),
    )


def concatenate_data(sets: list[SpinodoidData], multi_fidelity: bool = False) -> SpinodoidData:
    """Rows of several data sets generated with the same geometry and FE settings.

    The relative-density ranges may differ (e.g. the published 0.3-0.9 and the low-density
    extension 0.15-0.3); the result's manifest records the smallest interval holding them all.
    With ``multi_fidelity`` the FE resolution and level rule may differ too (each row keeps its
    resolution); the manifest then records those of the finest set, the fidelity to predict.
    """
    keys = ("kind", "n_waves", "beta", "boundary")
    if not multi_fidelity:
        keys = ("resolution", "threshold", *keys)
    finest = max(sets, key=lambda s: int(s.manifest["params"]["resolution"]))
    first = sets[0].manifest["params"]
    for other in sets[1:]:
        for key in keys:
            if other.manifest["params"].get(key) != first.get(key):
                raise MetainvError(
                    f"data sets {sets[0].folder} and {other.folder} differ in {key} "
                    f"({first.get(key)!r} vs {other.manifest['params'].get(key)!r})"
                )
    ranges = np.array([s.manifest["params"]["relative_density"] for s in sets], dtype=float)
    manifest = dict(finest.manifest)
    manifest["params"] = {
        **finest.manifest["params"],
        "relative_density": [float(ranges[:, 0].min()), float(ranges[:, 1].max())],
    }
    return replace(
        finest,
        manifest=manifest,
        theta=np.concatenate([s.theta for s in sets]),
        stiffness=np.concatenate([s.stiffness for s in sets]),
        seed=np.concatenate([s.seed for s in sets]),
        resolution=np.concatenate([s.resolution for s in sets]),
    )
