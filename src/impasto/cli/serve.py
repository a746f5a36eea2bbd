"""``impasto serve``: the studio, a local web page to paint, watch and steer runs."""

from __future__ import annotations

import argparse
import math
import secrets
import socket
import sys
import threading
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING

from impasto.errors import ImpastoError
from impasto.resources import user_folder

if TYPE_CHECKING:
    from impasto.jobs import Runner
    from impasto.runtime import Runtime

DEFAULT_PORT = 8765


def data_home() -> Path:
    """Where the studio keeps its gallery by default: the user's data folder."""
    return user_folder("data") / "studio"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve",
        help="the studio: a local web page to paint, watch, stop and keep results",
        description="Serve the studio on this machine and print its address (with the token every request needs).",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 exposes it to the network)"
    )
    parser.add_argument("--data-dir", metavar="DIR", help=f"where results are kept (default {data_home()})")
    parser.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    parser.add_argument("--device", default=None, help="device to paint on (default: the best there is)")
    parser.add_argument(
        "--max-upload-mb", type=float, default=50.0, metavar="MB", help="largest file accepted (default 50)"
    )
    parser.add_argument(
        "--ray", nargs="?", const="local", metavar="ADDRESS",
        help="paint the jobs on Ray actors, several at once: a local Ray runtime, or the cluster at ADDRESS "
        "(auto, ray://host:port); needs impasto[ray]",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, metavar="N",
        help="jobs painted at once: N worker processes sharing the cores (default 1; with --ray: one per GPU, "
        "else one per core of the cluster)",
    )  # fmt: skip
    parser.set_defaults(handler=main)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or one line on why not (so uvicorn never starts on a port it cannot have)."""
    if not 0 <= port <= 65535:
        raise ImpastoError(f"--port: {port} is not a port number (0-65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ImpastoError(f"--host: {host}: not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise ImpastoError(f"--port: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock


def _runner(args: argparse.Namespace, runtime: Runtime) -> Runner:
    """The studio's runner: jobs in this process, in worker processes, or on Ray actors."""
    from impasto.jobs import LOCAL_RAY, runner_for

    if args.ray is not None:
        from impasto.jobs.ray_runner import exposure

        print(f"impasto serve: {exposure(None if args.ray == LOCAL_RAY else args.ray)}", file=sys.stderr)
    return runner_for(runtime, workers=args.workers, ray=args.ray, preview_seconds=1.0, warm=True)


def main(args: argparse.Namespace) -> int:
    from impasto.web import require_web

    require_web()
    if not math.isfinite(args.max_upload_mb) or args.max_upload_mb <= 0:
        raise ImpastoError(f"--max-upload-mb: must be a positive number, got {args.max_upload_mb}")
    import uvicorn

    from impasto.runtime import Runtime
    from impasto.web.app import create_app
    from impasto.web.studio import Studio

    data = Path(args.data_dir) if args.data_dir else data_home()
    try:
        data.mkdir(parents=True, exist_ok=True)
        probe = data / f".impasto-{secrets.token_hex(4)}.probe"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ImpastoError(f"--data-dir: {data}: cannot write there ({exc.strerror or exc})") from None
    from impasto.jobs.pool import MAX_WORKERS, fit_workers

    if args.workers is not None and not 1 <= args.workers <= MAX_WORKERS:
        raise ImpastoError(f"--workers: must be from 1 to {MAX_WORKERS}, got {args.workers}")
    if args.workers and args.workers > 1 and args.ray in (None, "local"):
        args.workers, line = fit_workers(args.workers, 0)  # the pictures' sizes are not known yet
        if line:
            print(f"impasto serve: {line}", file=sys.stderr)
    if args.ray is not None:
        from impasto.jobs.ray_runner import require_ray

        require_ray()
    runtime = Runtime(device=args.device) if args.device else Runtime()
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    token = secrets.token_urlsafe(24)
    max_upload = int(args.max_upload_mb * 2**20)
    try:
        runner = _runner(args, runtime)
    except BaseException:
        sock.close()
        raise
    try:
        studio = Studio(data, runner, max_upload=max_upload, owner=f"port {port}")
    except BaseException:
        runner.close()
        sock.close()
        raise
    app = create_app(studio, token, host=args.host, port=port)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{port}/?token={token}"
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"impasto: warning: serving on {args.host}: anyone who can reach this machine and has the token "
              "can use the studio", file=sys.stderr)  # fmt: skip
    print(f"impasto studio: {url}\nresults in {data}; Ctrl-C stops the server", flush=True)
    if not args.no_browser:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    try:
        server.run(sockets=[sock])  # until Ctrl-C or SIGTERM, which uvicorn hands back once it has stopped
    except KeyboardInterrupt:
        pass
    finally:
        studio.close()
        sock.close()
    print(f"impasto studio stopped; the results stay in {data}", file=sys.stderr)
    return 0
