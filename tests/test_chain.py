"""Outputs chain into inputs, for every built-in family, on the command line: the designs.json
of ``design`` goes into ``homogenize``, ``export``, ``stiffness surface --compare`` and
``grade`` (``--candidate N`` picks an entry), and ``homogenize --json`` output goes into
``stiffness surface --compare``. The stiffness read back is the one written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

from metainv.cli import app
from metainv.family import get_family

runner = CliRunner()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: family -> design arguments (bone3 in a base material each family can match)
DESIGNS = {
    "truss": ["bone3", "--samples", "300", "--no-refine"],
    "spinodoid": ["bone3", "--unit", "GPa", "--base-modulus", "20GPa", "--family", "spinodoid"],
    "tpms": ["bone3", "--unit", "GPa", "--base-modulus", "2GPa", "--family", "tpms"],
}


def invoke(*args: str) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module", params=sorted(DESIGNS))
def designed(request, tmp_path_factory) -> tuple[str, Path, dict]:
    family = request.param
    out = tmp_path_factory.mktemp(f"chain-{family}")
    invoke("design", *DESIGNS[family], "--top", "2", "--out", out / "designs")
    document = json.loads((out / "designs" / "designs.json").read_text())
    assert document["family"] == family and len(document["candidates"]) == 2
    return family, out, document


def test_designs_json_homogenizes_to_its_fe_stiffness(designed):
    family, out, document = designed
    for number, entry in enumerate(document["candidates"], start=1):
        args = ["homogenize", out / "designs" / "designs.json", "--candidate", str(number)]
        data = json.loads(invoke(*args, "--json"))  # with the FE settings of designs.json
        assert data["family"] == family
        C, C_fe = np.array(data["C"]), np.array(entry["C_fe"])
        np.testing.assert_allclose(C, C_fe, rtol=1e-9, atol=1e-12 * np.abs(C_fe).max())


def test_designs_json_exports_a_watertight_block(designed):
    _, out, _ = designed
    mesh_path = out / "second.stl"
    invoke("export", out / "designs" / "designs.json", "--candidate", "2", "--out", mesh_path)
    mesh = trimesh.load(mesh_path)
    assert mesh.is_watertight and mesh.volume > 0


def test_designs_json_and_homogenize_json_compare_on_the_surface(designed):
    _, out, _ = designed
    designs = out / "designs" / "designs.json"
    png = out / "compare.png"
    invoke("stiffness", "surface", "bone3", "--compare", designs, "--out", png)
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    homogenized = out / "homogenized.json"
    homogenized.write_text(invoke("homogenize", designs, "--json"))
    png2 = out / "compare_homogenized.png"
    invoke("stiffness", "surface", homogenized, "--compare", designs, "--out", png2)
    assert png2.read_bytes()[:8] == PNG_SIGNATURE


def test_designs_json_grades(designed):
    family, out, _ = designed
    designs = out / "designs" / "designs.json"
    graded = out / "graded"
    box = (4, 2, 2) if family == "truss" else (2, 1, 1)  # truss: room for whole cells
    y, z = box[1] / 2, box[2] / 2
    controls = ["--control", f"0,{y},{z}", designs, "--control", f"{box[0]},{y},{z}", designs]
    options = ["--no-stl", "--no-check"] if family == "truss" else []
    args = ["grade", *controls, "--box", *map(str, box), *options, "--out", graded]
    if get_family(family).grade is None:  # grading is not (yet) a capability of this family
        refused = runner.invoke(app, [str(a) for a in args])
        assert refused.exit_code == 2
        assert f"the {family} family does not support grade" in refused.output
        return
    invoke(*args)
    documents = [json.loads(path.read_text()) for path in graded.glob("*.json")]
    assert documents and all(isinstance(document, dict) for document in documents)
    for path in graded.glob("*.stl"):
        assert trimesh.load(path).is_watertight, path.name
