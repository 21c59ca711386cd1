"""Sharded, resumable, reproducible data-set generation.

A data set is a folder of Parquet shards plus a ``dataset.json`` manifest. Shard ``i`` draws its
rows from ``SeedSequence([seed, i])`` so the data are the same whatever the number of workers,
the backend, or the order in which shards finish. Every shard is written atomically (temporary
file, fsync, rename) and recorded in the manifest (itself replaced atomically) with its row count
and SHA-256; re-running the same command after an interruption keeps the recorded shards and
redoes the rest. A recorded shard whose checksum does not match, or a shard file the manifest
does not know, is reported by name and regenerated, never silently used.

Shards are computed by a backend from :data:`BACKENDS`: ``local`` (this process, or a pool of
spawned processes) or ``dask`` (a LocalCluster or an existing scheduler). Each shard is computed
single-threaded (:func:`single_threaded`), so the rows are identical bit for bit whatever the
backend or the number of workers. Interrupting (Ctrl-C, SIGTERM in the CLI) stops the workers;
the manifest then lists exactly the finished shards. A lock file keeps two runs from writing to
the same folder at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import ExitStack, closing, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metainv.errors import MetainvError
from metainv.family import get_family
from metainv.files import read_json, temporary_path, write_text_atomic
from metainv.version import VERSION

logger = logging.getLogger(__name__)

MANIFEST_NAME = "dataset.json"
LOCK_NAME = ".dataset.lock"
SHARD_PATTERN = "shard-{index:05d}.parquet"


class DatasetError(MetainvError):
    """A data-set folder is inconsistent with the requested generation or corrupt."""


@dataclass(frozen=True)
class GenerationSpec:
    """What to generate: the family, how many rows, how they are cut into shards, the seed."""

    family: str
    n_rows: int
    shard_size: int
    seed: int
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        get_family(self.family).require("generate")
        if self.n_rows < 1:
            raise MetainvError(f"--n must be a positive number of rows, got {self.n_rows}")
        if self.shard_size < 1:
            raise MetainvError(f"--shard-size must be positive, got {self.shard_size}")
        if self.seed < 0:
            raise MetainvError(f"--seed must be >= 0, got {self.seed}")


@dataclass(frozen=True)
class ShardTask:
    """One unit of work: shard ``index`` with ``rows`` rows, written into ``folder``."""

    folder: str
    family: str
    index: int
    rows: int
    seed: int
    params: Mapping[str, Any]

    @property
    def file_name(self) -> str:
        return SHARD_PATTERN.format(index=self.index)


@dataclass(frozen=True)
class ShardRecord:
    """A finished shard as recorded in the manifest."""

    index: int
    file: str
    rows: int
    sha256: str
    seconds: float


def shard_tasks(spec: GenerationSpec, folder: Path) -> list[ShardTask]:
    """All shards of ``spec`` (the last one may be shorter)."""
    counts = [spec.shard_size] * (spec.n_rows // spec.shard_size)
    if spec.n_rows % spec.shard_size:
        counts.append(spec.n_rows % spec.shard_size)
    params = dict(spec.params)
    return [
        ShardTask(str(folder), spec.family, index, rows, spec.seed, params)
        for index, rows in enumerate(counts)
    ]


def shard_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of shard ``index``: independent of workers and completion order."""
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def generation_parameters(family: str, **options: Any) -> dict[str, Any]:
    """The family's generation parameters (ranges, base material) as stored in the manifest;
    ``options`` are the family's generation options (an error for one it does not take)."""
    chosen = get_family(family)
    function = chosen.generation_parameters
    if function is None:
        raise MetainvError(f"the {family} family does not support data generation")
    return function(**chosen.accepts("generate", options))


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run BLAS/LAPACK and torch on one thread, restoring the previous settings after.

    Multi-threaded BLAS reductions round differently with the number of threads, so without this
    a shard computed in this process, in a spawned worker or on a dask worker (which limit their
    threads differently) would differ in the last bits. Workers, not threads, use the cores.
    """
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)


def _single_threaded_environment() -> None:
    """Worker initializer: one BLAS thread from the start (see :func:`single_threaded`)."""
    for variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ[variable] = "1"


def run_shard(task: ShardTask) -> ShardRecord:
    """Compute one shard (single-threaded, see :func:`single_threaded`) and write it atomically.
    Safe to run in any process or machine that sees ``task.folder``."""
    start = time.perf_counter()
    with single_threaded():
        shard_function = get_family(task.family).require("generate")
        columns = shard_function(task.rows, shard_rng(task.seed, task.index), task.params)
    table = pa.table(columns)
    metadata = {
        b"metainv.family": task.family.encode(),
        b"metainv.seed": str(task.seed).encode(),
        b"metainv.shard": str(task.index).encode(),
        b"metainv.rows": str(task.rows).encode(),
    }
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    path = Path(task.folder) / task.file_name
    temporary = temporary_path(path)
    pq.write_table(table, temporary, compression="zstd")
    _fsync(temporary)
    os.replace(temporary, path)
    return ShardRecord(
        task.index,
        task.file_name,
        task.rows,
        file_sha256(path),
        round(time.perf_counter() - start, 3),
    )


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_record(folder: Path) -> dict[str, Any]:
    """Identity of a complete data set for a model manifest (checksum of its manifest)."""
    manifest = read_manifest(folder)
    if manifest is None:
        raise DatasetError(f"{folder} is not a metainv data set (no {MANIFEST_NAME})")
    return {
        "folder": str(folder),
        "manifest_sha256": file_sha256(Path(folder) / MANIFEST_NAME),
        "rows": manifest.get("n_rows"),
        "seed": manifest.get("seed"),
        "code_version": manifest.get("code_version"),
    }


def code_version() -> str:
    """Package version plus the git commit of the source tree when there is one."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{VERSION}+{commit}" if commit else VERSION


