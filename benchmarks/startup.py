"""Start-up time of the command line: ``metainv --version``, ``metainv --help`` and, for
comparison, a command that loads the full library (``metainv stiffness check --help``).

Usage::

    python benchmarks/startup.py [--repeat 5]

Each is run in a fresh interpreter (``python -c "from metainv.cli import main; main()" ...``),
best and median wall time of ``--repeat`` runs; prints a table and one JSON line. The target
(issue 15) is under 1 s for ``--version`` and ``--help``: they import no command module, and so
no torch, scipy, trimesh or matplotlib.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
CASES = {
    "--version": ["--version"],
    "--help": ["--help"],
    "stiffness check --help (full import)": ["stiffness", "check", "--help"],
}


def time_command(args: list[str], repeat: int) -> list[float]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    code = "import sys; from metainv.cli import main; sys.argv[0] = 'metainv'; main()"
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code, *args], env=env, capture_output=True, check=True
        )
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    results = {}
    for name, args in CASES.items():
        times = time_command(args, options.repeat)
        results[name] = {"best_s": min(times), "median_s": statistics.median(times)}
        print(f"{name:40s} best {min(times):6.3f} s  median {statistics.median(times):6.3f} s")
    print(json.dumps({"startup": results}))


if __name__ == "__main__":
    main()
