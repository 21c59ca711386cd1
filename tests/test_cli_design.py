"""``metainv design`` with the shipped model: reachability message, batch mode, JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from typer.testing import CliRunner

from metainv.cli import app
from metainv.targets import load_target
from metainv.tensors import c21_from_matrix, isotropic_stiffness

runner = CliRunner()


def test_a_target_stiffer_than_any_lattice_gets_the_nearest_scale(tmp_path: Path) -> None:
    target = tmp_path / "too_stiff.json"
    target.write_text(json.dumps({"C": (0.5 * isotropic_stiffness(1.0, 0.3)).tolist()}))
    result = runner.invoke(app, ["design", str(target), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "Voigt bound" in result.output and "divided by at least" in result.output
    assert "Traceback" not in result.output


def test_batch_mode_writes_one_design_per_row(tmp_path: Path) -> None:
    bone3 = c21_from_matrix(load_target("bone3"))
    rows = np.stack([bone3, 1.2 * bone3, 0.8 * bone3])
    targets = tmp_path / "targets.csv"
    np.savetxt(targets, rows, delimiter=",")
    out = tmp_path / "batch"
    args = ["design", str(targets), "--samples", "1", "--no-verify", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pq.read_table(out / "designs.parquet")
    assert table.num_rows == 3
    assert np.all(table.column("nmse_forward").to_numpy() < 0.2)


def batch_errors(tmp_path: Path, scales: tuple[float, ...], option: str, values) -> dict:
    """Forward NMSE per row of a batch design of scaled bone3 targets, per value of ``option``;
    also checks that a negative value is refused with a message naming the option."""
    bone3 = c21_from_matrix(load_target("bone3"))
    targets = tmp_path / "targets.csv"
    np.savetxt(targets, np.stack([scale * bone3 for scale in scales]), delimiter=",")
    errors = {}
    for value in values:
        out = tmp_path / f"batch{value}"
        args = ["design", str(targets), "--samples", "1", "--no-verify", "--out", str(out)]
        result = runner.invoke(app, [*args, option, str(value)])
        assert result.exit_code == 0, result.output
        errors[value] = pq.read_table(out / "designs.parquet").column("nmse_forward").to_numpy()
    bad_args = ["design", str(targets), "--out", str(tmp_path / "b"), "--samples", "1"]
    bad = runner.invoke(app, [*bad_args, "--no-verify", option, "-2"])
    assert bad.exit_code == 2 and option in bad.output
    return errors


def test_batch_mode_forward_polish_lowers_the_forward_error(tmp_path: Path) -> None:
    errors = batch_errors(tmp_path, (1.0, 1.2, 0.8), "--polish-steps", (0, 30))
    assert np.all(errors[30] <= errors[0] + 1e-7) and errors[30].mean() < errors[0].mean()


def test_batch_mode_library_candidates_never_raise_the_forward_error(tmp_path: Path) -> None:
    errors = batch_errors(tmp_path, (1.0, 1.5, 0.6), "--library-neighbours", (0, 4))
    assert np.all(errors[4] <= errors[0] + 1e-7)


def test_batch_mode_requires_its_flags(tmp_path: Path) -> None:
    targets = tmp_path / "targets.csv"
    np.savetxt(targets, np.tile(c21_from_matrix(load_target("bone3")), (2, 1)), delimiter=",")
    result = runner.invoke(app, ["design", str(targets), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "--samples 1 --no-verify" in result.output


def test_design_json_document(tmp_path: Path) -> None:
    args = ["design", "bone3", "--samples", "300", "--top", "2", "--out", str(tmp_path / "d")]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "d" / "designs.json").read_text())
    errors = [candidate["nmse_fe"] for candidate in document["candidates"]]
    assert errors == sorted(errors) and errors[0] < 0.05
    assert np.array(document["target"]).shape == (6, 6)
    for candidate in document["candidates"]:
        assert (tmp_path / "d" / candidate["stl"]).stat().st_size > 0
        assert set(candidate) >= {"design", "C_forward", "C_fe", "nmse_forward", "nmse_fe"}
