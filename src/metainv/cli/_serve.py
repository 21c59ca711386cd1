"""``metainv serve``: the browser design studio (:mod:`metainv.web`) on a local port."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import typer

from metainv.cli._app import app
from metainv.cli._errors import fail, handle_errors


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_can_listen(host: str, port: int) -> None:
    """Refuse (one line, exit 2) an address this machine cannot listen on (unknown host, port
    taken or not allowed), before the app starts."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM
        )[0]
    except (OSError, UnicodeError) as error:
        raise fail(f"cannot listen on {host}: unknown host ({error})") from None
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise fail(
            f"cannot listen on {host}:{port}: {reason}; stop the other server or pick another "
            "--port"
        ) from None


@app.command("serve")
@handle_errors
def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    jobs: Path = typer.Option(
        Path("metainv-jobs"), "--jobs", help="Folder of the design jobs (kept across restarts)."
    ),
    workers: int = typer.Option(1, "--workers", help="Jobs running at the same time."),
    queue: int = typer.Option(8, "--queue", help="Jobs that may wait; more are refused."),
    time_limit: float = typer.Option(
        600.0, "--time-limit", help="Seconds a job may run before it is stopped."
    ),
) -> None:
    """Start the web app: target check, design jobs, results, explore and grade pages."""
    if not 1 <= port <= 65535:
        raise fail(f"--port must lie in 1..65535, got {port}")
    if workers < 1 or queue < 0 or not time_limit > 0:
        raise fail("--workers must be >= 1, --queue >= 0 and --time-limit > 0")
    if jobs.exists() and not jobs.is_dir():
        raise fail(f"--jobs {jobs} is a file, expected a folder")
    import uvicorn

    from metainv.web.app import LOCAL_HOSTS, create_app

    if not is_loopback(host):
        typer.echo(
            f"warning: listening on {host}, not on this machine only: anyone who can reach it "
            "can run jobs and read their results (there is no login)",
            err=True,
        )
    check_can_listen(host, port)
    jobs.mkdir(parents=True, exist_ok=True)  # an uncreatable folder: one line, before serving
    web = create_app(
        jobs,
        workers=workers,
        max_queued=queue,
        time_limit=time_limit,
        allowed_hosts=LOCAL_HOSTS if is_loopback(host) else None,
    )
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"metainv serve: http://{shown}:{port}/ (jobs in {jobs}); Ctrl-C stops", err=True)
    uvicorn.run(web, host=host, port=port, log_level="warning")
