"""Load and first paint of ``metainv serve``: concurrent requests, server memory, page paint.

Usage::

    python benchmarks/web.py [--concurrent 20] [--rounds 3] [--no-browser]

Starts ``metainv serve`` on a free local port (jobs in a temporary folder) and sends, in each
round, ``--concurrent`` admissibility checks (bone3 in GPa for Ti-6Al-4V) and as many
homogenizations (the octet example) at the same time from a local client (threads). Prints,
per round, how many succeeded, the latency median and maximum and the server's resident memory
(``VmRSS`` of its process, Linux) after the round: bounded memory shows as a flat line over the
rounds. Then (unless ``--no-browser``) loads the page five times in headless Chromium (the
system one, through Playwright) and prints its first paint and first contentful paint. Ends with
one JSON line of the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def post(url: str, body: dict) -> tuple[bool, float]:
    start = time.perf_counter()
    call = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(call, timeout=300) as answer:
            ok = answer.status == 200 and "error" not in json.loads(answer.read())
    except OSError:
        ok = False
    return ok, time.perf_counter() - start


def first_paint(url: str, loads: int) -> list[dict[str, float]]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise SystemExit("no chromium: install the Debian package chromium (make browser)")
    results = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        for _ in range(loads):
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']", timeout=60_000)
            entries = page.evaluate(
                "Object.fromEntries(performance.getEntriesByType('paint')"
                ".map(e => [e.name, e.startTime]))"
            )
            entries["ready"] = page.evaluate("performance.now()")
            results.append(entries)
            page.close()
        browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()

    bone3 = json.loads((ROOT / "src/metainv/data/targets/bone3.json").read_text())
    grid = "\n".join(", ".join(str(v) for v in row) for row in bone3["C"])
    target = {"text": grid, "name": "bone3.csv", "unit": "GPa", "base_modulus": "114GPa"}
    octet = json.loads((ROOT / "examples/designs/octet.json").read_text())

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as jobs:
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        command = [sys.executable, "-c", "from metainv.cli import main; main()", "serve"]
        server = subprocess.Popen([*command, "--port", str(port), "--jobs", jobs], env=env)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(url + "/api/info", timeout=5).read()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.3)
            idle = rss_mib(server.pid)
            print(f"server idle: {idle:.0f} MiB resident")
            rounds = []
            for number in range(1, args.rounds + 1):
                calls = [(url + "/api/target", target)] * args.concurrent
                calls += [(url + "/api/homogenize", {"design": octet})] * args.concurrent
                start = time.perf_counter()
                with ThreadPoolExecutor(max_workers=len(calls)) as pool:
                    answers = list(pool.map(lambda call: post(*call), calls))
                wall = time.perf_counter() - start
                latencies = [seconds for _, seconds in answers]
                row = {
                    "round": number,
                    "requests": len(answers),
                    "ok": sum(ok for ok, _ in answers),
                    "wall_s": round(wall, 3),
                    "latency_median_s": round(statistics.median(latencies), 3),
                    "latency_max_s": round(max(latencies), 3),
                    "requests_per_s": round(len(answers) / wall, 1),
                    "rss_mib": round(rss_mib(server.pid), 1),
                }
                rounds.append(row)
                print(
                    f"round {number}: {row['ok']}/{row['requests']} ok in {wall:.2f} s "
                    f"({row['requests_per_s']} req/s; median {row['latency_median_s']} s, "
                    f"max {row['latency_max_s']} s); server {row['rss_mib']:.0f} MiB resident"
                )
            paints = [] if args.no_browser else first_paint(url + "/", 5)
        finally:
            server.terminate()
            server.wait(timeout=30)
    summary: dict = {"idle_rss_mib": round(idle, 1), "rounds": rounds}
    if paints:
        for name in ("first-paint", "first-contentful-paint", "ready"):
            values = [p[name] for p in paints if name in p]
            if values:
                summary[f"{name}_ms_median"] = round(statistics.median(values), 1)
                summary[f"{name}_ms_max"] = round(max(values), 1)
        print(
            f"first contentful paint: median {summary.get('first-contentful-paint_ms_median')} "
            f"ms, max {summary.get('first-contentful-paint_ms_max')} ms over {len(paints)} "
            f"loads (page ready: median {summary.get('ready_ms_median')} ms)"
        )
    growth = rounds[-1]["rss_mib"] - rounds[0]["rss_mib"] if rounds else 0.0
    summary["rss_growth_after_first_round_mib"] = round(growth, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
