"""Keep each idle WebSocket connection small: one eventlet web process holds 10,000 of them.

- Decline compression. Browsers, Electron and most clients offer permessage-deflate;
  accepting it keeps zlib state of about 100 KiB per connection in the server (measured:
  150 KiB vs 52 KiB per idle client), which task events (small JSON) do not repay. Hiding
  the offer from the handshake makes the server answer without the extension, and every
  client falls back to plain frames.
- Hand gunicorn's socket to eventlet's WebSocket handler ourselves. python-engineio's
  middleware does it by defining a new wrapper class on every request under gunicorn, and
  a class object costs about 2.5 KiB for as long as its connection lives (25 MiB per
  10,000 clients); one shared class does the same job.
"""


class _EventletInput:
    """What eventlet's WebSocket handler expects in environ['eventlet.input']."""

    __slots__ = ("socket",)

    def __init__(self, socket):
        self.socket = socket

    def get_socket(self):
        return self.socket


class LeanWebSocket:
    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
            if "gunicorn.socket" in environ:
                environ["eventlet.input"] = _EventletInput(environ.pop("gunicorn.socket"))
        return self.wsgi_app(environ, start_response)
