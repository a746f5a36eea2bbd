"""The studio's HTTP side: the page (static files, no build step) and the JSON API it uses.

Safe by default, since a server on 127.0.0.1 is reachable from every page a browser opens:
- every request needs the per-process token: from the printed URL once (``/?token=…``,
  which sets an HttpOnly, SameSite=Strict cookie and redirects to ``/``), then the cookie,
  or an ``Authorization: Bearer …`` header for scripts; without it, 401;
- the ``Host`` header must name the server (its bound address, ``localhost`` or a loopback
  address; with ``--host 0.0.0.0`` any IP address): a DNS-rebinding name gets 403;
- requests that change something, and the event stream, must not come from another site
  (``Origin`` other than the server's own, or ``Sec-Fetch-Site: cross-site``): 403;
- no CORS headers at all; a Content-Security-Policy that allows only the server itself;
- request bodies are limited before they are read (413), uploads are decoded to be
  checked, and no request value becomes a path (see :mod:`impasto.web.studio`).
"""

from __future__ import annotations

import io
import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable, Iterator
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from impasto._version import __version__
from impasto.config import fields_help, parse_json
from impasto.errors import ConfigError, ImpastoError
from impasto.imageio import load_image, resize, size_of, tensor_to_pil
from impasto.jobs.base import UnknownJob
from impasto.presets import PRESETS
from impasto.web.studio import MAX_STYLES, Studio, Upload, UploadError, too_large

