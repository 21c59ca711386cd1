"""`metainv scan ...`: the JSON is a design target (units, provenance), maps resume, errors are
one line with exit code 2."""

from __future__ import annotations

import json

import meshio
import numpy as np
import pytest

import metainv
from metainv.cli._app import app
from metainv.errors import MetainvError
from metainv.scan.demo import demo_scan
from metainv.scan.implant import window_targets
from metainv.targets import read_target
from metainv.tensors import matrix_from_c21


def run(args: list[str]) -> int:
    return app(args, standalone_mode=False)


@pytest.fixture
def scan_file(tmp_path):
    path = tmp_path / "bone.npy"
    np.save(path, demo_scan(24, seed=0)[:12, 4:16, 6:18].copy())
    return path


def test_homogenize_writes_a_design_target_with_units_and_provenance(tmp_path, scan_file):
    out = tmp_path / "bone.json"
    png = tmp_path / "bone.png"
    options = ["--png", str(png), "--boundary", "affine", "--boundary", "static"]
    options += ["--void-modulus-ratio", "1e-2", "--tissue-modulus", "10GPa", "--out", str(out)]
    code = run(["scan", "homogenize", str(scan_file), *options])
    assert code == 0 and png.stat().st_size > 0
    document = json.loads(out.read_text())
    record = document["scan"]
    assert document["unit"] == "GPa" and record["tissue_modulus"] == 10.0
    C = np.asarray(document["C"])
    np.testing.assert_allclose(C, matrix_from_c21(np.asarray(record["C21"]["affine"])))
    static = matrix_from_c21(np.asarray(record["C21"]["static"]))
    assert np.linalg.eigvalsh(C - static).min() > 0  # kinematic above static
    assert 0 < record["bv_tv"] < 1 and 0 < record["largest_body_share"] <= 1
    assert record["fabric"]["degree_of_anisotropy"] >= 1
    Q = np.asarray(record["orthotropic"]["frame"])
    np.testing.assert_allclose(Q @ Q.T, np.eye(3), atol=1e-12)
    # a design target: normalized by the printed material's modulus, with the scan's provenance
    target = read_target(out, base_modulus="114GPa")
    np.testing.assert_allclose(target.stiffness, C * 1e9 / 114e9)
    assert target.scan["sha256"] == record["sha256"] and target.scan["tissue_modulus"] == 10.0
    result = metainv.design(target, family="spinodoid", top=1, verify=False)
    provenance = result.to_json()["provenance"]
    assert provenance["scan"]["file"] == str(scan_file)
    assert provenance["base_modulus_pa"] == 114e9 and provenance["source"].startswith("metainv")


def test_a_bare_tissue_modulus_gives_a_normalized_target(tmp_path, scan_file):
    out = tmp_path / "n.json"
    assert run(["scan", "homogenize", str(scan_file), "--out", str(out)]) == 0
    target = read_target(out)
    assert target.unit == "normalized" and target.base_modulus_pa is None
    assert 0 < target.stiffness[0, 0] < 1


def test_errors_are_one_line_with_exit_code_2(tmp_path, scan_file, capsys):
    assert run(["scan", "homogenize", str(tmp_path / "missing.npy")]) == 2
    assert run(["scan", "homogenize", str(scan_file), "--crop", "0,0,0,99"]) == 2
    assert run(["--max-memory", "1MB", "scan", "homogenize", str(scan_file)]) == 2
    assert run(["scan", "homogenize", str(scan_file), "--boundary", "free"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(errors) == 4
    assert "reaches outside" in errors[1] and "above the limit" in errors[2]


def test_map_writes_vtu_npz_json_and_resumes(tmp_path):
    scan = tmp_path / "big.npy"
    np.save(scan, demo_scan(32, seed=2)[:, :16, :16].copy())
    out = tmp_path / "map"
    args = ["scan", "map", str(scan), "--window", "8", "--stride", "8", "--out", str(out)]
    assert run([*args, "--coarsen", "2", "--tissue-modulus", "10GPa"]) == 0
    data = np.load(out / "map.npz")
    assert data["C"].shape == (2, 6, 6) and tuple(data["grid"]) == (2, 1, 1)
    np.testing.assert_allclose(data["centres"], [[4, 4, 4], [12, 4, 4]])
    mesh = meshio.read(out / "map.vtu")
    assert mesh.cells[0].type == "hexahedron" and len(mesh.cells[0].data) == 2
    np.testing.assert_allclose(mesh.cell_data["C33"][0], data["C"][:, 2, 2])
    # resume: a finished window is kept (its file untouched), a damaged one recomputed
    first, second = sorted((out / "windows").iterdir())
    stamp = first.stat().st_mtime_ns
    second.write_text("{")
    assert run([*args, "--coarsen", "2", "--tissue-modulus", "10GPa"]) == 0
    assert first.stat().st_mtime_ns == stamp
    np.testing.assert_allclose(np.load(out / "map.npz")["C"], data["C"])
    # the window targets carry the unit conversion to the printed material
    summary = json.loads((out / "map.json").read_text())
    targets = window_targets(summary, "20GPa")
    np.testing.assert_allclose(targets[1].stiffness, data["C"][1] / 20, rtol=1e-12)  # GPa / 20GPa
    with pytest.raises(MetainvError, match="--base-modulus"):
        window_targets(summary, None)


def test_map_windows_in_worker_processes_give_the_same_numbers(tmp_path):
    from metainv.scan import stiffness_map

    solid = demo_scan(16, seed=4) > 115
    serial = stiffness_map(solid[:, :8, :8], tmp_path / "a", 8, 8, 10.0, workers=1)
    parallel = stiffness_map(solid[:, :8, :8], tmp_path / "b", 8, 8, 10.0, workers=2)
    assert [w["C21"] for w in serial["windows"]] == [w["C21"] for w in parallel["windows"]]


def test_candidate_choices_by_rank_sum():
    from metainv.scan.implant import candidate_choices

    choices = list(candidate_choices([3, 2], 10))
    assert choices[0] == (0, 0)
    assert sorted(choices) == sorted({(a, b) for a in range(3) for b in range(2)})
    sums = [sum(c) for c in choices]
    assert sums == sorted(sums)
    assert list(candidate_choices([3, 3, 3], 4)) == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0)]
