"""Compare two ``designs.json`` files (or any two JSON documents) number by number.

Walks both documents, pairs every numeric leaf by its path (``.candidates[0].nmse_fe``) and
reports the largest relative difference ``|a - b| / max(|a|, |b|)`` overall and per top-level
key of a candidate, plus the paths present in only one file and differing non-numeric leaves.
Timing leaves (a path containing ``second`` or ``time``) are skipped.

Usage: ``python scripts/compare_designs.py A/designs.json B/designs.json [--tolerance 1e-10]``;
the exit status is 1 when a difference exceeds the tolerance or the structures differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, leaf) of every scalar in a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def relative_difference(a: float, b: float) -> float:
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def group(path: str) -> str:
    """``.candidates[3].design.U[1]`` -> ``candidates.design``; ``.target[0][1]`` -> ``target``."""
    parts = [p.split("[")[0] for p in path.strip(".").split(".")]
    return ".".join(parts[:2]) if parts[0] == "candidates" else parts[0]


def compare(first: Any, second: Any) -> dict[str, Any]:
    a, b = dict(leaves(first)), dict(leaves(second))
    skip = [p for p in set(a) | set(b) if "second" in p or "time" in p]
    for path in skip:
        a.pop(path, None), b.pop(path, None)
    worst: dict[str, tuple[float, str]] = {}
    changed = []
    for path in sorted(set(a) & set(b)):
        if is_number(a[path]) and is_number(b[path]):
            diff = relative_difference(float(a[path]), float(b[path]))
            key = group(path)
            if diff >= worst.get(key, (-1.0, ""))[0]:
                worst[key] = (diff, path)
        elif a[path] != b[path]:
            changed.append(path)
    overall = max(worst.values(), default=(0.0, ""))
    return {
        "max_relative_difference": overall[0],
        "at": overall[1],
        "by_group": {k: {"max": v[0], "at": v[1]} for k, v in sorted(worst.items())},
        "only_in_first": sorted(set(a) - set(b)),
        "only_in_second": sorted(set(b) - set(a)),
        "non_numeric_differences": changed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--tolerance", type=float, default=1e-10)
    args = parser.parse_args(argv)
    report = compare(json.loads(args.first.read_text()), json.loads(args.second.read_text()))
    print(json.dumps(report, indent=2))
    structural = (
        report["only_in_first"] or report["only_in_second"] or report["non_numeric_differences"]
    )
    ok = report["max_relative_difference"] <= args.tolerance and not structural
    print(
        f"{'OK' if ok else 'DIFFERENT'}: max relative difference "
        f"{report['max_relative_difference']:.3e} (tolerance {args.tolerance:.0e})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
