"""``metainv serve`` in a real browser (headless Chromium driven by Playwright) and its job queue.

The browser test follows the acceptance of the web app: load the page, enter bone3 in GPa for
Ti-6Al-4V, see "admissible" and the elastic surface, run a small truss design (300 samples,
top 3, FE verification on, refinement off), watch its progress reach 100 %, see three candidates
with their FE NMSE, open a 3-D view, download an STL and check that it is watertight, and enter
an asymmetric matrix and see the same error text as ``metainv stiffness check``. Screenshots of
the steps go to a temporary folder; with ``METAINV_WEB_SCREENSHOTS=docs/images`` the two README
screenshots are written there too.

Chromium is the system one (Debian package ``chromium``, installed by ``make test`` when
missing); ``METAINV_CHROMIUM`` names another executable.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import trimesh

import metainv
from metainv.mesh import is_watertight_stl
from metainv.targets import read_target_text
from metainv.web.jobs import CANCELLED, DONE, FAILED, JobManager

ROOT = Path(__file__).resolve().parents[1]
#: Generous but bounded waits (the machine may be busy): milliseconds.
PAGE_WAIT = 60_000
DESIGN_WAIT = 300_000
README_SHOTS = {"02_target.png": "web_target.png", "04_view.png": "web_results.png"}


def chromium_path() -> str | None:
    for candidate in (os.environ.get("METAINV_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(jobs: Path, port: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", "from metainv.cli import main; main()", "serve"]
    command += ["--port", str(port), "--jobs", str(jobs), *extra]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"server exited: {process.stdout.read() if process.stdout else ''}"
            )
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=5).read()
            return process
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise AssertionError("server did not answer within 90 s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    process = start_server(tmp_path_factory.mktemp("web-jobs"), port)
    process.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield process
    process.terminate()
    process.wait(timeout=20)


def bone3_grid_text() -> str:
    document = json.loads((ROOT / "src/metainv/data/targets/bone3.json").read_text())
    return "\n".join(", ".join(str(v) for v in row) for row in document["C"]) + "\n"


@pytest.mark.slow
def test_design_studio_in_the_browser(server: subprocess.Popen, tmp_path: Path) -> None:
    url = server.url  # type: ignore[attr-defined]
    import playwright.sync_api as playwright_api  # the dev extra (make test installs it)

    executable = chromium_path()
    assert executable, "no chromium found: `make test` installs Debian's chromium package"
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader"],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 820}, accept_downloads=True)
        page.set_default_timeout(PAGE_WAIT)
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready='1']")
        # the page paints (its time is measured by benchmarks/web.py, not asserted here)
        page.wait_for_function(
            "performance.getEntriesByName('first-contentful-paint').length === 1"
        )
        page.screenshot(path=shots / "01_page.png")

        # target: bone3 in GPa, Ti-6Al-4V
        page.select_option("#builtin", "bone3")
        page.click("#load-builtin")
        page.wait_for_function("document.getElementById('target-status').textContent.length > 12")
        assert page.input_value("#unit") == "GPa"
        assert page.input_value("#material") == "Ti-6Al-4V"
        assert page.text_content("#target-status") == "bone3: admissible"
        assert page.get_attribute("#target-status", "class") == "status ok"
        page.wait_for_function(
            "(document.getElementById('surface-3d').data || [])[0]?.type === 'surface'"
        )
        assert page.locator("#surface-3d canvas").count() >= 1  # WebGL scene drawn
        assert page.locator("#surface-sections .polarlayer path").count() >= 3
        page.screenshot(path=shots / "02_target.png")

        # a small truss design with FE verification, without refinement
        page.fill("#opt-samples", "300")
        page.fill("#opt-top", "3")
        page.set_checked("#opt-verify", True)
        page.set_checked("#opt-refine", False)
        page.click("#run-design")
        page.wait_for_function("location.hash.startsWith('#job/')")
        page.wait_for_function(
            "document.getElementById('job-percent').textContent === '100 %'", timeout=DESIGN_WAIT
        )
        assert page.text_content("#job-status") == "done"
        page.wait_for_function("document.querySelectorAll('#candidates tr.candidate').length >= 3")
        nmse_fe = [float(t) for t in page.locator("#candidates .nmse-fe").all_text_contents()]
        assert len(nmse_fe) >= 3 and all(np.isfinite(nmse_fe)) and min(nmse_fe) < 0.1
        page.wait_for_function("(document.getElementById('overlay-3d').data || []).length === 2")
        page.screenshot(path=shots / "03_results.png", full_page=True)

        # 3-D view of the best candidate
        page.locator("#candidates .view-3d").first.click()
        page.wait_for_function(
            "(document.getElementById('view-3d').data || [])[0]?.type === 'mesh3d'"
        )
        assert int(page.get_attribute("#view-3d", "data-triangles")) > 100
        page.screenshot(path=shots / "04_view.png", full_page=True)

        # download an STL: a watertight mesh
        with page.expect_download() as download:
            page.locator("#candidates .stl-link").first.click()
        stl = tmp_path / "candidate.stl"
        download.value.save_as(stl)
        mesh = trimesh.load(stl, force="mesh")
        assert len(mesh.faces) > 100 and mesh.is_watertight and is_watertight_stl(mesh)

        # grade between the two best candidates: a graded lattice, previewed, watertight
        page.locator("#candidates .pick").nth(0).check()
        page.locator("#candidates .pick").nth(1).check()
        page.fill("#job-grade-box", "4 2 2")
        design_hash = page.evaluate("location.hash")
        page.click("#job-grade")
        page.wait_for_function(
            f"location.hash.startsWith('#job/') && location.hash !== '{design_hash}'"
        )
        page.wait_for_function(
            "document.getElementById('job-percent').textContent === '100 %'", timeout=DESIGN_WAIT
        )
        page.wait_for_function(
            "(document.getElementById('view-3d').data || [])[0]?.type === 'mesh3d'"
        )
        assert "STL watertight: yes" in page.text_content("#grade-summary")
        page.screenshot(path=shots / "06_grade.png", full_page=True)

        # an asymmetric matrix: the CLI's one-line error on the page
        page.goto(url + "/#target")
        page.wait_for_selector("body[data-ready='1']")
        page.select_option("#builtin", "bone3")
        page.click("#load-builtin")
        page.wait_for_function("document.getElementById('target-status').textContent.length > 12")
        page.set_checked("#mirror", False)
        page.fill("#c-0-1", "0.9")
        page.click("#check")
        page.wait_for_function(
            "document.getElementById('target-status').textContent.startsWith('error:')"
        )
        grid = bone3_grid_text().splitlines()
        grid[0] = "0.573, 0.9, " + grid[0].split(", ", 2)[2]
        target = read_target_text("\n".join(grid), unit="GPa", base_modulus="114GPa")
        failures = metainv.check_stiffness(target.stiffness).failures
        expected = "error: not admissible: " + "; ".join(failures)
        assert "not symmetric: C12 != C21" in expected
        assert page.text_content("#target-status") == expected
        page.screenshot(path=shots / "05_error.png")

        # an uploaded CSV target (parsed by the library), then one over the size limit
        upload = tmp_path / "femur.csv"
        upload.write_text("# measured, GPa\n" + bone3_grid_text())
        page.set_input_files("#upload", str(upload))
        page.wait_for_function(
            "document.getElementById('target-status').textContent === 'femur: admissible'"
        )
        assert page.input_value("#c-2-2") == "1.26"
        huge = tmp_path / "huge.csv"
        huge.write_text("0 " * 200_000)
        page.set_input_files("#upload", str(huge))
        page.wait_for_function(
            "document.getElementById('target-status').textContent.includes('upload too large')"
        )
        browser.close()

    for name in ("01_page", "02_target", "03_results", "04_view", "05_error", "06_grade"):
        name = name + ".png"
        assert (shots / name).stat().st_size > 10_000
    readme_images = os.environ.get("METAINV_WEB_SCREENSHOTS")
    if readme_images:
        from PIL import Image

        for shot, name in README_SHOTS.items():  # 256-colour PNGs: small files for the README
            with Image.open(shots / shot) as image:
                small = image.convert("RGB").quantize(colors=256)
                small.save(Path(readme_images) / name, optimize=True)


@pytest.mark.slow
def test_explore_page_homogenizes_an_edited_design(server: subprocess.Popen) -> None:
    import playwright.sync_api as playwright_api  # the dev extra (make test installs it)

    executable = chromium_path()
    assert executable, "no chromium found: `make test` installs Debian's chromium package"
    octet = json.loads((ROOT / "examples/designs/octet.json").read_text())
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader"],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 820})
        page.set_default_timeout(PAGE_WAIT)
        page.goto(server.url + "/#explore")  # type: ignore[attr-defined]
        page.wait_for_selector("body[data-ready='1']")
        page.select_option("#explore-family", "truss")
        for key in ("topology", "relative_density", "U", "V", "R1", "R2"):
            page.fill(f"#explore-form input[data-key='{key}']", json.dumps(octet[key]))
        page.click("#explore-run")
        page.wait_for_function(
            "(document.getElementById('explore-3d').data || [])[0]?.type === 'mesh3d'"
        )
        shown = page.text_content("#explore-status")
        expected = metainv.homogenize(octet)
        assert shown.startswith("relative density ") and shown.endswith("; admissible")
        rho = float(shown.split()[2].rstrip(";"))
        assert rho == pytest.approx(expected.relative_density, rel=1e-3)
        C11 = float(page.locator("#explore-C tr").nth(1).locator("td").first.text_content())
        assert C11 == pytest.approx(expected.C[0, 0], rel=1e-2)
        page.wait_for_function(
            "(document.getElementById('explore-surface').data || [])[0]?.type === 'surface'"
        )
        # a bad entry: the library's one-line message
        page.fill("#explore-form input[data-key='relative_density']", "-1")
        page.click("#explore-run")
        page.wait_for_function(
            "document.getElementById('explore-status').textContent.startsWith('error:')"
        )
        assert "relative_density" in page.text_content("#explore-status")

        # 21 pasted numbers (upper triangle, row major) fill the target grid
        document = json.loads((ROOT / "src/metainv/data/targets/bone3.json").read_text())
        upper = [document["C"][i][j] for i in range(6) for j in range(i, 6)]
        page.goto(server.url + "/#target")  # type: ignore[attr-defined]
        page.wait_for_selector("body[data-ready='1']")
        page.click("#page-target summary")
        page.fill("#paste", " ".join(str(v) for v in upper))
        page.click("#use-paste")
        page.wait_for_function(
            "document.getElementById('target-status').textContent === 'pasted: admissible'"
        )
        assert page.input_value("#c-5-4") == "0.052" and page.input_value("#c-4-5") == "0.052"
        browser.close()


def small_design_params() -> dict:
    return {
        "target": {"text": bone3_grid_text(), "unit": "GPa", "base_modulus": "114GPa"},
        "family": "truss",
        "options": {"samples": 100, "top": 1, "refine": False, "verify": False},
    }


def wait_final(manager: JobManager, job_id: str, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = manager.state(job_id)
        if state["status"] in (DONE, FAILED, CANCELLED):
            return state
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish within {seconds} s: {state}")


@pytest.mark.slow
def test_jobs_survive_restart_crash_cancel_and_time_limit(tmp_path: Path) -> None:
    # jobs left queued when the server stops are queued again and run at the next start
    first = JobManager(tmp_path, workers=1, max_queued=2)
    first.start()
    kept = first.submit("design", small_design_params())
    bad = {**small_design_params(), "options": {"samples": 100, "model": str(tmp_path / "no")}}
    crashed = first.submit("design", bad)
    with pytest.raises(metainv.MetainvError, match="job queue is full"):
        first.submit("design", small_design_params())
        first.submit("design", small_design_params())
    first.stop()
    assert first.state(kept)["status"] in ("queued", "running")

    second = JobManager(tmp_path, workers=1, max_queued=4, time_limit=120)
    second.start()
    try:
        assert wait_final(second, kept)["status"] == DONE
        result = json.loads((tmp_path / kept / "result" / "designs.json").read_text())
        assert len(result["candidates"]) == 1
        # a crashing job records its one-line error; the manager keeps running
        failed = wait_final(second, crashed)
        assert failed["status"] == FAILED and "\n" not in failed["error"] and failed["error"]
        # cancel a queued job
        queued = second.submit("design", small_design_params())
        assert second.cancel(queued)["status"] == CANCELLED
        assert wait_final(second, queued)["status"] == CANCELLED
        # cancel a running job: its process is stopped, the record says cancelled
        big = {**small_design_params(), "options": {"samples": 200_000, "top": 3}}
        running = second.submit("design", big)
        deadline = time.monotonic() + 120
        while second.state(running)["status"] != "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert second.cancel(running)["status"] == CANCELLED
        time.sleep(1.0)
        assert second.state(running)["status"] == CANCELLED
        assert not (tmp_path / running / "result" / "designs.json").exists()
    finally:
        second.stop()

    limited = JobManager(tmp_path, workers=1, time_limit=0.5)
    limited.start()
    try:
        job = limited.submit("design", small_design_params())
        state = wait_final(limited, job)
        assert state["status"] == FAILED and "time limit of 0.5 s" in state["error"]
    finally:
        limited.stop()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        s["id"] for s in JobManager(tmp_path).list()
    )


def request(url: str, body: object = None, raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    call = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(call, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        text = error.read().decode()
        assert "Traceback" not in text
        return error.code, json.loads(text)


def test_api_refuses_bad_input_without_traces(server: subprocess.Popen) -> None:
    from metainv.web.app import MAX_BODY

    url = server.url  # type: ignore[attr-defined]
    status, big = request(url + "/api/target", raw=b"{" + b" " * (MAX_BODY + 10) + b"}")
    assert status == 400 and "upload too large" in big["error"]
    rows = {"text": "1 2 3\n", "name": "t.csv", "unit": "normalized"}
    assert request(url + "/api/target", rows) == (
        400,
        {"error": "t.csv: expected 36 numbers in 6 rows of 6, got 1 row"},
    )
    bad_modulus = {"text": bone3_grid_text(), "unit": "GPa", "base_modulus": "x"}
    assert "invalid base modulus 'x'" in request(url + "/api/target", bad_modulus)[1]["error"]
    for path in ("/api/jobs/..%2F..%2Fetc", "/api/jobs/0123456789ab", "/api/jobs/ABC/files/x"):
        status, answer = request(url + path)
        assert status in (400, 404) and answer["error"]
    status, answer = request(url + "/api/homogenize", {"design": {"family": "nope"}})
    assert status == 400 and "unknown family 'nope'" in answer["error"]
    spec = {"text": bone3_grid_text(), "unit": "GPa", "base_modulus": "114GPa"}
    option = {"target": spec, "family": "truss", "options": {"cells": 2}}
    status, answer = request(url + "/api/jobs/design", option)
    assert answer == {"error": "--cells does not apply to the truss family"}
    octet = json.loads((ROOT / "examples/designs/octet.json").read_text())
    status, answer = request(url + "/api/homogenize", {"design": octet, "cells": [50, 50, 50]})
    assert status == 400 and answer["error"] == "cells must be 3 whole numbers from 1 to 3"
    # a page of another site can send text/plain without asking: refused
    plain = urllib.request.Request(
        url + "/api/jobs/design", data=b"{}", headers={"content-type": "text/plain"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(plain, timeout=60)
    assert json.loads(refused.value.read()) == {
        "error": "send the request as application/json, not text/plain"
    }
    # a foreign Host header (DNS rebinding) is refused by a server bound to 127.0.0.1
    rebound = urllib.request.Request(url + "/api/info", headers={"host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as foreign:
        urllib.request.urlopen(rebound, timeout=60)
    assert foreign.value.code == 400
    status, answer = request(url + "/api/homogenize", {"design": octet})
    np.testing.assert_allclose(answer["C"], metainv.homogenize(octet).C.tolist())
    assert answer["report"]["admissible"] and len(answer["surface"]["x"]) == 31


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status")
    for line in status.read_text().splitlines() if status.exists() else []:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_concurrent_admissibility_and_homogenize_requests(server: subprocess.Popen) -> None:
    from concurrent.futures import ThreadPoolExecutor

    url = server.url  # type: ignore[attr-defined]
    spec = {"text": bone3_grid_text(), "unit": "GPa", "base_modulus": "114GPa"}
    octet = json.loads((ROOT / "examples/designs/octet.json").read_text())
    calls = [("/api/target", spec)] * 20 + [("/api/homogenize", {"design": octet})] * 20
    memory = []
    for _ in range(2):
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            answers = list(pool.map(lambda call: request(url + call[0], call[1]), calls))
        assert all(status == 200 for status, _ in answers)
        assert all(answer["admissible"] for _, answer in answers[:20])
        C = np.array(answers[-1][1]["C"])
        assert all(np.array_equal(np.array(answer["C"]), C) for _, answer in answers[20:])
        memory.append(rss_mib(server.pid))
    assert memory[1] - memory[0] < 100  # MiB: a second burst does not grow the server


def test_serve_refuses_bad_options_and_warns_for_other_hosts(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from metainv.cli import app
    from metainv.cli._serve import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    runner = CliRunner()
    afile = tmp_path / "jobs"
    afile.write_text("not a folder")
    result = runner.invoke(app, ["serve", "--jobs", str(afile)])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: --jobs {afile} is a file, expected a folder"
    result = runner.invoke(app, ["serve", "--port", "70000"])
    assert result.exit_code == 2 and "--port must lie in 1..65535" in result.output
    # another host: the warning comes before the server starts (here it cannot bind)
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", port))
        taken.listen()
        command = [sys.executable, "-c", "from metainv.cli import main; main()", "serve"]
        command += ["--host", "0.0.0.0", "--port", str(port), "--jobs", str(tmp_path / "j")]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("warning: listening on 0.0.0.0, not on this machine only")
    assert (
        lines[1] == f"error: cannot listen on 0.0.0.0:{port}: address already in use; stop "
        "the other server or pick another --port"
    )
    assert done.returncode == 2 and len(lines) == 2


def test_read_target_text_equals_reading_the_file(tmp_path: Path) -> None:
    from metainv.targets import read_target

    text = (ROOT / "src/metainv/data/targets/bone3.json").read_text()
    from_text = read_target_text(text, name="bone3.json", unit="MPa", base_modulus="193GPa")
    path = tmp_path / "bone3.json"
    path.write_text(text)
    from_file = read_target(path, unit="MPa", base_modulus="193GPa")
    np.testing.assert_array_equal(from_text.stiffness, from_file.stiffness)
    assert from_text.name == from_file.name == "bone3"
    assert from_text.base_modulus_pa == from_file.base_modulus_pa == 193e9
    csv = tmp_path / "t.csv"
    csv.write_text(bone3_grid_text().replace("0.573", "zz"))
    with pytest.raises(metainv.TargetError) as from_csv_file:
        read_target(csv, unit="GPa", base_modulus="114GPa")
    with pytest.raises(metainv.TargetError) as from_csv_text:
        read_target_text(csv.read_text(), name=str(csv), unit="GPa", base_modulus="114GPa")
    assert str(from_csv_text.value) == str(from_csv_file.value)
    assert "row 1, column 1: 'zz' is not a number" in str(from_csv_text.value)
