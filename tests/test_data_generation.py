"""Sharded truss data generation: resumable after SIGKILL and SIGINT, independent of workers and
backend, corruption and foreign files reported, and labels that are the FE of their designs."""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from metainv.cli import app
from metainv.data import DatasetError, GenerationSpec, generate_dataset, read_dataset
from metainv.data.shards import LOCK_NAME, ShardTask, file_sha256, read_manifest, run_shard
from metainv.tensors import C21_NAMES, matrix_from_c21
from metainv.truss.design import TrussDesign, designs_from_arrays
from metainv.truss.homogenize import homogenize

#: ``metainv`` as a subprocess, whatever the environment's scripts folder.
METAINV = [sys.executable, "-c", "from metainv.cli import main; main()"]
LOGGER = "metainv.data.shards"


def cli_arguments(spec: GenerationSpec, out: Path, *extra: str) -> list[str]:
    return [
        "generate",
        "truss",
        "--n",
        str(spec.n_rows),
        "--out",
        str(out),
        "--seed",
        str(spec.seed),
        "--shard-size",
        str(spec.shard_size),
        *extra,
    ]


def _default_sigint() -> None:
    # An ignored SIGINT is inherited across exec, and something in this test process (dask's
    # cluster machinery, when other tests ran first) can leave it ignored: give the child the
    # disposition a terminal would, so that Python installs its KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(arguments: list[str]) -> subprocess.Popen:
    """``metainv ARGUMENTS`` in its own session (so a signal can go to its process group)."""
    return subprocess.Popen(
        METAINV + arguments,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )


def wait_for_first_shard(out: Path, process: subprocess.Popen, timeout: float = 180) -> dict:
    """Poll the manifest until a shard is recorded (the manifest is replaced atomically)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        manifest = read_manifest(out) if (out / "dataset.json").exists() else None
        if manifest and manifest["shards"]:
            return manifest
        if process.poll() is not None:
            pytest.fail(f"metainv exited early ({process.returncode}): {process.stderr.read()}")
        time.sleep(0.02)
    process.kill()
    pytest.fail("no shard was recorded in time")


def live_processes_in_group(group: int) -> list[int]:
    """Processes (not zombies) of a process group, from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def assert_group_gone(group: int, timeout: float = 20) -> None:
    if not Path("/proc/self/stat").exists():
        return
    deadline = time.monotonic() + timeout
    while live_processes_in_group(group) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_processes_in_group(group) == [], "worker processes survived the interrupt"


def assert_consistent_partial(out: Path) -> dict:
    """An interrupted folder: incomplete manifest, every recorded shard intact."""
    manifest = read_manifest(out)
    assert not manifest["complete"]
    assert 1 <= len(manifest["shards"]) < manifest["n_shards"]
    for record in manifest["shards"]:
        assert file_sha256(out / record["file"]) == record["sha256"]
    with pytest.raises(DatasetError, match="incomplete"):
        read_dataset(out)
    return manifest


# --------------------------------------------------------------------------------------------
# Interruptions
# --------------------------------------------------------------------------------------------


