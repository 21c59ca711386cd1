"""Background jobs of the web app: a bounded queue of design and grading runs, persisted on disk.

Each job lives in its own folder ``ROOT/<id>`` (the id is made here, 12 hex digits; no user
string reaches a path) with ``job.json`` (kind, parameters, status, progress, log, error; always
written atomically through :mod:`metainv.files`) and the job's results under ``result/``.
A job runs in its own process (``spawn``), so that it can be cancelled and stopped at its time
limit, and a crash ends the job, never the server. At most ``workers`` jobs run at a time; at
most ``max_queued`` wait. Jobs found queued or running when the manager starts (a server
restart) are queued again; finished jobs stay listed with their results.

The work itself is the public API: :func:`metainv.design` and :func:`metainv.grade`.
"""

from __future__ import annotations

import multiprocessing
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metainv.errors import MetainvError, describe
from metainv.files import read_json, write_text_atomic

#: Job states; the last three are final.
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINAL = frozenset({DONE, FAILED, CANCELLED})
JOB_FILE = "job.json"
RESULT_FOLDER = "result"
#: Steps kept in a job's log.
LOG_LINES = 50
_ID = re.compile(r"^[0-9a-f]{12}$")
_FRACTION = re.compile(r"(\d+)\s*/\s*(\d+)")


def valid_job_id(job_id: str) -> bool:
    """True for a string of the form of the ids this module makes (12 lowercase hex digits)."""
    return bool(_ID.match(job_id))


def read_state(folder: Path) -> dict[str, Any]:
    """The ``job.json`` of a job folder."""
    state = read_json(folder / JOB_FILE)
    if not isinstance(state, dict):
        raise MetainvError(f"{folder / JOB_FILE}: not a job record")
    return state


def write_state(folder: Path, state: Mapping[str, Any]) -> None:
    """Write a job's ``job.json`` atomically."""
    import json

    write_text_atomic(folder / JOB_FILE, json.dumps(dict(state), indent=1))


def progress_of(message: str, previous: float) -> float:
    """Progress (0..1) after a step message: ``k/n`` in the message maps to 0.1..0.95, other
    steps keep the previous value (at least 0.05 once started)."""
    match = _FRACTION.search(message)
    if match and int(match.group(2)) > 0:
        value = 0.1 + 0.85 * min(int(match.group(1)), int(match.group(2))) / int(match.group(2))
        return max(previous, value)
    return max(previous, 0.05)


def run_design(params: Mapping[str, Any], out: Path, on_step: Callable[[str], None]) -> None:
    """A design job: the target (text, unit, base modulus) designed by :func:`metainv.design`,
    written to ``out`` (designs.json, STL and PNG per candidate)."""
    import metainv
    from metainv.targets import read_target_text

    target = read_target_text(
        params["target"]["text"],
        name=params["target"].get("name", "target"),
        unit=params["target"].get("unit"),
        base_modulus=params["target"].get("base_modulus"),
    )
    result = metainv.design(target, family=params["family"], on_step=on_step, **params["options"])
    on_step("writing designs.json, STL and PNG files")
    result.write(out)


def run_grade(params: Mapping[str, Any], out: Path, on_step: Callable[[str], None]) -> None:
    """A grading job: candidates of a finished design job, placed evenly along x in a box,
    graded by :func:`metainv.grade` into ``out``."""
    import metainv

    designs = Path(params["designs"])
    box = [float(b) for b in params["box"]]
    picks = [int(k) for k in params["candidates"]]
    controls = []
    for index, candidate in enumerate(picks):
        x = box[0] * index / (len(picks) - 1) if len(picks) > 1 else box[0] / 2
        controls.append(((x, box[1] / 2, box[2] / 2), metainv.as_design(designs, candidate)[1]))
    metainv.grade(controls, out, box=box, on_step=on_step, force=True, check=False)


#: Job kinds -> the function that runs them (``(params, out folder, on_step) -> None``).
KINDS: dict[str, Callable[[Mapping[str, Any], Path, Callable[[str], None]], None]] = {
    "design": run_design,
    "grade": run_grade,
}


def job_process(folder: str) -> None:
    """Entry point of a job's process: run it, recording progress, result and error."""
    path = Path(folder)
    state = read_state(path)
    state.update(status=RUNNING, started=time.time(), progress=0.02, error=None)
    state["log"] = []
    write_state(path, state)

    def on_step(message: str) -> None:
        state["progress"] = progress_of(message, state["progress"])
        state["message"] = message
        state["log"] = [*state["log"], message][-LOG_LINES:]
        write_state(path, state)

    try:
        KINDS[state["kind"]](state["params"], path / RESULT_FOLDER, on_step)
    except Exception as error:
        state.update(status=FAILED, error=describe(error), finished=time.time())
        write_state(path, state)
        return
    state.update(status=DONE, progress=1.0, message="done", finished=time.time())
    write_state(path, state)


