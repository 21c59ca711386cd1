"""Kill ``metainv design`` at random moments and check that nothing is left half-written.

Usage::

    python scripts/kill_design.py [--trials 20] [--seed 0] [--max-seconds S] [--write-seconds W]
                                  [--keep DIR]

Runs ``metainv design bone3 --samples 500 --top 2 --out DIR`` (a fresh DIR per trial) and sends
SIGKILL to its process group: in even trials after a random delay, uniform in (0.2 s, S) (S: the
duration of one uninterrupted calibration run unless given); in odd trials a random delay,
uniform in (0, W), after ``designs.json`` first appears (W: how long the calibration run wrote
its files after that), so that half the kills land while result files are written. Then it
checks the folder: a ``designs.json``, if
there is one, parses as a JSON object; every ``*.stl`` under its final name loads with trimesh
and is watertight. Temporary files of interrupted atomic writes (``.NAME.*.tmp``) are counted,
not failed: they never carry a final name. Exit status 1 when any trial fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE = "import sys; from metainv.cli import main; sys.argv[0] = 'metainv'; main()"


def design_command(out: Path) -> list[str]:
    args = ["design", "bone3", "--samples", "500", "--top", "2", "--out", str(out)]
    return [sys.executable, "-c", CODE, *args]


def environment() -> dict[str, str]:
    paths = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def run(
    out: Path, kill_after: float | None, after_write: float | None = None
) -> tuple[int, float, float | None]:
    """Run design into ``out``; SIGKILL its process group after ``kill_after`` seconds, or
    (``after_write``) that many seconds after ``designs.json`` first appears, i.e. while the
    candidates' STL and PNG files are being written. Returns (exit status, seconds, seconds
    from the first ``designs.json`` to the end or None)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        design_command(out),
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = None if kill_after is None else start + kill_after
    written = None
    while process.poll() is None:
        now = time.perf_counter()
        if written is None and (out / "designs.json").exists():
            written = now
            if after_write is not None:
                deadline = now + after_write
        if deadline is not None and now >= deadline:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            break
        time.sleep(0.02)
    end = time.perf_counter()
    return process.returncode, end - start, None if written is None else end - written


def check(out: Path) -> tuple[list[str], dict[str, int]]:
    """(problems, counts) of a design folder after an interruption."""
    import trimesh

    problems: list[str] = []
    counts = {"designs_json": 0, "stl": 0, "tmp": 0}
    if not out.exists():
        return problems, counts
    document = out / "designs.json"
    if document.exists():
        counts["designs_json"] = 1
        try:
            data = json.loads(document.read_text())
            if not isinstance(data, dict):
                problems.append("designs.json is not a JSON object")
        except (ValueError, UnicodeDecodeError) as error:
            problems.append(f"designs.json does not parse: {error}")
    for path in sorted(out.glob("*.stl")):
        counts["stl"] += 1
        try:
            mesh = trimesh.load(path, file_type="stl", force="mesh")
            if len(mesh.faces) == 0 or not mesh.is_watertight:
                problems.append(f"{path.name}: {len(mesh.faces)} faces, not watertight")
        except Exception as error:
            problems.append(f"{path.name} does not load: {error}")
    counts["tmp"] = len(list(out.glob(".*.tmp")))
    return problems, counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=None, help="longest kill delay")
    parser.add_argument(
        "--write-seconds", type=float, default=None, help="longest delay after designs.json"
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep the trial folders here")
    options = parser.parse_args()
    rng = random.Random(options.seed)
    base = options.keep or Path(tempfile.mkdtemp(prefix="kill-design-"))
    base.mkdir(parents=True, exist_ok=True)
    longest, writing = options.max_seconds, options.write_seconds
    if longest is None or writing is None:
        code, seconds, tail = run(base / "calibration", None)
        problems, counts = check(base / "calibration")
        print(
            f"calibration: exit {code} in {seconds:.1f} s (writing files {tail or 0:.1f} s), "
            f"{counts}, problems {problems}"
        )
        if code != 0 or problems:
            return 1
        longest = seconds if longest is None else longest
        writing = (tail or 1.0) if writing is None else writing
    failures = 0
    for trial in range(options.trials):
        out = base / f"trial-{trial:02d}"
        if trial % 2:  # odd trials: while the result files are being written
            delay = rng.uniform(0.0, writing)
            code, seconds, _ = run(out, None, after_write=delay)
            when = f"{delay:4.1f} s after designs.json"
        else:
            delay = rng.uniform(0.2, longest)
            code, seconds, _ = run(out, delay)
            when = f"at {delay:5.1f} s"
        problems, counts = check(out)
        failures += bool(problems)
        state = "killed" if code == -signal.SIGKILL else f"exit {code}"
        print(
            f"trial {trial:2d}: {state} {when} ({seconds:5.1f} s)  "
            f"designs.json {counts['designs_json']}  stl {counts['stl']}  tmp {counts['tmp']}  "
            + ("OK" if not problems else "FAIL: " + "; ".join(problems)),
            flush=True,
        )
    print(f"{options.trials - failures}/{options.trials} trials consistent (folders in {base})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
