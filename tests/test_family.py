"""The family protocol: a toy family registered from the test suite (no change to metainv's
source) runs through ``homogenize``, ``generate``, ``design``, ``export`` and ``grade`` on the
command line and through the public API."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

import metainv
from metainv.cli import app
from metainv.data import read_dataset
from metainv.errors import DesignError
from metainv.family import (
    Candidate,
    DesignResult,
    Family,
    Homogenized,
    Material,
    get_family,
    unregister_family,
)
from metainv.tensors import isotropic_stiffness, nmse

runner = CliRunner()


def _from_dict(data: Mapping) -> float:
    unknown = set(data) - {"family", "relative_density"}
    if unknown:
        raise DesignError(f"unknown key {sorted(unknown)[0]!r} in toy design")
    rho = data.get("relative_density")
    if not isinstance(rho, (int, float)) or not 0 < rho <= 1:
        raise DesignError(f"relative_density must lie in (0, 1], got {rho!r}")
    return ToyDesign(float(rho))


class ToyDesign(float):
    """A foam of relative density rho: C = rho^2 C_solid (Gibson-Ashby, open cells)."""


def _homogenize(design: ToyDesign, material: Material = Material()) -> Homogenized:
    C = float(design) ** 2 * isotropic_stiffness(material.youngs_modulus, material.poisson_ratio)
    return Homogenized(C=C, relative_density=float(design), details={"law": "rho^2"})


def _export(design: ToyDesign, path: Path, cells=(1, 1, 1), fmt=None) -> None:
    edge = float(design) ** (1 / 3)
    trimesh.creation.box(extents=[edge * c for c in cells]).export(path, file_type="stl")


def _shard(rows: int, rng: np.random.Generator, params: Mapping) -> dict:
    rho = rng.uniform(*params["relative_density"], size=rows)
    C = np.array([_homogenize(ToyDesign(r)).C for r in rho])
    return {"relative_density": rho, "C11": C[:, 0, 0], "C12": C[:, 0, 1], "C44": C[:, 3, 3]}


def _design(target: np.ndarray, top: int = 3, on_step=None) -> DesignResult:
    grid = np.linspace(0.01, 1.0, 100)
    errors = np.array([float(nmse(target, _homogenize(ToyDesign(r)).C)) for r in grid])
    candidates = []
    for index in np.argsort(errors)[:top]:
        design = ToyDesign(grid[index])
        C = _homogenize(design).C
        candidates.append(Candidate(design, C, C, float(errors[index]), float(errors[index])))
    return DesignResult(family="toy", target=target, candidates=tuple(candidates))


def _grade(controls, box, zeta, out, *, body=None, on_step=None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    densities = [float(_load(d)) for _, d in controls]
    (out / "graded.json").write_text(json.dumps({"densities": densities}))
    return {"files": {"graded": str(out / "graded.json")}, "controls": len(controls)}


def _load(design):
    return design if isinstance(design, ToyDesign) else metainv.load_design(design)[1]


TOY = Family(
    name="toy",
    description="toy open-cell foam, C = rho^2 C_solid",
    from_dict=_from_dict,
    to_dict=lambda design: {"family": "toy", "relative_density": float(design)},
    homogenize=_homogenize,
    sample=lambda n, rng: [ToyDesign(r) for r in rng.uniform(0.05, 1.0, n)],
    export_mesh=_export,
    generation_parameters=lambda: {"relative_density": [0.05, 1.0]},
    generate_shard=_shard,
    design=_design,
    grade=_grade,
    options={"export": frozenset({"fmt"}), "design": frozenset({"top"})},
    design_type=ToyDesign,
    shard_size=10,
)


@pytest.fixture
def toy():
    metainv.register_family(TOY)
    yield TOY
    unregister_family("toy")


def write_design(folder: Path, rho: float) -> Path:
    path = folder / f"toy_{rho}.json"
    path.write_text(json.dumps({"family": "toy", "relative_density": rho}))
    return path


def test_homogenize_through_the_cli(toy, tmp_path):
    result = runner.invoke(app, ["homogenize", str(write_design(tmp_path, 0.5)), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["family"] == "toy" and data["law"] == "rho^2"
    np.testing.assert_allclose(data["C"], 0.25 * isotropic_stiffness(1.0, 0.3), rtol=1e-12)
    bad = runner.invoke(app, ["homogenize", str(write_design(tmp_path, 0.5)), "--resolution", "8"])
    assert bad.exit_code == 2 and "--resolution does not apply to the toy family" in bad.output


def test_generate_through_the_cli(toy, tmp_path):
    out = tmp_path / "data"
    args = ["generate", "toy", "--n", "25", "--out", str(out), "--seed", "3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = read_dataset(out)
    assert table.num_rows == 25
    rho = table.column("relative_density").to_numpy()
    np.testing.assert_allclose(table.column("C44").to_numpy(), rho**2 / 2.6, rtol=1e-12)
    assert json.loads((out / "dataset.json").read_text())["n_shards"] == 3  # toy shard size 10


def test_design_through_the_cli_and_its_outputs_chain(toy, tmp_path):
    target = tmp_path / "target.json"
    target.write_text(json.dumps({"C": (0.09 * isotropic_stiffness(1.0, 0.3)).tolist()}))
    out = tmp_path / "designs"
    args = ["design", str(target), "--family", "toy", "--top", "2", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    document = json.loads((out / "designs.json").read_text())
    assert document["family"] == "toy" and len(document["candidates"]) == 2
    best = document["candidates"][0]
    assert best["design"]["relative_density"] == pytest.approx(0.3)
    assert best["nmse_fe"] < 1e-20
    assert (out / best["stl"]).is_file() and (out / best["surface_png"]).is_file()
    # the designs.json goes back into homogenize, export and grade
    again = runner.invoke(app, ["homogenize", str(out / "designs.json"), "--json"])
    assert again.exit_code == 0, again.output
    np.testing.assert_allclose(json.loads(again.stdout)["C"], best["C_fe"], rtol=1e-12)
    mesh = tmp_path / "block.stl"
    exported = runner.invoke(
        app, ["export", str(out / "designs.json"), "--candidate", "2", "--out", str(mesh)]
    )
    assert exported.exit_code == 0, exported.output
    assert trimesh.load(mesh).is_watertight
    second = str(write_design(tmp_path, 0.6))
    controls = ["--control", "0,0,0", str(out / "designs.json"), "--control", "4,0,0", second]
    box = ["--box", "4", "1", "1"]
    graded = runner.invoke(app, ["grade", *controls, *box, "--out", str(tmp_path / "g")])
    assert graded.exit_code == 0, graded.output
    assert json.loads((tmp_path / "g" / "graded.json").read_text())["densities"] == [0.3, 0.6]


def test_python_api_dispatches_on_the_design_type(toy, tmp_path):
    design = TOY.from_dict({"family": "toy", "relative_density": 0.4})
    assert metainv.homogenize(design).relative_density == 0.4
    assert metainv.homogenize(write_design(tmp_path, 0.4)).C[0, 0] == pytest.approx(
        0.16 * isotropic_stiffness(1.0, 0.3)[0, 0]
    )
    result = metainv.design(0.04 * isotropic_stiffness(1.0, 0.3), family="toy", top=1)
    assert float(result.candidates[0].design) == pytest.approx(0.2)
    document = result.write(tmp_path / "api")
    assert document["candidates"][0]["stl"] == "candidate_01.stl"
    with pytest.raises(DesignError, match="--samples does not apply to the toy family"):
        metainv.design(np.eye(6), family="toy", samples=3)


def test_registry_errors_are_one_line(toy):
    with pytest.raises(metainv.MetainvError, match="already registered"):
        metainv.register_family(Family(**{**TOY.__dict__, "description": "another"}))
    with pytest.raises(DesignError, match="unknown family 'foam'"):
        get_family("foam")
    assert metainv.family_names()[:3] == ["truss", "spinodoid", "tpms"]
