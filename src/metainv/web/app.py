"""The web app (Starlette): JSON endpoints over the public API and the static front end.

Every endpoint is a thin call into :mod:`metainv` (targets, admissibility, homogenization,
export, design and grading jobs); errors come back as ``{"error": one line}`` with the same text
the CLI prints after ``error:`` (:func:`metainv.errors.describe`). Request bodies are limited to
:data:`MAX_BODY` bytes. Job ids are made by :class:`metainv.web.jobs.JobManager`; file downloads
are looked up among the files a job wrote, never built from the request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import metainv
from metainv.errors import MetainvError, describe
from metainv.files import parse_json, read_json
from metainv.targets import (
    BASE_MATERIALS,
    NORMALIZED,
    PASCALS_PER_UNIT,
    UNITS,
    list_builtin_targets,
    read_target_text,
)
from metainv.viz import elastic_surface, plane_section
from metainv.viz.surface import PLANES
from metainv.web.jobs import DONE, FINAL, RESULT_FOLDER, JobManager

#: Largest request body (an uploaded target, a design) in bytes.
MAX_BODY = 256 * 1024
#: Largest block (cells per direction) the explore page meshes.
MAX_CELLS = 3
#: Host names the app answers to when it listens on this machine only (DNS rebinding guard).
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
#: Requests computing at the same time (admissibility, surfaces, homogenization): bounds memory.
COMPUTE_SLOTS = 4
#: Seconds between two progress events of a job's event stream.
EVENT_INTERVAL = 0.25

Handler = Callable[[Request], Awaitable[Response]]


def _static_folder() -> Path:
    return Path(str(resources.files("metainv.web") / "static"))


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> Any:
    """The JSON body of a request, refused above :data:`MAX_BODY` bytes or when not sent as
    ``application/json`` (which a page of another site cannot send without the app's consent)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise MetainvError(f"send the request as application/json, not {kind or 'no type'}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise MetainvError(f"upload too large: {int(declared)} bytes, at most {MAX_BODY} bytes")
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise MetainvError(f"upload too large: more than {MAX_BODY} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MetainvError(describe(error)) from None
    body = parse_json(text or "{}", source="request")
    if not isinstance(body, dict):
        raise MetainvError("the request must be a JSON object")
    return body


def _endpoint(function: Handler) -> Handler:
    """Every error -> ``{"error": one line}`` (400 for bad input, 500 for a bug)."""

    async def wrapper(request: Request) -> Response:
        try:
            return await function(request)
        except MetainvError as error:
            return _error(describe(error))
        except (ValueError, TypeError, KeyError, OSError) as error:
            return _error(describe(error))
        except Exception as error:
            return _error(describe(error), status=500)

    return wrapper


def _matrix(values: np.ndarray) -> list[list[float]]:
    return [[float(v) for v in row] for row in np.asarray(values)]


def surfaces(C: np.ndarray, n_polar: int = 31, n_azimuth: int = 61) -> dict[str, Any]:
    """The elastic surface and its three planar sections of a normalized stiffness, as lists
    (``metainv.viz.elastic_surface`` / ``plane_section``)."""
    points, moduli = elastic_surface(C, n_polar=n_polar, n_azimuth=n_azimuth)
    sections = {}
    for name, axes in PLANES.items():
        angles, values = plane_section(C, axes, n_angles=181)
        sections[name] = {"phi_deg": np.degrees(angles).round(3).tolist(), "E": values.tolist()}
    return {
        "x": points[..., 0].tolist(),
        "y": points[..., 1].tolist(),
        "z": points[..., 2].tolist(),
        "E": moduli.tolist(),
        "sections": sections,
    }


def _target_from(spec: Any) -> metainv.Target:
    """A target from ``{"text", "name", "unit", "base_modulus"}`` (file contents, as uploaded
    or typed), read by the library's parser."""
    if not isinstance(spec, dict) or not isinstance(spec.get("text"), str):
        raise MetainvError("the target needs 'text': the contents of a JSON or CSV target")
    name = str(spec.get("name") or "target")[:80]
    unit = spec.get("unit") or None
    modulus = spec.get("base_modulus") or None
    if unit is not None and str(unit).strip().lower() == NORMALIZED:
        modulus = None
    return read_target_text(spec["text"], name=name, unit=unit, base_modulus=modulus)


def create_app(
    jobs: str | Path,
    workers: int = 1,
    max_queued: int = 8,
    time_limit: float = 600.0,
    allowed_hosts: Sequence[str] | None = LOCAL_HOSTS,
) -> Starlette:
    """The web app, its jobs kept under the folder ``jobs``; ``allowed_hosts``: the names it
    answers to (``Host`` header; None: any, for a server listening on other hosts)."""
    manager = JobManager(Path(jobs), workers=workers, max_queued=max_queued, time_limit=time_limit)
    slots = threading.BoundedSemaphore(COMPUTE_SLOTS)

    def computed(function: Callable[[], Any]) -> Callable[[], Any]:
        def guarded() -> Any:
            with slots:
                return function()

        return guarded

    async def index(request: Request) -> Response:
        return FileResponse(_static_folder() / "index.html", media_type="text/html")

    async def plotly_js(request: Request) -> Response:
        return FileResponse(_plotly_js(), media_type="application/javascript")

    @_endpoint
    async def info(request: Request) -> Response:
        families = {}
        for name in metainv.family_names():
            family = metainv.get_family(name)
            example = family.to_dict(family.sample(1, np.random.default_rng(0))[0])
            families[name] = {
                "description": family.description,
                "design_options": sorted(family.options.get("design", ())),
                "can_design": family.design is not None,
                "example": example,
            }
        return JSONResponse(
            {
                "version": metainv.__version__,
                "units": list(UNITS),
                "materials": BASE_MATERIALS,
                "targets": list_builtin_targets(),
                "families": families,
            }
        )

    @_endpoint
    async def builtin_target(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in list_builtin_targets():
            raise MetainvError(f"unknown built-in target {name!r}")
        target = metainv.load_target(name)
        scale = 1.0
        if target.base_modulus_pa is not None:
            scale = target.base_modulus_pa / PASCALS_PER_UNIT[target.unit]
        return JSONResponse(
            {
                "name": target.name,
                "unit": target.unit,
                "base_modulus_pa": target.base_modulus_pa,
                "base_material": target.base_material,
                "description": target.description,
                "C": _matrix(target.stiffness * scale),
            }
        )

    @_endpoint
    async def check_target(request: Request) -> Response:
        body = await _body(request)

        def work() -> dict[str, Any]:
            target = _target_from(body)
            report = metainv.check_stiffness(target.stiffness)
            result = {
                "name": target.name,
                "unit": target.unit,
                "base_modulus_pa": target.base_modulus_pa,
                "C": _matrix(target.stiffness),
                "report": report.to_dict(),
                "admissible": report.admissible,
            }
            if report.admissible:
                result["surface"] = surfaces(target.stiffness)
            else:
                result["error"] = "not admissible: " + "; ".join(report.failures)
            return result

        return JSONResponse(await run_in_threadpool(computed(work)))

    @_endpoint
    async def homogenize(request: Request) -> Response:
        body = await _body(request)
        design = body.get("design")
        if not isinstance(design, dict):
            raise MetainvError("'design' must be a design object with its 'family'")
        cells = body.get("cells", [1, 1, 1])
        if (
            not isinstance(cells, list)
            or len(cells) != 3
            or not all(isinstance(n, int) and 1 <= n <= MAX_CELLS for n in cells)
        ):
            raise MetainvError(f"cells must be 3 whole numbers from 1 to {MAX_CELLS}")

        def work() -> dict[str, Any]:
            result = metainv.homogenize(design)
            answer: dict[str, Any] = {
                **result.to_dict(),
                "report": metainv.check_stiffness(result.C).to_dict(),
            }
            answer["surface"] = surfaces(result.C)
            if body.get("geometry"):
                with tempfile.TemporaryDirectory(prefix="metainv-web-") as scratch:
                    path = metainv.export(design, Path(scratch) / "design.stl", cells=cells)
                    answer["stl_base64"] = base64.b64encode(path.read_bytes()).decode("ascii")
            return answer

        return JSONResponse(await run_in_threadpool(computed(work)))

    @_endpoint
    async def surface_of(request: Request) -> Response:
        body = await _body(request)
        C = np.asarray(body.get("C"), dtype=float)
        report = metainv.check_stiffness(C)
        if not report.admissible:
            raise MetainvError("not admissible: " + "; ".join(report.failures))
        return JSONResponse(await run_in_threadpool(computed(lambda: surfaces(C))))

    @_endpoint
    async def list_jobs(request: Request) -> Response:
        return JSONResponse({"jobs": [_public(s) for s in manager.list()]})

    @_endpoint
    async def submit_design(request: Request) -> Response:
        body = await _body(request)
        target = _target_from(body.get("target"))
        report = metainv.check_stiffness(target.stiffness)
        if not report.admissible:
            raise MetainvError("not admissible: " + "; ".join(report.failures))
        family = metainv.get_family(str(body.get("family", "truss")))
        options = family.accepts("design", dict(body.get("options") or {}))
        if options.get("samples") is not None:
            options["samples"] = int(options["samples"])
        params = {"target": body["target"], "family": family.name, "options": options}
        job_id = manager.submit("design", params)
        return JSONResponse({"id": job_id})

    @_endpoint
    async def submit_grade(request: Request) -> Response:
        body = await _body(request)
        source = manager.folder(str(body.get("job", "")))
        designs = source / RESULT_FOLDER / "designs.json"
        if manager.state(source.name)["status"] != DONE or not designs.is_file():
            raise MetainvError("grading needs a finished design job")
        picks = [int(k) for k in body.get("candidates") or []]
        if len(picks) < 2:
            raise MetainvError("pick two or more candidates to grade between")
        box = [float(b) for b in body.get("box") or [6, 2, 2]]
        if len(box) != 3 or not all(1 <= b <= 20 for b in box):
            raise MetainvError("the box needs 3 sizes between 1 and 20 cells")
        for k in picks:
            metainv.as_design(designs, k)  # a bad candidate number is refused now
        params = {"designs": str(designs), "candidates": picks, "box": box}
        return JSONResponse({"id": manager.submit("grade", params)})

    @_endpoint
    async def job_state(request: Request) -> Response:
        state = manager.state(request.path_params["id"])
        answer = _public(state)
        result = manager.folder(state["id"]) / RESULT_FOLDER
        if state["status"] == DONE:
            answer["files"] = sorted(p.name for p in result.iterdir() if p.is_file())
            for name in ("designs.json", "summary.json"):
                if (result / name).is_file():
                    answer[name.split(".")[0]] = read_json(result / name)
        return JSONResponse(answer)

    @_endpoint
    async def cancel_job(request: Request) -> Response:
        return JSONResponse(_public(manager.cancel(request.path_params["id"])))

    async def job_events(request: Request) -> Response:
        try:
            manager.folder(request.path_params["id"])
        except MetainvError as error:
            return _error(describe(error), status=404)

        async def stream() -> Any:
            last = None
            while True:
                try:
                    state = _public(manager.state(request.path_params["id"]))
                except (MetainvError, OSError, ValueError) as error:
                    yield f"event: failure\ndata: {json.dumps({'error': describe(error)})}\n\n"
                    return
                text = json.dumps(state)
                if text != last:
                    yield f"data: {text}\n\n"
                    last = text
                if state["status"] in FINAL:
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(EVENT_INTERVAL)

        return StreamingResponse(stream(), media_type="text/event-stream")

    @_endpoint
    async def job_file(request: Request) -> Response:
        result = manager.folder(request.path_params["id"]) / RESULT_FOLDER
        name = request.path_params["name"]
        files = {p.name: p for p in result.iterdir() if p.is_file()} if result.is_dir() else {}
        if name not in files or name.startswith("."):
            return _error(f"no file {name!r} in this job's results", status=404)
        return FileResponse(files[name], filename=name)

    @_endpoint
    async def candidate_design(request: Request) -> Response:
        designs = manager.folder(request.path_params["id"]) / RESULT_FOLDER / "designs.json"
        family, value = metainv.as_design(designs, int(request.path_params["k"]))
        k = int(request.path_params["k"])
        return Response(
            json.dumps(family.to_dict(value), indent=2),
            media_type="application/json",
            headers={"content-disposition": f'attachment; filename="candidate_{k:02d}.json"'},
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        manager.start()
        yield
        manager.stop()

    routes = [
        Route("/", index),
        Route("/vendor/plotly.min.js", plotly_js),
        Route("/api/info", info),
        Route("/api/targets/{name}", builtin_target),
        Route("/api/target", check_target, methods=["POST"]),
        Route("/api/homogenize", homogenize, methods=["POST"]),
        Route("/api/surface", surface_of, methods=["POST"]),
        Route("/api/jobs", list_jobs),
        Route("/api/jobs/design", submit_design, methods=["POST"]),
        Route("/api/jobs/grade", submit_grade, methods=["POST"]),
        Route("/api/jobs/{id}", job_state),
        Route("/api/jobs/{id}/cancel", cancel_job, methods=["POST"]),
        Route("/api/jobs/{id}/events", job_events),
        Route("/api/jobs/{id}/files/{name}", job_file),
        Route("/api/jobs/{id}/candidates/{k:int}/design.json", candidate_design),
        Mount("/static", StaticFiles(directory=_static_folder()), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(f"no such page or endpoint: {request.url.path}", status=404)

    middleware = []
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=middleware,
        exception_handlers={404: not_found},
    )
    app.state.jobs = manager
    return app


def _public(state: dict[str, Any]) -> dict[str, Any]:
    """A job record for the page (without the target text of its parameters)."""
    params = dict(state.get("params") or {})
    if isinstance(params.get("target"), dict):
        params["target"] = {k: v for k, v in params["target"].items() if k != "text"}
    params.pop("designs", None)
    return {**state, "params": params}
