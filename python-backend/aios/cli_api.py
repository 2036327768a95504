"""The CLI's configuration and REST client: every failure becomes a CliError that says what
to do (see aios/cli.py)."""

import os
from pathlib import Path
from typing import Optional

import httpx
from dotenv import dotenv_values

DEFAULT_URL = "http://127.0.0.1:8765"
PROJECT_ENV = Path(__file__).resolve().parents[2] / ".env"


class CliError(Exception):
    """A command that cannot be carried out; the message is for the user."""


def find_token(given: Optional[str]) -> str:
    """--token, else AIOS_API_TOKEN, else ./.env, else the project's .env."""
    if given or os.environ.get("AIOS_API_TOKEN"):
        return given or os.environ["AIOS_API_TOKEN"]
    for env_file in (Path.cwd() / ".env", PROJECT_ENV):
        if env_file.is_file() and dotenv_values(env_file).get("AIOS_API_TOKEN"):
            return dotenv_values(env_file)["AIOS_API_TOKEN"]
    raise CliError("no API token: pass --token, set AIOS_API_TOKEN, or put it in .env")


class Api:
    """The REST API, with every failure turned into a CliError that says what to do."""

    def __init__(self, url: str, token: str = ""):
        self.url, self.token = url.rstrip("/"), token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def request(self, method: str, path: str, ok=(200, 201, 202), **kwargs) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the AI-OS server at {self.url} ({exc}); is it "
                           f"running? Set --url or AIOS_URL.") from None
        if response.status_code == 401:
            raise CliError("the server refused the API token (401 unauthorized); "
                           "check --token or AIOS_API_TOKEN")
        if response.status_code not in ok:
            raise CliError(f"the server answered {response.status_code}: {error_text(response)}")
        return response

    def json(self, method: str, path: str, **kwargs) -> dict:
        return self.request(method, path, **kwargs).json()


def error_text(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return response.text[:300]