# ------------------------------------------------------------------------------- manifest


def _manifest_header(spec: GenerationSpec) -> dict[str, Any]:
    return {
        "schema_version": spec.params.get("schema_version"),
        "family": spec.family,
        "n_rows": spec.n_rows,
        "shard_size": spec.shard_size,
        "seed": spec.seed,
        "params": dict(spec.params),
    }


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of ``folder``, or None when there is none."""
    path = Path(folder) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        manifest = read_json(path)
    except MetainvError as error:
        raise DatasetError(f"{error}; remove it to start over") from None
    return validate_manifest(manifest, path)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_sha256(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 64
        and all(c in "0123456789abcdef" for c in value.lower())
    )


def _shard_file_name(value: Any) -> bool:
    """A plain file name inside the data folder (no folder part, no ``..``, no hidden file)."""
    return (
        isinstance(value, str)
        and value.endswith(".parquet")
        and Path(value).name == value
        and "/" not in value
        and "\\" not in value
        and not value.startswith(".")
    )


def validate_manifest(manifest: Any, path: Path) -> dict[str, Any]:
    """``manifest`` checked against the schema metainv writes (a one-line
    :class:`DatasetError` naming ``path`` otherwise): an object; counts are non-negative
    integers; each shard record has an integer ``index``, a ``file`` confined to the folder, an
    integer ``rows`` and a 64-digit hex ``sha256``; indices and files are unique; a complete data
    set's records add up to its ``n_rows`` and ``n_shards``."""

    def bad(message: str) -> DatasetError:
        return DatasetError(f"{path}: {message}; regenerate the data set or fix the file")

    if not isinstance(manifest, dict):
        raise bad(f"expected a JSON object, got {type(manifest).__name__}")
    for key in ("n_rows", "n_shards", "shard_size"):
        if key in manifest and manifest[key] is not None and not _is_count(manifest[key]):
            raise bad(f"{key!r} must be a non-negative integer, got {manifest[key]!r}")
    shards = manifest.get("shards", [])
    if not isinstance(shards, list):
        raise bad(f"'shards' must be a list, got {type(shards).__name__}")
    indices, files = set(), set()
    for position, record in enumerate(shards):
        where = f"shard record {position + 1}"
        if not isinstance(record, dict):
            raise bad(f"{where} must be an object, got {type(record).__name__}")
        for key in ("index", "rows"):
            if not _is_count(record.get(key)):
                raise bad(f"{where}: {key!r} must be a non-negative integer")
        if not _shard_file_name(record.get("file")):
            raise bad(
                f"{where}: 'file' must be a .parquet file name inside the data folder, got "
                f"{record.get('file')!r}"
            )
        if not _is_sha256(record.get("sha256")):
            raise bad(f"{where}: 'sha256' must be a 64-digit hex string")
        if record["index"] in indices or record["file"] in files:
            raise bad(f"{where}: shard {record['index']} ({record['file']}) is recorded twice")
        indices.add(record["index"])
        files.add(record["file"])
    if manifest.get("complete"):
        for key in ("n_rows", "n_shards"):
            if not _is_count(manifest.get(key)):
                raise bad(f"a complete data set needs {key!r} (a non-negative integer)")
        total = sum(record["rows"] for record in shards)
        if manifest.get("n_rows") is not None and total != manifest["n_rows"]:
            raise bad(f"the shards hold {total} rows, 'n_rows' says {manifest['n_rows']}")
        if manifest.get("n_shards") is not None and len(shards) != manifest["n_shards"]:
            raise bad(f"{len(shards)} shard records, 'n_shards' says {manifest['n_shards']}")
    return manifest


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Replace the manifest atomically."""
    write_text_atomic(Path(folder) / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True))


def _check_compatible(existing: Mapping[str, Any], header: Mapping[str, Any], folder: Path) -> None:
    for key, value in header.items():
        if existing.get(key) != value:
            raise DatasetError(
                f"{folder} holds a different data set ({key}: {existing.get(key)!r} there, "
                f"{value!r} requested); choose another --out or remove the folder"
            )


def verified_records(folder: Path, manifest: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    """Recorded shards whose file exists with the recorded checksum; others are reported."""
    kept = {}
    for record in manifest.get("shards", []):
        path = Path(folder) / record["file"]
        if not path.exists():
            logger.warning("shard %s is recorded but missing; regenerating it", record["file"])
        elif file_sha256(path) != record["sha256"]:
            logger.warning(
                "shard %s is corrupt (checksum mismatch); regenerating it", record["file"]
            )
        else:
            kept[int(record["index"])] = record
    return kept


def _report_unknown_files(folder: Path, known: set[str], pending: set[str]) -> None:
    """Warn about Parquet files the manifest does not record (they are never read) and remove
    temporary files of interrupted writes. ``pending``: names of shards still to be made."""
    for path in sorted(Path(folder).glob("*.parquet")):
        if path.name in known:
            continue
        if path.name in pending:
            logger.warning(
                "%s is not recorded in %s (written after an interruption?); regenerating it",
                path.name,
                MANIFEST_NAME,
            )
        else:
            logger.warning(
                "%s is not recorded in %s; it will not be used", path.name, MANIFEST_NAME
            )
    for path in Path(folder).glob(".*.tmp"):
        path.unlink(missing_ok=True)


# ------------------------------------------------------------------------------- backends


def _init_worker() -> None:
    """Initializer of local worker processes.

    Ctrl-C reaches the whole process group, but only the parent decides what to do with it (it
    stops the workers), so workers ignore SIGINT. A worker whose parent dies (even by SIGKILL)
    exits at once instead of finishing its queue as an orphan.
    """
    import multiprocessing
    import multiprocessing.connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:

        def exit_with_parent() -> None:
            multiprocessing.connection.wait([parent.sentinel])
            os._exit(1)

        threading.Thread(target=exit_with_parent, daemon=True).start()


def _terminate_workers(executor: Any) -> None:
    """Stop the processes of a ProcessPoolExecutor now, running shards included."""
    terminate = getattr(executor, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        process.terminate()


def _run_local(
    tasks: list[Any], workers: int, scheduler: str | None, function: Callable = run_shard
) -> Generator[Any, None, None]:
    """Shards (or any picklable tasks of ``function``) in this process (``workers == 1``) or in
    a pool of spawned processes."""
    if workers <= 1:
        for task in tasks:
            yield function(task)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker
    )
    finished = False
    try:
        futures = [executor.submit(function, task) for task in tasks]
        for future in as_completed(futures):
            yield future.result()
        finished = True
    finally:
        if not finished:  # interrupted, failed, or the consumer stopped early: stop running
            _terminate_workers(executor)  # shards now (before shutdown forgets the processes)
        executor.shutdown(wait=True, cancel_futures=True)


def _run_dask(
    tasks: list[Any], workers: int, scheduler: str | None, function: Callable = run_shard
) -> Generator[Any, None, None]:
    """Shards on a dask.distributed cluster: ``scheduler`` (an address; its workers must see the
    data-set folder at the same path) or a LocalCluster of ``workers`` single-threaded worker
    processes, closed when done or interrupted."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise MetainvError(
            "--backend dask needs dask.distributed: pip install 'metainv[dask]'"
        ) from None
    with ExitStack() as stack:
        worker_pids: list[int] = []
        if scheduler:
            try:
                client = stack.enter_context(Client(scheduler, timeout="30s"))
            except OSError as error:
                raise MetainvError(f"cannot reach dask scheduler {scheduler}: {error}") from None
        else:
            with _children_ignore_sigint():
                cluster = stack.enter_context(
                    LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=logging.ERROR,
                    )
                )
            client = stack.enter_context(Client(cluster))
            worker_pids = list(client.run(os.getpid).values())
        futures = []
        finished = False
        try:
            futures = [client.submit(function, task, pure=False) for task in tasks]
            for future in as_completed(futures):
                yield future.result()
            finished = True
        finally:
            # Pending shards are cancelled. Running ones are stopped by killing the local
            # workers; on an external cluster they run to the end and write a file that the
            # next run reports as unrecorded and regenerates.
            client.cancel(futures)
            if not finished:
                _kill(worker_pids)


