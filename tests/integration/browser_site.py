"""A small website for the browser tests: a login form and a page behind it, a select list,
a download, a link that opens a tab, and a listener that records every request it gets (the
exfiltration test's "elsewhere"). Tests may only reach this machine's own addresses, and the
browser runs in a container, so the site listens on the Docker bridge's gateway address."""

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOGIN = b"""<html><head><title>Sign in</title></head><body><h1>Sign in</h1>
<form method="post" action="/login">
  <label>User <input name="user" type="text"></label>
  <label>Password <input name="password" type="password"></label>
  <button type="submit">Log in</button>
</form></body></html>"""
ACCOUNT = b"""<html><head><title>Account</title></head><body><main><h1>Your account</h1>
<p>Balance: 42 coins</p><a href="/pick">Pick a colour</a>
<a href="/files" target="_blank">Your files</a></main></body></html>"""
PICK = b"""<html><head><title>Pick</title></head><body>
<label>Colour <select id="colour" onchange="document.getElementById('out').textContent =
  'You picked: ' + this.value"><option value="red">Red</option><option value="green">Green
  </option><option value="blue">Blue</option></select></label><p id="out">Nothing yet</p>
<button onclick="document.body.innerHTML = '<p>Gone</p>'">Clear the page</button>
</body></html>"""
FILES = b"""<html><head><title>Files</title></head><body>
<a href="/files/report.csv">Download the report</a></body></html>"""
REPORT = b"month,amount\njan,10\nfeb,12\n"


@dataclass
class Site:
    host: str
    server: ThreadingHTTPServer = None
    requests: list = field(default_factory=list)  # every path asked for, in order

    @property
    def address(self) -> str:
        return f"{self.host}:{self.server.server_port}"

    def url(self, path: str = "/") -> str:
        return f"http://{self.address}{path}"

    def start(self) -> "Site":
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                site.requests.append(self.path)
                path = urlsplit(self.path).path
                logged_in = "session=ada" in (self.headers.get("Cookie") or "")
                if path == "/login":
                    return self._send(200, LOGIN)
                if path == "/account":
                    return self._send(200, ACCOUNT) if logged_in else \
                        self._send(303, b"", Location="/login")
                if path == "/pick":
                    return self._send(200, PICK)
                if path == "/files":
                    return self._send(200, FILES)
                if path == "/files/report.csv":
                    return self._send(200, REPORT, **{
                        "Content-Type": "text/csv",
                        "Content-Disposition": 'attachment; filename="report.csv"'})
                self._send(200 if path == "/" else 404, b"<html><title>Hi</title>ok</html>")

            def do_POST(self):
                site.requests.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                if form.get("user") == ["ada"] and form.get("password") == ["lovelace"]:
                    return self._send(303, b"", Location="/account",
                                      **{"Set-Cookie": "session=ada; Path=/"})
                self._send(401, b"<html><title>Sign in</title>Wrong password</html>")

            def _send(self, status: int, body: bytes, **headers):
                self.send_response(status)
                headers.setdefault("Content-Type", "text/html; charset=utf-8")
                for name, value in dict(headers, **{"Content-Length": str(len(body))}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def gateway_address(docker_client) -> str:
    """The Docker bridge's gateway: this machine's own address, seen from containers."""
    return docker_client.networks.get("bridge").attrs["IPAM"]["Config"][0]["Gateway"]
