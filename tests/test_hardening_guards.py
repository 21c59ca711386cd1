"""Hardening (issue 15): model and checkpoint checks, resource guards, the no-traceback promise
(every foreseeable exception one line, the traceback behind --debug), manifest schema, fast
start, dependency minimums. Each case runs the command line as a user would."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from metainv.cli import app
from metainv.cli._errors import describe
from metainv.errors import MetainvError
from metainv.files import parse_json, write_bytes_atomic
from metainv.nn.artifacts import default_model_folder
from metainv.resources import parse_size, set_memory_limit

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

SPINODOID = {"family": "spinodoid", "relative_density": 0.5, "theta": [30, 30, 0]}
TPMS = {"family": "tpms", "surface": "gyroid", "variant": "sheet", "relative_density": 0.3}
TRUSS = {
    "family": "truss",
    "topology": [{"cell": 2, "tessellation": 1}] * 3,
    "relative_density": 0.05,
    "U": [1, 1, 1],
    "V": [1, 1, 1],
    "R1": np.eye(3).tolist(),
    "R2": {"angle": 0.3, "axis": [0, 0, 1]},
}


def invoke(*args: str, env: dict | None = None):
    return runner.invoke(app, list(args), env=env)


def one_line_error(result, *fragments: str) -> str:
    """Exit 2, exactly one ``error: ...`` line, no traceback; returns the line."""
    text = result.output
    assert result.exit_code == 2, text
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, text
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.fixture(autouse=True)
def _default_limit():
    set_memory_limit(None)
    yield
    set_memory_limit(None)


def write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


# ------------------------------------------------------------------ parser errors, --debug


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["design", "--bogus"], "No such option: --bogus"),
        (["nosuchcommand"], "No such command 'nosuchcommand'"),
        (["design"], "Missing argument"),
        (["homogenize", "x.json", "--resolution", "abc"], "--resolution"),
    ],
)
def test_parser_errors_are_one_line(args, fragment):
    line = one_line_error(invoke(*args), fragment)
    assert "╭" not in line and "│" not in line


def test_debug_shows_the_traceback(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 5000 + "]" * 5000)
    one_line_error(invoke("homogenize", str(path)), "nested deeper")
    debug = runner.invoke(app, ["--debug", "homogenize", str(path)])
    assert debug.exit_code != 0 and isinstance(debug.exception, MetainvError)
    late = runner.invoke(app, ["homogenize", str(path), "--debug"])
    assert isinstance(late.exception, MetainvError)
    one_line_error(invoke("homogenize", str(path)), "nested deeper")  # reset per invocation
    env = runner.invoke(app, ["homogenize", str(path)], env={"METAINV_DEBUG": "1"})
    assert isinstance(env.exception, MetainvError)


def test_unexpected_exceptions_are_one_line_with_a_debug_hint():
    assert "rerun with --debug" in describe(ZeroDivisionError("division by zero"))


# ------------------------------------------------------------- every exception class, one line


@pytest.mark.parametrize(
    "error, fragment",
    [
        (OSError(errno.ENOSPC, "No space left on device", "/out/designs.json"), "/out/designs"),
        (OSError(errno.ENOSPC, "No space left on device"), "no space left"),
        (PermissionError(errno.EACCES, "Permission denied", "/x"), "permission denied: /x"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "/d"), "/d is a folder"),
        (UnicodeDecodeError("utf-8", b"caf\xe9", 3, 4, "invalid"), "not UTF-8"),
        (RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
        (MemoryError(), "out of memory"),
        (ValueError("Exceeds the limit (4300 digits) for integer string conversion"), "digits"),
        (OverflowError("int too large to convert to float"), "out of range"),
    ],
)
def test_describe_maps_each_exception_class_to_one_line(error, fragment):
    text = describe(error)
    assert "\n" not in text and fragment in text


def test_describe_safetensors_and_unpickling_errors():
    from safetensors import SafetensorError

    assert "corrupt or truncated weights" in describe(SafetensorError("header too small"))
    import pickle

    assert "corrupt or foreign checkpoint" in describe(pickle.UnpicklingError("bad"))


def test_a_full_disk_names_the_file(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    target = tmp_path / "designs.json"
    with pytest.raises(OSError) as caught:
        write_bytes_atomic(target, b"{}")
    assert caught.value.filename == str(target) and caught.value.errno == errno.ENOSPC
    assert str(target) in describe(caught.value)
    assert not list(tmp_path.iterdir())  # no temporary file left


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[" * 100000, "nested deeper"),
        ('{"a": ' + "9" * 5000 + "}", "digits"),
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ("{", "invalid JSON"),
    ],
)
def test_strict_json(text, fragment):
    with pytest.raises(MetainvError, match=fragment):
        parse_json(text, "x.json")


@pytest.mark.parametrize("command", ["homogenize", "design"])
def test_latin1_files_are_one_line(tmp_path, command):
    path = tmp_path / "target.json"
    path.write_bytes('{"C": [[1]], "name": "Élan"}'.encode("latin-1"))
    args = [command, str(path)] + (["--out", str(tmp_path / "out")] if command == "design" else [])
    one_line_error(invoke(*args), "UTF-8")


def test_latin1_csv_batch_is_one_line(tmp_path):
    path = tmp_path / "targets.csv"
    path.write_bytes(("# Élan\n" + ",".join(["1"] * 36) + "\n").encode("latin-1"))
    one_line_error(invoke("design", str(path), "--out", str(tmp_path / "out")), "UTF-8")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[" * 100000, "nested"),
        ('{"family": "tpms", "relative_density": ' + "1" * 6000 + "}", "digits"),
        ('{"family": "tpms", "family": "truss"}', "duplicate key"),
    ],
)
def test_hostile_design_json_to_homogenize(tmp_path, text, fragment):
    path = tmp_path / "design.json"
    path.write_text(text)
    one_line_error(invoke("homogenize", str(path)), fragment, str(path))


# ----------------------------------------------------------------------- model folders


def _copy_model(tmp_path: Path, family: str = "truss") -> Path:
    folder = tmp_path / f"model-{family}"
    shutil.copytree(default_model_folder(family), folder)
    return folder


def _reseal(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    manifest["weights_sha256"] = digest
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _truncated(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    _reseal(folder)


def _tampered(folder: Path) -> None:
    tensors = load_file(str(folder / "model.safetensors"))
    key = sorted(tensors)[0]
    tensors[key] = tensors[key] * 1.01
    save_file(tensors, str(folder / "model.safetensors"))


def _nan(folder: Path) -> None:
    tensors = load_file(str(folder / "model.safetensors"))
    key = next(k for k in sorted(tensors) if tensors[k].is_floating_point())
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    save_file(tensors, str(folder / "model.safetensors"))
    _reseal(folder)


def _config(change):
    def apply(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        change(config)
        (folder / "config.json").write_text(json.dumps(config))

    return apply


def _no_manifest(folder: Path) -> None:
    (folder / "manifest.json").unlink()


def _bad_sha(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["weights_sha256"] = 12
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _library(folder: Path) -> None:
    path = folder / "library.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))


def _narrow(config):
    config["forward"]["stage1_hidden"] = [64, 64]


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (_truncated, "corrupt or truncated"),
        (_tampered, "does not match the sha256"),
        (_nan, "NaN"),
        (_config(_narrow), "size mismatch"),
        (_config(lambda c: c.pop("inverse")), "missing entry 'inverse'"),
        (_config(lambda c: c.update(family="spinodoid")), "'spinodoid' model"),
        (_no_manifest, "missing manifest.json"),
        (_bad_sha, "no valid sha256"),
        (_library, "library.safetensors does not match"),
    ],
    ids=lambda v: getattr(v, "__name__", None) or str(v)[:20],
)
def test_damaged_truss_models_are_refused_before_use(tmp_path, damage, fragment):
    folder = _copy_model(tmp_path)
    damage(folder)
    out = tmp_path / "out"
    result = invoke("design", "bone3", "--model", str(folder), "--samples", "50", "--out", str(out))
    one_line_error(result, fragment)


def test_a_spinodoid_model_for_a_truss_design_is_refused(tmp_path):
    folder = _copy_model(tmp_path, "spinodoid")
    result = invoke("design", "bone3", "--model", str(folder), "--out", str(tmp_path / "o"))
    one_line_error(result, "holds a 'spinodoid' model, not a truss one")


def test_a_missing_model_folder_is_one_line(tmp_path):
    result = invoke("design", "bone3", "--model", str(tmp_path / "nope"), "--out", str(tmp_path))
    one_line_error(result, "model folder not found")


# ------------------------------------------------------------------ training checkpoints


def _stage(tmp_path: Path, width: int, checkpoint: Path):
    from metainv.nn.train import LoopSettings, run_stage

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.Linear(width, 1))
    x, y = torch.randn(16, 3), torch.randn(16, 1)

    def loss(index, epoch):
        return torch.nn.functional.mse_loss(module(x[index]), y[index])

    settings = LoopSettings(epochs=2, learning_rate=1e-2, batch_size=8)
    return run_stage(
        "toy", module, loss, 16, lambda: float(loss(slice(None), 0)), settings, checkpoint
    )


def test_corrupt_and_architecture_changed_checkpoints_are_one_line(tmp_path):
    checkpoint = tmp_path / "toy.pt"
    _stage(tmp_path, 4, checkpoint)
    assert checkpoint.exists()
    with pytest.raises(MetainvError, match=r"from another architecture.*size mismatch"):
        _stage(tmp_path, 5, checkpoint)
    checkpoint.write_bytes(checkpoint.read_bytes()[:200])
    with pytest.raises(MetainvError, match="corrupt"):
        _stage(tmp_path, 4, checkpoint)
    checkpoint.write_bytes(b"\x80\x04not a pickle at all")
    with pytest.raises(MetainvError, match="corrupt"):
        _stage(tmp_path, 4, checkpoint)


# ------------------------------------------------------------------------ resource guards


@pytest.mark.parametrize("resolution", ["0", "-3", "1", "7"])
def test_too_coarse_resolutions_are_refused(tmp_path, resolution):
    path = write(tmp_path / "s.json", SPINODOID)
    one_line_error(invoke("homogenize", str(path), "--resolution", resolution), "at least 8")


@pytest.mark.parametrize("design", [SPINODOID, TPMS])
def test_huge_resolutions_are_refused_before_allocating(tmp_path, design):
    path = write(tmp_path / "d.json", design)
    line = one_line_error(invoke("homogenize", str(path), "--resolution", "10000"), "TiB")
    assert "above the limit" in line and "--max-memory" in line


def test_max_memory_lowers_the_limit(tmp_path):
    path = write(tmp_path / "d.json", TPMS)
    line = one_line_error(
        invoke("--max-memory", "10MB", "homogenize", str(path), "--resolution", "24"),
        "above the limit of 9.54 MiB",
    )
    assert "lower --resolution" in line
    one_line_error(invoke("--max-memory", "lots", "homogenize", str(path)), "invalid memory")
    # also after the command, and as --max-memory=SIZE
    late = invoke("homogenize", str(path), "--resolution", "24", "--max-memory=10MB")
    one_line_error(late, "above the limit of 9.54 MiB")
    late = invoke("homogenize", str(path), "--max-memory", "10MB", "--resolution", "24")
    one_line_error(late, "above the limit of 9.54 MiB")
    env = {"METAINV_MAX_MEMORY": "1MB"}
    one_line_error(invoke("homogenize", str(path), "--resolution", "24", env=env), "limit")


def test_topopt_nel_is_guarded(tmp_path):
    one_line_error(
        invoke("topopt", "--nel", "2000", "2000", "2000", "--out", str(tmp_path / "t")),
        "8,000,000,000 elements",
    )
    assert not (tmp_path / "t").exists()


def test_export_segments_is_guarded(tmp_path):
    path = write(tmp_path / "truss.json", TRUSS)
    out = tmp_path / "block.stl"
    result = invoke("export", str(path), "--out", str(out), "--segments", "3000")
    one_line_error(result, "at most 256")
    one_line_error(invoke("export", str(path), "--out", str(out), "--segments", "2"), "at least 3")
    assert not out.exists()


def test_design_samples_is_guarded(tmp_path):
    result = invoke("design", "bone3", "--samples", "100000000000", "--out", str(tmp_path / "o"))
    one_line_error(result, "--samples 100000000000 needs about")


def test_parse_size():
    assert parse_size("8GB") == 8 * 10**9 and parse_size("1 GiB") == 2**30
    assert parse_size("2e3") == 2000
    for bad in ("", "-1GB", "1XB", "nan", "0"):
        with pytest.raises(MetainvError):
            parse_size(bad)


# -------------------------------------------------------------------------- data manifests


def _tamper_manifest(folder: Path, change) -> None:
    path = folder / "dataset.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def _escape(manifest):
    manifest["shards"][0]["file"] = "../other/shard-00005.parquet"


@pytest.mark.parametrize(
    "change, fragment",
    [
        (_escape, "inside the data folder"),
        (lambda m: m["shards"][0].pop("sha256"), "'sha256' must be"),
        (lambda m: m.update(shards={"a": 1}), "'shards' must be a list"),
        (lambda m: m["shards"][0].update(rows=m["shards"][0]["rows"] + 1), "rows"),
        (lambda m: m.update(n_rows="many"), "'n_rows' must be"),
        (lambda m: m.update(shards=[*m["shards"], m["shards"][0]]), "recorded twice"),
    ],
    ids=["escape", "no-sha", "shards-dict", "rows", "n_rows", "twice"],
)
def test_hand_edited_manifests_are_one_line(tmp_path, truss_dataset, change, fragment):
    folder = tmp_path / "data"
    shutil.copytree(truss_dataset, folder)
    _tamper_manifest(folder, change)
    result = invoke("train", "truss", "--data", str(folder), "--out", str(tmp_path / "m"))
    one_line_error(result, fragment)


def test_shard_row_count_is_checked(tmp_path, truss_dataset):
    from metainv.data.shards import DatasetError, read_dataset

    folder = tmp_path / "data"
    shutil.copytree(truss_dataset, folder)

    def shift(manifest):  # rows moved between two shards: the totals still agree
        manifest["shards"][0]["rows"] += 1
        manifest["shards"][1]["rows"] -= 1

    _tamper_manifest(folder, shift)
    with pytest.raises(DatasetError, match="rows, its record says"):
        read_dataset(folder)


# ------------------------------------------------------------------- start-up, dependencies


def test_help_and_version_import_no_heavy_module():
    code = (
        "import sys; from metainv.cli import main; sys.argv = ['metainv', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'scipy', 'trimesh', 'matplotlib') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert "HEAVY []" in result.stdout and "design" in result.stdout


def test_the_lazy_help_lists_every_registered_command():
    from typer.main import get_command

    from metainv.cli._app import COMMANDS

    group = get_command(app)
    assert set(group.commands) == set(COMMANDS)


def test_dependency_minimums():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dependencies = {d.split(">")[0].split("=")[0]: d for d in project["dependencies"]}
    assert dependencies["torch"] == "torch>=2.6,<2.14"
    assert dependencies["pyarrow"] == "pyarrow>=14.0.1"