@contextmanager
def _children_ignore_sigint() -> Iterator[None]:
    """Processes started inside inherit SIGINT ignored, so that Ctrl-C (sent to the whole
    process group) reaches only this process, which then stops them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _kill(pids: list[int]) -> None:
    """Stop worker processes that this process started, by their ids."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:  # already gone
            pass


#: Runs shards and yields their records as they finish; closing it stops the workers.
Backend = Callable[..., Generator[Any, None, None]]

#: backend name -> function(tasks, workers, scheduler).
BACKENDS: dict[str, Backend] = {
    "local": _run_local,
    "dask": _run_dask,
}


def run_tasks(
    function: Callable[[Any], Any],
    tasks: list[Any],
    workers: int = 1,
    backend: str = "local",
    scheduler: str | None = None,
) -> Generator[Any, None, None]:
    """Run ``function`` on each picklable task with a backend of :data:`BACKENDS` (the same
    processes, interruption and dask handling as the shards) and yield the results as they
    finish (in any order). ``function`` must be importable (module level) for the workers."""
    if backend not in BACKENDS:
        raise MetainvError(f"unknown backend {backend!r} (expected: {', '.join(BACKENDS)})")
    if workers < 1:
        raise MetainvError(f"--workers must be >= 1, got {workers}")
    yield from BACKENDS[backend](tasks, workers, scheduler, function=function)  # type: ignore[call-arg]


@contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """Hold an advisory lock on ``folder`` (released by the kernel even on SIGKILL)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    with open(folder / LOCK_NAME, "a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DatasetError(
                f"{folder} is being written by another metainv process; wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def generate_dataset(
    spec: GenerationSpec,
    folder: str | Path,
    workers: int = 1,
    backend: str = "local",
    scheduler: str | None = None,
    on_shard: Callable[[ShardRecord], None] | None = None,
    on_start: Callable[[Mapping[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Generate (or resume) the data set ``spec`` in ``folder``; returns the final manifest.

    ``on_start`` is called once with the manifest of the verified shards kept from an earlier
    run, ``on_shard`` after each newly finished shard (progress reporting). Interrupting (e.g.
    KeyboardInterrupt) stops the workers and leaves the manifest listing exactly the finished,
    verified shards; calling again with the same arguments resumes.
    """
    if backend not in BACKENDS:
        raise MetainvError(f"unknown backend {backend!r}; expected one of {sorted(BACKENDS)}")
    if workers < 1:
        raise MetainvError(f"--workers must be >= 1, got {workers}")
    if scheduler and backend != "dask":
        raise MetainvError("--scheduler is the address of a dask scheduler: use --backend dask")
    folder = Path(folder).resolve()  # workers (other processes, other machines) need it whole
    folder.mkdir(parents=True, exist_ok=True)
    with _exclusive(folder):
        return _generate_locked(spec, folder, workers, backend, scheduler, on_shard, on_start)


