"""The web console: a static page at `/` that talks to the API like any other client.

The files hold no secrets, so they are served without the token; the page sends the token
with every REST call and Socket.IO connect. A strict CSP forbids inline scripts and any
origin but this server.
"""

from pathlib import Path

from flask import Blueprint, abort, send_from_directory

FOLDER = Path(__file__).with_name("console")
SERVED = {".html", ".js", ".css"}
HEADERS = {
    "Content-Security-Policy": "; ".join([
        "default-src 'self'", "connect-src 'self' ws: wss:", "img-src 'self' data: blob:",
        "object-src 'none'", "base-uri 'none'", "form-action 'none'",
        "frame-ancestors 'none'"]),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

bp = Blueprint("console", __name__)


@bp.after_request
def harden(response):
    response.headers.update(HEADERS)
    return response


@bp.get("/")
def index():
    return send_from_directory(FOLDER, "index.html")


@bp.get("/console/<path:name>")
def asset(name: str):
    if Path(name).suffix not in SERVED:
        abort(404)
    return send_from_directory(FOLDER, name)  # refuses paths that leave the folder