@dataclass
class JobManager:
    """Runs jobs of :data:`KINDS` in processes, ``workers`` at a time, from ``root``.

    ``max_queued``: jobs that may wait (more are refused); ``time_limit``: seconds a job may
    run before it is stopped and marked failed."""

    root: Path
    workers: int = 1
    max_queued: int = 8
    time_limit: float = 600.0
    poll: float = 0.2
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _queue: list[str] = field(default_factory=list, init=False, repr=False)
    _running: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    def start(self) -> None:
        """Queue again the jobs left queued or running (a restart) and start the scheduler."""
        self.root = Path(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        for state in sorted(self.list(), key=lambda s: s.get("created", 0)):
            if state["status"] in (QUEUED, RUNNING):
                folder = self.root / state["id"]
                state.update(status=QUEUED, progress=0.0, message="queued again after a restart")
                write_state(folder, state)
                self._queue.append(state["id"])
        self._thread = threading.Thread(target=self._loop, name="metainv-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the scheduler and the running processes (their jobs stay ``running`` on disk
        and are queued again at the next start)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for process, _ in self._running.values():
                process.terminate()
                process.join(timeout=5)
            self._running.clear()

    def submit(self, kind: str, params: Mapping[str, Any]) -> str:
        """Queue a job of ``kind`` with JSON-ready ``params``; returns its new id."""
        if kind not in KINDS:
            raise MetainvError(f"unknown job kind {kind!r}; expected one of {', '.join(KINDS)}")
        with self._lock:
            idle_workers = max(0, self.workers - len(self._running))
            if len(self._queue) >= self.max_queued + idle_workers:
                raise MetainvError(
                    f"the job queue is full ({self.max_queued} waiting); wait for a job to "
                    "finish or cancel one"
                )
            job_id = secrets.token_hex(6)
            folder = self.root / job_id
            folder.mkdir(parents=True)
            state = {
                "id": job_id,
                "kind": kind,
                "params": dict(params),
                "status": QUEUED,
                "progress": 0.0,
                "message": "queued",
                "log": [],
                "error": None,
                "created": time.time(),
                "started": None,
                "finished": None,
            }
            write_state(folder, state)
            self._queue.append(job_id)
        return job_id

    def folder(self, job_id: str) -> Path:
        """The folder of an existing job (an unknown or malformed id is refused)."""
        if not valid_job_id(job_id) or not (self.root / job_id / JOB_FILE).is_file():
            raise MetainvError(f"no job {job_id!r}")
        return self.root / job_id

    def state(self, job_id: str) -> dict[str, Any]:
        """The current record of a job (with its queue position while queued)."""
        state = read_state(self.folder(job_id))
        with self._lock:
            if job_id in self._queue:
                state["queue_position"] = self._queue.index(job_id) + 1
        return state

    def list(self) -> list[dict[str, Any]]:
        """Every job's record, newest first."""
        states = []
        for folder in self.root.iterdir() if self.root.is_dir() else []:
            if valid_job_id(folder.name) and (folder / JOB_FILE).is_file():
                try:
                    states.append(read_state(folder))
                except (OSError, ValueError):
                    continue
        return sorted(states, key=lambda s: s.get("created", 0), reverse=True)

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job (a finished one is left as it is)."""
        folder = self.folder(job_id)
        with self._lock:
            if job_id in self._queue:
                self._queue.remove(job_id)
            running = self._running.pop(job_id, None)
            if running is not None:
                running[0].terminate()
                running[0].join(timeout=10)
            state = read_state(folder)
            if state["status"] not in FINAL:
                state.update(status=CANCELLED, message="cancelled", finished=time.time())
                write_state(folder, state)
        return state

    def _loop(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self._tick()
            except Exception:  # the scheduler must outlive any one job's trouble
                continue

    def _tick(self) -> None:
        with self._lock:
            for job_id, (process, started) in list(self._running.items()):
                folder = self.root / job_id
                if not process.is_alive():
                    process.join()
                    del self._running[job_id]
                    state = read_state(folder)
                    if state["status"] not in FINAL:
                        state.update(
                            status=FAILED,
                            error=f"the job's process ended unexpectedly (exit code "
                            f"{process.exitcode})",
                            finished=time.time(),
                        )
                        write_state(folder, state)
                elif time.monotonic() - started > self.time_limit:
                    process.terminate()
                    process.join(timeout=10)
                    del self._running[job_id]
                    state = read_state(folder)
                    state.update(
                        status=FAILED,
                        error=f"time limit of {self.time_limit:g} s exceeded; the job was "
                        "stopped (ask for fewer samples or candidates)",
                        finished=time.time(),
                    )
                    write_state(folder, state)
            while self._queue and len(self._running) < self.workers:
                job_id = self._queue.pop(0)
                context = multiprocessing.get_context("spawn")
                process = context.Process(
                    target=job_process, args=(str(self.root / job_id),), daemon=True
                )
                process.start()
                self._running[job_id] = (process, time.monotonic())
