"""Kill ``metainv design`` at random moments and check that nothing is left half-written.

Usage::

    python scripts/kill_design.py [--trials 20] [--seed 0] [--max-seconds S] [--keep DIR]

Runs ``metainv design bone3 --samples 500 --top 2 --out DIR`` (a fresh DIR per trial), sends
SIGKILL to its process group after a random delay, uniform in (0.2 s, S) (S: the duration of one
uninterrupted calibration run unless given), then checks the folder: a ``designs.json``, if
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


def run(out: Path, kill_after: float | None) -> tuple[int, float]:
    """Run design into ``out``; SIGKILL its process group after ``kill_after`` seconds."""
    start = time.perf_counter()
    process = subprocess.Popen(
        design_command(out),
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        process.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return process.returncode, time.perf_counter() - start


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
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep the trial folders here")
    options = parser.parse_args()
    rng = random.Random(options.seed)
    base = options.keep or Path(tempfile.mkdtemp(prefix="kill-design-"))
    base.mkdir(parents=True, exist_ok=True)
    longest = options.max_seconds
    if longest is None:
        code, seconds = run(base / "calibration", None)
        problems, counts = check(base / "calibration")
        print(f"calibration: exit {code} in {seconds:.1f} s, {counts}, problems {problems}")
        if code != 0 or problems:
            return 1
        longest = seconds
    failures = 0
    for trial in range(options.trials):
        out = base / f"trial-{trial:02d}"
        delay = rng.uniform(0.2, longest)
        code, seconds = run(out, delay)
        problems, counts = check(out)
        failures += bool(problems)
        state = "killed" if code == -signal.SIGKILL else f"exit {code}"
        print(
            f"trial {trial:2d}: {state} after {seconds:5.1f} s  "
            f"designs.json {counts['designs_json']}"
            f"  stl {counts['stl']}  tmp {counts['tmp']}  "
            + ("OK" if not problems else "FAIL: " + "; ".join(problems)),
            flush=True,
        )
    print(f"{options.trials - failures}/{options.trials} trials consistent (folders in {base})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
