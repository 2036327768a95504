"""Entry points, from python-backend/: `gunicorn -k eventlet -w 1 app:app` serves the web (or
`-k gevent`, with AIOS_WEB_WORKER_CLASS=gevent: gunicorn.conf.py checks they agree);
`celery -A app.celery worker` (and `flower`, `inspect`...) gets the Celery app.

Each name is built when it is first read (a module __getattr__, PEP 562; gunicorn and
Celery both read it with getattr): `app.celery` builds the Celery app alone, without the
Flask app, Socket.IO or any fix of eventlet's internals, so the worker never imports
eventlet or gevent; `app.app` builds the web and installs those fixes (aios/web/server_fixes.py)."""

import logging
import os

# Imported now, while the module is: Celery (`-A app.celery`) puts the working directory on
# sys.path only while it imports this module, and reads `celery` from it afterwards. The
# package is light (a docstring); its location is then known for the lazy imports below.
import aios  # noqa: F401

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
logging.getLogger("httpx").setLevel(logging.WARNING)


def _web():
    from aios.settings import load_settings
    from aios.web import server_fixes  # first: it keeps eventlet's deprecation notice quiet
    from aios.logs import ErrorsToLog, log_as
    from aios.web import create_app, socketio

    settings = load_settings()
    log_as(settings)  # gunicorn's loggers too (JSON: gunicorn.conf.py routes them to root)
    # Socket.IO's async mode is the worker's: gunicorn has already monkey-patched for it
    web = create_app(settings, async_mode=settings.web_worker_class)
    server_fixes.install(web, socketio, settings)
    if settings.log_format == "json":
        web.wsgi_app = ErrorsToLog(web.wsgi_app)
    return web


def _celery():
    if "app" in globals():  # the web's own, in a process that built the web
        from aios.web.state import web_state
        return web_state(globals()["app"]).celery
    from aios.celery_app import create_celery
    from aios.logs import log_as
    from aios.settings import load_settings
    settings = load_settings()
    log_as(settings)  # and again once Celery has set up its own (aios/celery_app.py)
    return create_celery(settings)


_BUILDERS = {"app": _web, "celery": _celery}


def __getattr__(name: str):
    build = _BUILDERS.get(name)
    if build is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = build()
    except AttributeError as exc:  # would read as "no attribute app" to gunicorn and Celery
        raise RuntimeError(f"building app.{name} failed: {exc!r}") from exc
    globals()[name] = value
    return value
