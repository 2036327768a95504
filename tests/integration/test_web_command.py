"""The design's web command, unchanged, run from python-backend/ as a user would: gunicorn
reads python-backend/gunicorn.conf.py, so the command holds more clients than gunicorn's
default of 1000 connections, past which client 1,001 and the health check hang silently."""

import time

import httpx

from .stack import BACKEND, VENV_BIN, IdleSockets, TaskListener, start_web

CLIENTS = 1100


def design_command(port: int) -> list[str]:
    # As written in the design, but on a free port: 8765 may be taken by a running stack.
    return [str(VENV_BIN / "gunicorn"), "--worker-class", "eventlet", "-w", "1",
            "--bind", f"0.0.0.0:{port}", "app:app"]


def test_the_design_command_holds_more_clients_than_gunicorns_default(stack_env, worker):
    web = start_web(stack_env, "web-design-command", command=design_command, cwd=BACKEND)
    idle = IdleSockets(web.url)
    try:
        idle.open(CLIENTS, timeout=60)
        assert idle.dropped() == 0, idle.first_error()
        assert idle.held() == CLIENTS

        started = time.monotonic()
        health = httpx.get(web.url + "/health", timeout=5)
        assert health.status_code == 200, health.text
        assert time.monotonic() - started < 1

        listener = TaskListener(web.url).connect()  # client 1,102 still gets its task through
        try:
            ack = listener.call("task:submit", {"kind": "echo", "input": {"text": "hi"}})
            assert listener.wait_final(ack["task_id"]) == "succeeded"
        finally:
            listener.close()
    finally:
        idle.close()
        web.stop()