def _generate_locked(
    spec: GenerationSpec,
    folder: Path,
    workers: int,
    backend: str,
    scheduler: str | None,
    on_shard: Callable[[ShardRecord], None] | None,
    on_start: Callable[[Mapping[str, Any]], None] | None,
) -> dict[str, Any]:
    header = _manifest_header(spec)
    existing = read_manifest(folder)
    if existing is not None:
        _check_compatible(existing, header, folder)
    records = verified_records(folder, existing) if existing else {}
    tasks = shard_tasks(spec, folder)
    _report_unknown_files(
        folder,
        {records[i]["file"] for i in records},
        {task.file_name for task in tasks if task.index not in records},
    )
    manifest = {
        **header,
        "code_version": code_version(),
        "python": platform.python_version(),
        "created": (existing or {}).get("created", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
        "n_shards": len(tasks),
        "shards": [records[i] for i in sorted(records)],
        "complete": len(records) == len(tasks),
    }
    write_manifest(folder, manifest)
    if on_start is not None:
        on_start(manifest)
    pending = [task for task in tasks if task.index not in records]
    if not pending:
        return manifest
    finished = BACKENDS[backend](pending, min(workers, len(pending)), scheduler)
    with closing(finished):  # stops the workers now, also when the loop body is interrupted
        for record in finished:
            records[record.index] = asdict(record)
            manifest["shards"] = [records[i] for i in sorted(records)]
            manifest["complete"] = len(records) == len(tasks)
            write_manifest(folder, manifest)
            if on_shard is not None:
                on_shard(record)
    return manifest


def complete_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a complete data set in ``folder``; a clear error otherwise."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise DatasetError(f"{folder} has no {MANIFEST_NAME}; is it a metainv data set?")
    if not manifest.get("complete"):
        raise DatasetError(
            f"{folder} is incomplete ({len(manifest.get('shards', []))} of "
            f"{manifest.get('n_shards')} shards); re-run the generate command to finish it"
        )
    return manifest


def read_shard(
    folder: str | Path,
    record: Mapping[str, Any],
    columns: list[str] | None = None,
    verify: bool = True,
) -> pa.Table:
    """The table of one recorded shard (``record`` from the manifest), checksum verified."""
    path = Path(folder) / record["file"]
    if not path.is_file():
        raise DatasetError(f"shard {record['file']} of {folder} is missing")
    if verify and file_sha256(path) != record["sha256"]:
        raise DatasetError(f"shard {record['file']} is corrupt (checksum mismatch)")
    try:
        table = pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError, ValueError) as error:
        reason = " ".join(str(error).split())[:200]
        raise DatasetError(f"shard {record['file']} cannot be read as Parquet ({reason})") from None
    if table.num_rows != int(record["rows"]):
        raise DatasetError(
            f"shard {record['file']} holds {table.num_rows} rows, its record says {record['rows']}"
        )
    return table


def iter_shards(
    folder: str | Path,
    columns: list[str] | None = None,
    verify: bool = True,
    order: Iterable[int] | None = None,
) -> Iterator[tuple[int, pa.Table]]:
    """``(first_row, table)`` per shard of a complete data set, one shard in memory at a time.

    ``first_row`` is the global index of the shard's first row; ``columns`` selects columns (all
    when None); ``verify`` checks each shard's SHA-256 first; ``order`` lists shard indices in
    the order wanted (default: index order, i.e. row order).
    """
    manifest = complete_manifest(folder)
    records = sorted(manifest["shards"], key=lambda record: record["index"])
    starts = np.concatenate([[0], np.cumsum([int(r["rows"]) for r in records])]).astype(int)
    for k in range(len(records)) if order is None else order:
        yield int(starts[k]), read_shard(folder, records[k], columns, verify)


def read_dataset(
    folder: str | Path, verify: bool = True, columns: list[str] | None = None
) -> pa.Table:
    """All rows of a complete data set, shards in index order (checksums verified)."""
    tables = [table for _, table in iter_shards(folder, columns, verify)]
    return pa.concat_tables(tables)