def test_sigkill_midway_then_rerun_gives_the_rows_of_an_uninterrupted_run(
    tmp_path, long_truss_spec, long_truss_dataset
):
    out = tmp_path / "killed"
    process = start(cli_arguments(long_truss_spec, out, "--workers", "1"))
    wait_for_first_shard(out, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert_consistent_partial(out)

    manifest = generate_dataset(long_truss_spec, out)  # the same generation, re-run
    assert manifest["complete"]
    assert read_dataset(out).equals(read_dataset(long_truss_dataset))


@pytest.mark.parametrize("backend", ["local", "dask"])
def test_sigint_stops_workers_keeps_manifest_and_the_printed_resume_command_finishes_it(
    tmp_path, long_truss_spec, long_truss_dataset, backend
):
    """Ctrl-C on a 2-worker run, then the command it prints. Every shard is computed by 2 worker
    processes of ``backend``, so the comparison with the single-process reference also shows that
    the rows do not depend on --workers (1 vs 2) or --backend (local vs dask)."""
    out = tmp_path / f"interrupted-{backend}"
    process = start(cli_arguments(long_truss_spec, out, "--workers", "2", "--backend", backend))
    wait_for_first_shard(out, process)
    os.killpg(process.pid, signal.SIGINT)  # like Ctrl-C in a terminal: the whole group
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert_group_gone(process.pid)
    assert_consistent_partial(out)
    assert "interrupted" in stderr and "resume with:" in stderr
    command = shlex.split(stderr[stderr.index("resume with:") + len("resume with:") :])
    assert command[:3] == ["metainv", "generate", "truss"]
    assert command[command.index("--out") + 1] == str(out)
    assert command[command.index("--backend") + 1] == backend

    resumed = CliRunner().invoke(app, command[1:])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming:" in resumed.output
    assert read_dataset(out).equals(read_dataset(long_truss_dataset))  # bit for bit


# --------------------------------------------------------------------------------------------
# Reproducibility
# --------------------------------------------------------------------------------------------


def test_a_shard_depends_only_on_seed_and_index(tmp_path, truss_spec, truss_dataset):
    task = ShardTask(str(tmp_path), "truss", 3, 10, truss_spec.seed, dict(truss_spec.params))
    run_shard(task)
    alone = pq.read_table(tmp_path / task.file_name)
    assert alone.equals(pq.read_table(truss_dataset / task.file_name))


# --------------------------------------------------------------------------------------------
# Damaged folders
# --------------------------------------------------------------------------------------------


def test_corrupt_and_missing_shards_are_reported_by_name_and_regenerated(
    tmp_path, truss_spec, truss_dataset, caplog
):
    out = shutil.copytree(truss_dataset, tmp_path / "damaged")
    shard = out / "shard-00003.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    (out / "shard-00006.parquet").unlink()
    with pytest.raises(DatasetError, match=r"shard-00003\.parquet is corrupt"):
        read_dataset(out)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        generate_dataset(truss_spec, out)
    assert "shard-00003.parquet is corrupt (checksum mismatch); regenerating it" in caplog.text
    assert "shard-00006.parquet is recorded but missing; regenerating it" in caplog.text
    assert read_dataset(out).equals(read_dataset(truss_dataset))


def test_foreign_parquet_file_is_reported_and_never_read(
    tmp_path, truss_spec, truss_dataset, caplog
):
    out = shutil.copytree(truss_dataset, tmp_path / "foreign")
    pq.write_table(pa.table({"C11": [1.0, 2.0]}), out / "extra.parquet")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        manifest = generate_dataset(truss_spec, out)
    assert "extra.parquet is not recorded in dataset.json; it will not be used" in caplog.text
    assert "extra.parquet" not in {record["file"] for record in manifest["shards"]}
    assert read_dataset(out).equals(read_dataset(truss_dataset))


@pytest.mark.parametrize(
    ("option", "value", "key"),
    [("--seed", "8", "seed"), ("--n", "90", "n_rows"), ("--shard-size", "20", "shard_size")],
)
def test_a_folder_of_another_data_set_is_refused(
    tmp_path, truss_spec, truss_dataset, option, value, key
):
    out = shutil.copytree(truss_dataset, tmp_path / "other")
    before = (out / "dataset.json").read_bytes()
    arguments = cli_arguments(truss_spec, out)
    arguments[arguments.index(option) + 1] = value
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2
    message = result.output.strip()
    assert message.startswith("error:") and "\n" not in message
    assert f"holds a different data set ({key}:" in message and "choose another --out" in message
    assert (out / "dataset.json").read_bytes() == before

    with pytest.raises(DatasetError, match="seed: 7 there, 8 requested"):
        generate_dataset(dataclasses.replace(truss_spec, seed=8), out)


def test_a_folder_being_written_is_refused(tmp_path, truss_spec, truss_dataset):
    import fcntl

    out = shutil.copytree(truss_dataset, tmp_path / "locked")
    with open(out / LOCK_NAME, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(DatasetError, match="being written by another metainv process"):
            generate_dataset(truss_spec, out)
    assert generate_dataset(truss_spec, out)["complete"]  # lock released: fine again


def test_unknown_backend_and_bad_workers_are_one_line_errors(tmp_path, truss_spec):
    cases = (
        (["--backend", "spark"], "unknown backend 'spark'"),
        (["--workers", "0"], "--workers must be >= 1"),
        (["--scheduler", "tcp://127.0.0.1:8786"], "use --backend dask"),
    )
    for extra, reason in cases:
        result = CliRunner().invoke(app, cli_arguments(truss_spec, tmp_path / "x", *extra))
        assert result.exit_code == 2 and reason in result.output


# --------------------------------------------------------------------------------------------
# The labels are the FE stiffness of the stored designs
# --------------------------------------------------------------------------------------------


def stiffness(table: pa.Table, prefix: str = "") -> np.ndarray:
    c21 = np.stack([table[prefix + name].to_numpy() for name in C21_NAMES], axis=1)
    return matrix_from_c21(c21)


def designs(table: pa.Table, rows: np.ndarray) -> list[TrussDesign]:
    def column(name: str) -> np.ndarray:
        return table[name].to_numpy()[rows]

    def block(names: list[str]) -> np.ndarray:
        return np.stack([column(name) for name in names], axis=1)

    arrays = {
        "cells": block(["S1", "S2", "S3"]).astype(np.int64),
        "tessellations": block(["t1", "t2", "t3"]).astype(np.int64),
        "relative_density": column("relative_density"),
        "U": block(["U1", "U2", "U3"]),
        "V": block(["V1", "V2", "V3"]),
    }
    for R in ("R1", "R2"):
        arrays[R] = block([f"{R}_{i}{j}" for i in (1, 2, 3) for j in (1, 2, 3)]).reshape(-1, 3, 3)
    return designs_from_arrays(arrays)


def test_every_stored_stiffness_is_symmetric_positive_definite(truss_dataset):
    table = read_dataset(truss_dataset)
    for prefix in ("", "stage1_"):
        C = stiffness(table, prefix)
        np.testing.assert_array_equal(C, np.swapaxes(C, 1, 2))
        assert np.linalg.eigvalsh(C).min() > 0


def test_rehomogenizing_a_sample_reproduces_the_stored_labels(truss_dataset):
    table = read_dataset(truss_dataset)
    rows = np.random.default_rng(0).choice(table.num_rows, size=6, replace=False)
    stored, stage1 = stiffness(table)[rows], stiffness(table, "stage1_")[rows]
    identity = np.eye(3)
    for k, design in enumerate(designs(table, rows)):
        C = homogenize(design).C
        assert np.abs(C - stored[k]).max() <= 1e-10 * np.abs(C).max()
        # stage 1: the same topology, rho and U with V = I and R1 = R2 = I
        first = dataclasses.replace(design, V=np.ones(3), R1=identity, R2=identity)
        C1 = homogenize(first).C
        assert np.abs(C1 - stage1[k]).max() <= 1e-10 * np.abs(C1).max()
