"""Re-run the pinned examples and compare them with ``scripts/pins/`` to a relative 1e-10.

The pins were made before the code was restructured into families (issue "One tool, not
three") and must not move through a restructuring; a change that is meant to move a number
updates its pin in its own commit (``--update``). Pinned:

- ``metainv design bone3 --unit GPa --base-modulus 114GPa --seed 0`` (truss, designs.json);
- ``metainv design bone3 --unit GPa --base-modulus 20GPa --family spinodoid --seed 0``;
- ``metainv homogenize --json`` of ``examples/designs/`` octet, spinodoid_isotropic and
  gyroid_sheet (one per family).

Usage: ``python scripts/check_pins.py [--update]`` (about 2 minutes on 2 cores); exit 1 on a
difference.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from compare_designs import compare

ROOT = Path(__file__).resolve().parents[1]
PINS = ROOT / "scripts" / "pins"
DESIGNS = {
    "bone3_truss_114GPa_designs.json": ["bone3", "--unit", "GPa", "--base-modulus", "114GPa"],
    "bone3_spinodoid_20GPa_designs.json": [
        *("bone3", "--unit", "GPa", "--base-modulus", "20GPa", "--family", "spinodoid"),
    ],
}
HOMOGENIZED = {
    "homogenize_octet.json": "octet.json",
    "homogenize_spinodoid_isotropic.json": "spinodoid_isotropic.json",
    "homogenize_gyroid_sheet.json": "gyroid_sheet.json",
}


def metainv(*args: str) -> str:
    command = [sys.executable, "-c", "from metainv.cli import main; main()", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout


def run_examples(folder: Path) -> dict[str, Path]:
    """Every pinned example's output, written into ``folder``."""
    outputs = {}
    for name, args in DESIGNS.items():
        out = folder / name.removesuffix(".json")
        metainv("design", *args, "--seed", "0", "--out", str(out))
        outputs[name] = out / "designs.json"
    for name, design in HOMOGENIZED.items():
        path = folder / name
        example = ROOT / "examples" / "designs" / design
        path.write_text(metainv("homogenize", str(example), "--json"))
        outputs[name] = path
    return outputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite the pins")
    parser.add_argument("--tolerance", type=float, default=1e-10)
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory() as scratch:
        for name, path in run_examples(Path(scratch)).items():
            if args.update:
                shutil.copyfile(path, PINS / name)
                print(f"updated {name}")
                continue
            report = compare(json.loads((PINS / name).read_text()), json.loads(path.read_text()))
            structural = report["only_in_first"] + report["only_in_second"]
            bad = report["max_relative_difference"] > args.tolerance or structural
            failures += bool(bad)
            print(
                f"{'DIFFERENT' if bad else 'ok':9s} {name}: max relative difference "
                f"{report['max_relative_difference']:.2e} at {report['at'] or '-'}"
                + (f"; structure differs: {structural[:3]}" if structural else "")
            )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