#: The page's files: name -> media type. Nothing else is served from the package.
STATIC = {
    "studio.js": "text/javascript; charset=utf-8",
    "studio.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: The explain report is one self-contained file: its own inline style, images as data: URLs.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the first URL carries the token
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
THUMBNAIL = 512


def message(exc: ImpastoError) -> str:
    """The one line a person reads: the library's, with the recipe's names unquoted."""
    if isinstance(exc, ConfigError):
        return f"{exc.field}: {exc.reason}".replace("`", "")
    return str(exc).replace("`", "")


def _error(status: int, text: str) -> JSONResponse:
    return JSONResponse({"error": text}, status_code=status, headers=HEADERS)


class BodyTooLarge(Exception):
    pass


class LimitBody:
    """ASGI middleware: a request body over ``limit`` bytes is refused with 413, by its
    Content-Length before anything is read, or as soon as the bytes sent pass it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            response = _error(413, f"request: {int(length) / 2**20:.1f} MB sent, over the limit of "
                              f"{self.limit / 2**20:.0f} MB")  # fmt: skip
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge
            return message

        await self.app(scope, limited, send)


def _hostname(header: str) -> str:
    """``Host`` without its port: ``[::1]:8765`` -> ``::1``."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def create_app(
    studio: Studio, token: str, *, host: str = "127.0.0.1", port: int = 8765, max_body: int | None = None
) -> FastAPI:
    """The studio's ASGI app. ``host`` and ``port`` are where it is served (for the
    ``Host`` check and the cookie's name: cookies do not tell ports apart); ``max_body``:
    the largest request body (default: room for a job's files at the studio's limit)."""
    app = FastAPI(title="impasto studio", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(LimitBody, limit=max_body or studio.max_upload * (MAX_STYLES + 2) + 2**20)
    _guard(app, token, host, port)
    _page(app, studio)
    _jobs(app, studio)
    _job_files(app, studio)
    return app


def _guard(app: FastAPI, token: str, host: str, port: int) -> None:
    """Every request: the Host check (DNS rebinding), the token (the address's, then a
    cookie or a bearer header), same-site for what changes or streams; errors as one line."""
    cookie = f"impasto-{port}"
    exposed = host in ("0.0.0.0", "::")
    allowed_hosts = LOOPBACK | {host}

    def host_ok(request: Request) -> bool:
        name = _hostname(request.headers.get("host", "")).lower()
        return name in allowed_hosts or (exposed and _is_ip(name))

    def token_ok(request: Request) -> bool:
        given = request.cookies.get(cookie, "")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return secrets.compare_digest(given.encode(), token.encode())

    def same_site(request: Request) -> bool:
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        return origin is None or origin == f"{request.url.scheme}://{request.headers.get('host', '')}"

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if not host_ok(request):
            return _error(403, f"Host {request.headers.get('host', '')!r} is not this server (DNS rebinding?)")
        path = request.url.path
        if path == "/" and "token" in request.query_params:
            if not secrets.compare_digest(request.query_params["token"].encode(), token.encode()):
                return _error(401, "wrong token: open the address impasto serve printed")
            redirect = RedirectResponse("/", status_code=303, headers=HEADERS)
            redirect.set_cookie(cookie, token, httponly=True, samesite="strict", path="/")
            return redirect
        if not token_ok(request):
            if path == "/":
                page = "<!doctype html><title>impasto studio</title><p>Open the address <code>impasto serve</code> printed (it carries the token)."  # noqa: E501
                return HTMLResponse(page, status_code=401, headers=HEADERS)
            return _error(401, "no valid token: open the address impasto serve printed")
        changes = request.method not in ("GET", "HEAD")
        if (changes or path.endswith("/events")) and not same_site(request):
            return _error(403, f"cross-site request from {request.headers.get('origin', 'another site')} refused")
        try:
            response = await call_next(request)
        except BodyTooLarge:
            return _error(413, "request: the upload is over the size limit")
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(UnknownJob)
    async def unknown(request: Request, exc: UnknownJob) -> JSONResponse:
        return _error(404, str(exc).strip("'\""))

    @app.exception_handler(UploadError)
    async def refused(request: Request, exc: UploadError) -> JSONResponse:
        return _error(exc.status, message(exc))

    @app.exception_handler(ImpastoError)
    async def bad_input(request: Request, exc: ImpastoError) -> JSONResponse:
        return _error(400, message(exc))


def _page(app: FastAPI, studio: Studio) -> None:
    """The page, its static files, the presets and the demo pair."""

    @app.get("/")
    def page() -> Response:
        html = resources.files("impasto.web").joinpath("static/index.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            return _error(404, f"no file {name!r}")
        data = resources.files("impasto.web").joinpath(f"static/{name}").read_bytes()
        return Response(data, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    demo_cache: dict[str, bytes] = {}

    @app.get("/api/presets")
    def presets() -> dict[str, Any]:
        help = {name: {k: v for k, v in meta.items() if k in ("help", "kind", "choices")}
                for name, meta in fields_help().items()}  # fmt: skip
        return {
            "presets": {name: recipe.to_dict() for name, recipe in PRESETS.items()},
            "fields": help,
            "max_upload": studio.max_upload,
            "max_styles": MAX_STYLES,
        }

    @app.get("/api/demo/{which}")
    def demo(which: str) -> Response:
        """The built-in demo pair: ``content`` (JPEG) and ``style`` (PNG)."""
        from impasto.demo import demo_content, paint_style

        if which not in ("content", "style"):
            return _error(404, f"no demo image {which!r} (content or style)")
        if which not in demo_cache:
            buffer = io.BytesIO()
            if which == "content":
                buffer.write(demo_content().read_bytes())
            else:
                paint_style().save(buffer, format="PNG")
            demo_cache[which] = buffer.getvalue()
        media = "image/jpeg" if which == "content" else "image/png"
        return Response(demo_cache[which], media_type=media, headers={"Cache-Control": "max-age=3600"})


def _jobs(app: FastAPI, studio: Studio) -> None:
    """Jobs submitted, listed, stopped, deleted and printed."""

    @app.post("/api/jobs", status_code=201)
    async def submit(request: Request) -> JSONResponse:
        form = await request.form(max_files=MAX_STYLES + 2, max_fields=8)
        try:

            async def upload(item: Any, field: str) -> Upload:
                if not isinstance(item, UploadFile):
                    raise UploadError(f"{field}: expected a file, got text")
                if item.size is not None and item.size > studio.max_upload:  # refused before it is read
                    raise too_large(field, item.filename, item.size, studio.max_upload)
                return Upload(field, item.filename or field, await item.read())

            content = await upload(form["content"], "content") if "content" in form else None
            styles = [await upload(item, "style") for item in form.getlist("style")]
            mask = await upload(form["mask"], "mask") if "mask" in form else None
            text = form.get("recipe", "{}")
            if not isinstance(text, str):
                raise UploadError("recipe: expected JSON text, got a file")
            recipe = parse_json(text)
            again = form.get("again")
            if again is not None and not isinstance(again, str):
                raise UploadError("again: expected a job id, got a file")
        finally:
            await form.close()
        job_id = await run_in_threadpool(studio.submit, content, styles, recipe, mask, again or None)  # decodes
        return JSONResponse({"id": job_id}, status_code=201)

    @app.get("/api/jobs")
    def jobs() -> dict[str, Any]:
        return {"jobs": studio.jobs()}

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str) -> dict[str, Any]:
        return studio.status(job_id)

    @app.delete("/api/jobs/{job_id}")
    def delete(job_id: str) -> dict[str, Any]:
        return {"id": job_id, "done": studio.delete(job_id)}

    @app.post("/api/jobs/{job_id}/stop")
    def stop(job_id: str) -> dict[str, Any]:
        studio.stop(job_id)
        return {"id": job_id, "done": "stopping"}

    @app.post("/api/jobs/{job_id}/print", status_code=201)
    async def print_job(job_id: str, request: Request) -> JSONResponse:
        form = await request.form(max_files=0, max_fields=2)
        paper, dpi = form.get("paper", "A4"), form.get("dpi")
        if not isinstance(paper, str) or not (dpi is None or isinstance(dpi, str)):
            raise UploadError("print: expected a paper size and a dpi as text")
        try:
            resolution = None if dpi in (None, "") else float(dpi)
        except ValueError:
            raise ConfigError("dpi", f"must be a number of dots per inch, got {dpi!r}") from None
        new_id = await run_in_threadpool(studio.print_job, job_id, paper, resolution)
        return JSONResponse({"id": new_id}, status_code=201)


def _job_files(app: FastAPI, studio: Studio) -> None:
    """What a job gives back: its events, preview, result, explain report and inputs."""

    @app.get("/api/jobs/{job_id}/events")
    def events(job_id: str, request: Request, since: int = 0) -> StreamingResponse:
        last = request.headers.get("last-event-id", "")
        start = int(last) if last.isdigit() else max(0, since)
        source = studio.events(job_id, start)  # UnknownJob now, while a status can still be sent

        def stream() -> Iterator[str]:
            number = start
            yield "retry: 1000\n\n"
            for event in source:
                if event is None:
                    yield ": still running\n\n"
                    continue
                number += 1
                yield f"id: {number}\ndata: {json.dumps(event)}\n\n"

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    @app.get("/api/jobs/{job_id}/preview.jpg")
    def preview(job_id: str) -> Response:
        data = studio.preview_jpeg(job_id)
        if data is None:
            return Response(status_code=204, headers={"Cache-Control": "no-store"})
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/api/jobs/{job_id}/result.{fmt}")
    def result(job_id: str, fmt: str) -> Response:
        if fmt not in ("png", "jpg"):
            return _error(404, f"no result format {fmt!r} (png or jpg)")
        data = studio.file(job_id, f"result.{fmt}").read_bytes()
        return Response(
            data,
            media_type="image/png" if fmt == "png" else "image/jpeg",
            headers={"Content-Disposition": f'attachment; filename="impasto-{job_id}.{fmt}"'},
        )

    @app.get("/api/jobs/{job_id}/explain")
    def explain(job_id: str) -> Response:
        """The explain report on a finished job (one self-contained HTML page)."""
        stylizer = studio.runner.shared_stylizer()  # the network already loaded, if any
        html = studio.explain_html(job_id, stylizer)
        return HTMLResponse(html, headers={"Content-Security-Policy": REPORT_CSP, "X-Frame-Options": "SAMEORIGIN"})

    @app.get("/api/jobs/{job_id}/inputs/{name}")
    def inputs(job_id: str, name: str) -> Response:
        """A job's photo, painting or mask, decoded and re-encoded as a JPEG thumbnail
        (what was uploaded is never sent back as it came)."""
        image = load_image(studio.file(job_id, name), needed=THUMBNAIL**2)
        h, w = size_of(image)
        if max(h, w) > THUMBNAIL:
            f = THUMBNAIL / max(h, w)
            image = resize(image, (max(1, round(h * f)), max(1, round(w * f))))
        buffer = io.BytesIO()
        tensor_to_pil(image).save(buffer, format="JPEG", quality=88)
        return Response(buffer.getvalue(), media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})
