"""python-backend/app.py's two entry points, each resolved in a fresh process the way its
server does it: `celery -A app.celery` (Celery's find_app) gets the Celery app without the web
or eventlet; `gunicorn app:app` (gunicorn's import_app) gets the web with every fix of
aios/web/server_fixes.py installed."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "python-backend"
REQUIRED = {"AIOS_API_TOKEN": "a" * 16, "SECRET_KEY": "b" * 16, "SANDBOX_MANAGER_TOKEN": "c" * 16}
WEB_PACKAGES = ("eventlet", "engineio", "socketio", "flask_socketio", "flask", "aios.web")


def resolve(tmp_path, code: str, from_backend: bool = False) -> dict:
    """Run `code` in a child with a configuration that needs no server (nothing connects to
    this Redis while resolving); the JSON it prints last. By default python-backend is on its
    path and its working directory empty, so no developer's .env is read; `from_backend` runs
    it as Celery's command runs, from python-backend/ with nothing on the path (`-P`: not
    even the working directory, which Celery adds only while it imports the module)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIOS_", "SANDBOX_", "REDIS_", "CELERY_"))
           and k not in ("SECRET_KEY", "PYTHONPATH")}
    env.update(REQUIRED, REDIS_URL="redis://127.0.0.1:9/0")
    if not from_backend:
        env["PYTHONPATH"] = str(BACKEND)
    done = subprocess.run([sys.executable, "-P", "-c", textwrap.dedent(code)], env=env,
                          cwd=BACKEND if from_backend else tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_worker_path_builds_celery_alone_imports_no_eventlet_and_installs_no_fix(tmp_path):
    found = resolve(tmp_path, f"""
        import json, sys
        from celery import Celery
        from celery.app.utils import find_app  # what `celery -A app.celery ...` calls

        celery = find_app("app.celery")
        loaded = sorted(name for name in sys.modules
                        if name.split(".")[0] in {WEB_PACKAGES!r} or name.startswith("aios.web"))
        print(json.dumps({{"celery": isinstance(celery, Celery),
                          "run_task": "aios.run_task" in celery.tasks,
                          "broker": celery.conf.broker_url,
                          "same": sys.modules["app"].celery is celery, "loaded": loaded,
                          "flask_app": "app" in vars(sys.modules["app"])}}))
        """, from_backend=True)
    assert found["celery"] and found["run_task"] and found["same"]
    assert found["broker"] == "redis://127.0.0.1:9/0"
    assert found["loaded"] == []  # no eventlet, Socket.IO, Flask, web or server_fixes
    assert not found["flask_app"]


def test_the_web_path_installs_every_fix(tmp_path):
    found = resolve(tmp_path, """
        import json, sys
        from gunicorn.util import import_app  # what `gunicorn app:app` calls

        web = import_app("app:app")
        from eventlet.websocket import RFC6455WebSocket
        from aios.web import socketio
        from aios.web import server_fixes
        from aios.web.state import web_state
        connect = socketio.server.eio.handlers["connect"]
        print(json.dumps({
            "installed": server_fixes.installed,
            "unmask": RFC6455WebSocket._apply_mask is server_fixes.unmask,
            "bounded": RFC6455WebSocket.Message is server_fixes.BoundedMessage,
            "lean": isinstance(web.wsgi_app, server_fixes.LeanWebSocket),
            "deadline": isinstance(getattr(connect, "connect_deadline", None),
                                   server_fixes.ConnectDeadline),
            "async_mode": socketio.server.async_mode,
            "celery_is_the_webs": sys.modules["app"].celery is web_state(web).celery}))
        """)
    assert found["installed"] == ["lean_websocket", "eventlet_websocket_frames",
                                  "connect_deadline", "gunicorn_json_errors"]
    assert found["unmask"] and found["bounded"] and found["lean"] and found["deadline"]
    assert found["async_mode"] == "eventlet"
    assert found["celery_is_the_webs"]


def test_the_gevent_web_path_installs_its_fixes_and_imports_no_eventlet(tmp_path):
    found = resolve(tmp_path, """
        import json, os, sys
        from gevent import monkey
        monkey.patch_all()  # what gunicorn's gevent worker does before it loads the app
        os.environ["AIOS_WEB_WORKER_CLASS"] = "gevent"
        from gunicorn.util import import_app

        web = import_app("app:app")
        from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI
        from aios.web import socketio
        from aios.web import server_fixes
        eio = socketio.server.eio
        websocket = eio._async["websocket"](lambda ws: None, eio)
        print(json.dumps({
            "installed": server_fixes.installed,
            "async_mode": socketio.server.async_mode,
            "simple_websocket": isinstance(websocket, SimpleWebSocketWSGI),
            "bound": websocket.server_args.get("max_message_size"),
            "buffer": eio.max_http_buffer_size,
            "lean": type(web.wsgi_app).__name__,
            "eventlet": sorted(m for m in sys.modules if m.split(".")[0] == "eventlet")}))
        """)
    assert found["installed"] == ["lean_websocket", "simple_websocket_bound", "connect_deadline",
                                  "gunicorn_json_errors"]
    assert found["async_mode"] == "gevent" and found["simple_websocket"]
    assert found["bound"] == found["buffer"] > 0  # AIOS_MAX_REQUEST_BYTES
    assert found["lean"] == "LeanWebSocket"
    assert found["eventlet"] == []


def test_an_unknown_name_is_an_attribute_error(tmp_path):
    found = resolve(tmp_path, """
        import json, sys
        import app
        try:
            app.nothing
        except AttributeError as exc:
            print(json.dumps({"error": str(exc), "loaded": "aios.settings" in sys.modules}))
        """)
    assert found == {"error": "module 'app' has no attribute 'nothing'", "loaded": False}


def test_create_app_alone_installs_no_fix_and_in_threading_mode_imports_no_eventlet(tmp_path):
    found = resolve(tmp_path, """
        import json, sys
        from aios.settings import load_settings
        from aios.web import create_app, socketio

        web = create_app(load_settings(), async_mode="threading")
        print(json.dumps({
            "eventlet": sorted(m for m in sys.modules if m.split(".")[0] == "eventlet"),
            "server_fixes": "aios.web.server_fixes" in sys.modules,
            "wsgi_app": type(web.wsgi_app).__name__,
            "deadline": hasattr(socketio.server.eio.handlers["connect"], "connect_deadline")}))
        """)
    assert found == {"eventlet": [], "server_fixes": False, "wsgi_app": "_SocketIOMiddleware",
                     "deadline": False}
