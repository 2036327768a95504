"""The web and worker configuration: one validated object, read from env and `.env`."""

import os
import re
import tempfile
from pathlib import Path
from typing import Literal, Optional
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import (Field, SecretStr, ValidationError, ValidationInfo, field_validator,
                      model_validator)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

from .approvals.policy import check_rules, parse_rules

PROJECT_TMP = Path(__file__).resolve().parents[2] / "tmp"  # shared scratch space
ELECTRON_ORIGINS = ["file://", "null", "app://.", "http://localhost:3000",
                    "http://127.0.0.1:3000"]


# Settings this project takes with one value only (ACCEPTS, unset or empty too), and what it
# says of any other, with what to do instead: the design guide's, and retired ones (set in an
# older .env, they would otherwise be silently ignored)
ACCEPTS = {"debug": (False,), "gunicorn_workers": (None, 1),
           "redis_maxmemory_policy": (None, "", "noeviction"),
           "chromium_path": (None, ""), "browse_max_page_bytes": (None, "")}
PLACEHOLDER_KEY = re.compile(r"(sk-)?your-[a-z]+-key-here")  # the design guide's .env
NO_BROWSER_HERE = ("the agent's browser no longer runs in the worker: it runs in browser "
                   "sandboxes of the sandbox manager")
REFUSALS = {
    "chromium_path": f"AIOS_CHROMIUM_PATH is no longer used: {NO_BROWSER_HERE} (their image is "
                     "SANDBOX_BROWSER_IMAGE, built by `make images`). Remove it",
    "browse_max_page_bytes": f"AIOS_BROWSE_MAX_PAGE_BYTES is no longer used: {NO_BROWSER_HERE}, "
                             "whose traffic is capped by the manager's SANDBOX_BROWSER_MAX_BYTES. "
                             "Remove it",
    "debug": "DEBUG=true is not supported: Flask's debug mode (the Werkzeug debugger runs "
             "any code for whoever reaches the port) is never turned on. For verbose logs set "
             "LOG_LEVEL=DEBUG; unset DEBUG or set it to false",
    "gunicorn_workers": "GUNICORN_WORKERS={value} is refused: the web must run one gunicorn "
                        "worker (Flask-SocketIO on eventlet: a client's polling requests and "
                        "its WebSocket must reach the same process, and workers have no sticky "
                        "sessions). One worker holds AIOS_WEB_WORKER_CONNECTIONS clients; for "
                        "more, run more web processes behind a load balancer with sticky "
                        "sessions (they share clients through Redis). Unset it or set it to 1",
    "redis_maxmemory_policy": "REDIS_MAXMEMORY_POLICY={value} is refused: Redis is the "
                              "Celery broker and the task store, and an evicting policy would "
                              "drop queued tasks and their records. Redis runs with noeviction: "
                              "at maxmemory new tasks get 503 storage_full "
                              "(AIOS_REDIS_HIGH_WATER) and the tasks in progress finish. Unset "
                              "it or set it to noeviction; size Redis with REDIS_MAXMEMORY",
}


def metrics_dir_default() -> str:
    """In memory (tmpfs) where there is one: the pool children write their metrics to
    mmap'd files, which on a disk would be written back, and wait on it under I/O load."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    return str(Path(base) / "aios-worker-metrics")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=(".env", "../.env"), extra="ignore",
                                      populate_by_name=True)

    api_token: SecretStr = Field(validation_alias="AIOS_API_TOKEN", min_length=16)
    secret_key: SecretStr = Field(min_length=16)
    redis_url: str = "redis://127.0.0.1:6379/0"
    celery_broker_url: Optional[str] = None  # defaults to REDIS_URL
    celery_result_backend: Optional[str] = None  # defaults to REDIS_URL
    # Compose's generated one (the secrets volume): load_settings puts it into the redis URLs
    # above that carry no password. Natively scripts/run.sh puts it into REDIS_URL itself.
    redis_password: Optional[SecretStr] = Field(default=None, validation_alias="REDIS_PASSWORD")
    sandbox_manager_url: str = "http://127.0.0.1:8000"
    # Several managers (one per Docker host), comma-separated; one token for all of them.
    # Empty: SANDBOX_MANAGER_URL alone (see manager_urls)
    sandbox_manager_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    sandbox_manager_token: SecretStr = Field(min_length=16)
    # A one-shot run without network whose manager died mid-run is run again elsewhere this
    # many times, said in the task's log (its effects stayed in the lost sandbox); 0: never
    sandbox_rerun_lost_runs: int = Field(validation_alias="AIOS_SANDBOX_RERUN_LOST_RUNS",
                                         default=1, ge=0, le=3)
    cors_origins: Annotated[list[str], NoDecode] = Field(
        validation_alias="AIOS_CORS_ORIGINS",
        default_factory=lambda: list(ELECTRON_ORIGINS))
    # The design guide's DEBUG: false (or unset) only, REFUSALS above
    debug: bool = False
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    # text (the default) or json: one JSON object per line (aios/logs.py)
    log_format: Literal["text", "json"] = "text"
    # clients one web process holds at once (gunicorn's worker_connections, see gunicorn.conf.py)
    web_worker_connections: int = Field(validation_alias="AIOS_WEB_WORKER_CONNECTIONS",
                                        default=20000, ge=1)
    # gunicorn's worker class for the web, and Flask-SocketIO's async mode with it: eventlet
    # (the design's) or gevent (what gunicorn 26, without eventlet, keeps; gunicorn.conf.py)
    web_worker_class: Literal["eventlet", "gevent"] = Field(
        default="eventlet", validation_alias="AIOS_WEB_WORKER_CLASS")
    # How the services run: natively (make run) or under compose, whose command line and
    # published ports fix what the design guide's PORT and REDIS_MAXMEMORY would set
    deployment: Literal["native", "compose"] = Field(default="native",
                                                     validation_alias="AIOS_DEPLOYMENT")
    # The web's port: AIOS_WEB_PORT, or the design guide's PORT (make run binds it on
    # 127.0.0.1, compose publishes it; gunicorn.conf.py binds it when no --bind is given)
    web_port: Optional[int] = Field(validation_alias="AIOS_WEB_PORT", default=None,
                                    ge=1, le=65535)
    port: Optional[int] = Field(default=None, ge=1, le=65535)
    # gunicorn's worker timeout: an eventlet worker silent this long is restarted (it limits
    # no request: tasks run in the worker, under AIOS_TASK_TIME_LIMIT_S)
    gunicorn_timeout: int = Field(default=30, gt=0)
    # The design guide's; refused unless 1 (REFUSALS above)
    gunicorn_workers: Optional[int] = None
    # The maxmemory of the redis make run starts (compose: AIOS_REDIS_MAXMEMORY); its policy
    # may only be noeviction (REFUSALS above)
    redis_maxmemory: Optional[str] = None
    redis_maxmemory_policy: Optional[str] = None
    # a WebSocket that has not connected with a valid token by then is closed
    socket_connect_timeout_s: float = Field(validation_alias="AIOS_SOCKET_CONNECT_TIMEOUT_S",
                                            default=20.0, gt=0)

    # LLM providers (a provider is configured when its key, or base URL, is set)
    openai_api_key: Optional[SecretStr] = None
    openai_base_url: Optional[str] = None
    openai_model: str = "gpt-4o-mini"
    anthropic_api_key: Optional[SecretStr] = None
    anthropic_base_url: Optional[str] = None
    anthropic_model: str = "claude-sonnet-5-5"
    groq_api_key: Optional[SecretStr] = None
    groq_base_url: Optional[str] = None
    groq_model: str = "llama-3.3-70b-versatile"
    mistral_api_key: Optional[SecretStr] = None
    mistral_base_url: Optional[str] = None
    mistral_model: str = "mistral-small-latest"
    openai_compatible_base_url: Optional[str] = None
    openai_compatible_api_key: Optional[SecretStr] = None
    openai_compatible_model: str = "llama3.2"
    llm_timeout_s: float = Field(validation_alias="AIOS_LLM_TIMEOUT_S", default=60.0, gt=0)
    llm_max_retries: int = Field(validation_alias="AIOS_LLM_MAX_RETRIES", default=2, ge=0)
    llm_cache_ttl_s: int = Field(validation_alias="AIOS_LLM_CACHE_TTL_S", default=3600, gt=0)
    llm_fallback: Annotated[list[str], NoDecode] = Field(validation_alias="AIOS_LLM_FALLBACK",
                                                         default_factory=list)

    # how long task records and their event logs are kept
    task_retention_s: int = Field(validation_alias="AIOS_TASK_RETENTION_S", default=86400, gt=0)
    task_soft_time_limit_s: int = Field(validation_alias="AIOS_TASK_SOFT_TIME_LIMIT_S",
                                        default=900, gt=0)
    task_time_limit_s: int = Field(validation_alias="AIOS_TASK_TIME_LIMIT_S", default=960, gt=0)
    task_max_attempts: int = Field(validation_alias="AIOS_TASK_MAX_ATTEMPTS", default=3, ge=1)
    heartbeat_interval_s: float = Field(validation_alias="AIOS_HEARTBEAT_INTERVAL_S",
                                        default=2.0, gt=0)
    heartbeat_ttl_s: float = Field(validation_alias="AIOS_HEARTBEAT_TTL_S", default=8.0, gt=0)
    watchdog_interval_s: float = Field(validation_alias="AIOS_WATCHDOG_INTERVAL_S",
                                       default=3.0, gt=0)
    # new tasks are refused (503) while Redis uses this share of its maxmemory, so that the
    # tasks in progress can still log and end
    redis_high_water: float = Field(validation_alias="AIOS_REDIS_HIGH_WATER", default=0.9,
                                    gt=0, lt=1)
    # a task queued this long gets its message again (it may have been lost), and stays alive
    # (at most half the retention, so that a queued task never expires)
    redrive_after_s: float = Field(validation_alias="AIOS_REDRIVE_AFTER_S", default=600.0, gt=0)
    # after SIGTERM, a worker lets its tasks run this long, then hands the rest back
    worker_grace_s: float = Field(validation_alias="AIOS_WORKER_GRACE_S", default=20.0, ge=0)
    # a task's event log keeps at most this much; its result is recorded whatever the size
    task_max_log_bytes: int = Field(validation_alias="AIOS_TASK_MAX_LOG_BYTES", default=8 << 20,
                                    ge=64 << 10)
    max_request_bytes: int = Field(validation_alias="AIOS_MAX_REQUEST_BYTES", default=4 << 20, gt=0)
    max_input_bytes: int = Field(validation_alias="AIOS_MAX_INPUT_BYTES", default=1 << 20, gt=0)

    # The user's files: where clients' paths may point, and how much of them chat takes
    file_roots: Annotated[list[str], NoDecode] = Field(
        validation_alias="AIOS_FILE_ROOTS",
        default_factory=lambda: ["/host_downloads", "/host_documents", str(PROJECT_TMP)])
    attachment_max_bytes: int = Field(validation_alias="AIOS_ATTACHMENT_MAX_BYTES",
                                      default=32 << 20, gt=0)
    attachment_max_text_chars: int = Field(validation_alias="AIOS_ATTACHMENT_MAX_TEXT_CHARS",
                                           default=200_000, gt=0)

    transcription_model: Optional[str] = Field(validation_alias="AIOS_TRANSCRIPTION_MODEL",
                                               default=None)  # default: whisper-1 / Groq's
    video_frames: int = Field(validation_alias="AIOS_VIDEO_FRAMES", default=4, ge=1, le=32)
    upload_max_bytes: int = Field(validation_alias="AIOS_UPLOAD_MAX_BYTES", default=64 << 20, gt=0)
    upload_dir: str = Field(validation_alias="AIOS_UPLOAD_DIR",
                            default_factory=lambda: str(PROJECT_TMP / "uploads"))
    upload_retention_s: int = Field(validation_alias="AIOS_UPLOAD_RETENTION_S", default=86400, gt=0)
    # figures and files of tasks' sandbox runs, kept for AIOS_TASK_RETENTION_S
    artifact_dir: str = Field(validation_alias="AIOS_ARTIFACT_DIR",
                              default_factory=lambda: str(PROJECT_TMP / "artifacts"))

    # MCP servers whose tools the agent may use: a JSON file in the mcpServers format
    mcp_config_path: Optional[str] = Field(validation_alias="AIOS_MCP_CONFIG", default=None)
    mcp_call_timeout_s: float = Field(validation_alias="AIOS_MCP_CALL_TIMEOUT_S",
                                      default=60.0, gt=0)

    # The agent and its tools
    agent_max_steps: int = Field(validation_alias="AIOS_AGENT_MAX_STEPS", default=12, ge=1, le=100)
    agent_max_seconds: float = Field(validation_alias="AIOS_AGENT_MAX_SECONDS", default=600.0, gt=0)
    agent_max_tokens: int = Field(validation_alias="AIOS_AGENT_MAX_TOKENS", default=200_000, gt=0)
    agent_session_ttl_s: int = Field(validation_alias="AIOS_AGENT_SESSION_TTL_S",
                                     default=86400, gt=0)
    # a conversation's sandbox (files, packages, interpreter state) goes after this long unused
    agent_sandbox_idle_s: float = Field(validation_alias="AIOS_AGENT_SANDBOX_IDLE_S",
                                        default=1800.0, gt=0)
    tool_result_max_chars: int = Field(validation_alias="AIOS_TOOL_RESULT_MAX_CHARS",
                                       default=20_000, gt=0)
    # each browser action's own time limit (browse, browser_*)
    browse_timeout_s: float = Field(validation_alias="AIOS_BROWSE_TIMEOUT_S", default=20.0, gt=0)
    # retired: refused when set (REFUSALS above)
    chromium_path: Optional[str] = Field(validation_alias="AIOS_CHROMIUM_PATH", default=None)
    browse_max_page_bytes: Optional[str] = Field(validation_alias="AIOS_BROWSE_MAX_PAGE_BYTES",
                                                 default=None)
    # host or host:port entries the browser may reach although they are loopback/private
    browse_allowlist: Annotated[list[str], NoDecode] = Field(
        validation_alias="AIOS_BROWSE_ALLOWLIST", default_factory=list)

    # The user's say per tool: tool or glob = auto|ask|deny, over approvals/policy.py's
    # DEFAULTS (ask before what sends data out); a task may make it stricter, never looser
    tool_policy: Annotated[dict[str, str], NoDecode] = Field(
        validation_alias="AIOS_TOOL_POLICY", default_factory=dict)
    # no answer to an approval request within this long: denied (and never past the run's
    # wall time); the worker slot stays held while it waits
    approval_timeout_s: float = Field(validation_alias="AIOS_APPROVAL_TIMEOUT_S",
                                      default=120.0, gt=0, le=3600)

    # Prometheus metrics (aios/metrics/): off stops the hooks, the web's /metrics and the
    # worker's exporter. Every /metrics wants AIOS_METRICS_TOKEN as its bearer token (the API
    # token when unset); the worker's exporter listens on AIOS_WORKER_METRICS_ADDR (loopback
    # by default) at this port (0: no exporter), from files in a folder of its own under
    # AIOS_WORKER_METRICS_DIR (prometheus_client's multiprocess mode, cleared at start)
    metrics_enabled: bool = Field(validation_alias="AIOS_METRICS", default=True)
    metrics_token: Optional[SecretStr] = Field(validation_alias="AIOS_METRICS_TOKEN",
                                               default=None, min_length=16)
    worker_metrics_addr: str = Field(validation_alias="AIOS_WORKER_METRICS_ADDR",
                                     default="127.0.0.1")
    worker_metrics_port: int = Field(validation_alias="AIOS_WORKER_METRICS_PORT", default=9808,
                                     ge=0, le=65535)
    worker_metrics_dir: str = Field(validation_alias="AIOS_WORKER_METRICS_DIR",
                                    default_factory=metrics_dir_default)

    @property
    def scrape_token(self) -> str:
        """The bearer token every /metrics of the web and worker wants."""
        return (self.metrics_token or self.api_token).get_secret_value()

    @field_validator("tool_policy", mode="before")
    @classmethod
    def _policy_rules(cls, value):
        return parse_rules(value) if isinstance(value, str) else check_rules(value)

    @field_validator(*REFUSALS)
    @classmethod
    def _refused_guide_settings(cls, value, info: ValidationInfo):
        given = value.strip().lower() if isinstance(value, str) else value
        if given not in ACCEPTS[info.field_name]:
            raise PydanticCustomError("refused_setting", REFUSALS[info.field_name],
                                      {"value": value})
        return value

    @field_validator("openai_api_key", "anthropic_api_key", "groq_api_key", "mistral_api_key",
                     mode="before")
    @classmethod
    def _placeholder_is_no_key(cls, value):
        # The design guide's .env ships "sk-your-openai-key-here" and the like: kept as keys,
        # a chat would fail upstream with 401; as none, it says which variable to set
        if isinstance(value, str) and PLACEHOLDER_KEY.fullmatch(value.strip()):
            return None
        return value

    @field_validator("redis_maxmemory")
    @classmethod
    def _a_redis_size(cls, value, info: ValidationInfo):
        if value and value.strip() and not re.fullmatch(r"[0-9]+([kmg]b?|b)?",
                                                        value.strip().lower()):
            raise PydanticCustomError(
                "guide_setting", "'{value}' is no size redis reads: bytes, or a number with "
                "kb, mb or gb (768mb, 1gb)", {"value": value})
        value = (value or "").strip() or None
        if value and info.data.get("deployment") == "compose":
            raise PydanticCustomError(
                "guide_setting", "REDIS_MAXMEMORY={value} is not used under compose: there "
                "Redis's maxmemory is AIOS_REDIS_MAXMEMORY, read by docker-compose from the "
                "shell or the root .env (default 768mb). Set that instead and remove "
                "REDIS_MAXMEMORY from the env file", {"value": value})
        return value

    @field_validator("port")
    @classmethod
    def _one_web_port(cls, value, info: ValidationInfo):
        if value not in (None, 8765) and info.data.get("deployment") == "compose":
            raise PydanticCustomError(
                "guide_setting", "PORT={port} is not used under compose: the web listens on "
                "8765 in its container, published on this host as AIOS_WEB_PORT, read by "
                "docker-compose from the shell or the root .env (default 8765). Set that "
                "instead and remove PORT from the env file", {"port": value})
        web_port = info.data.get("web_port")
        if value is not None and web_port is not None and value != web_port:
            raise PydanticCustomError(
                "guide_setting", "PORT ({port}) and AIOS_WEB_PORT ({web_port}) disagree: both "
                "name the web's port; set one of them",
                {"port": value, "web_port": web_port})
        return value

    @property
    def listen_port(self) -> int:
        return self.web_port or self.port or 8765

    @field_validator("file_roots")
    @classmethod
    def _absolute_roots(cls, value):
        relative = [root for root in value if not root.startswith("/")]
        if relative:
            raise ValueError(f"file roots must be absolute paths, not {relative}")
        return value

    @model_validator(mode="after")
    def _heartbeat_outlives_its_interval(self) -> "Settings":
        # A running task stops itself when its heartbeat could not be renewed for TTL minus
        # one interval: with a TTL of two intervals or less it would stop on one slow beat.
        if self.heartbeat_ttl_s < 2 * self.heartbeat_interval_s + 1:
            raise ValueError("AIOS_HEARTBEAT_TTL_S must be at least twice "
                             "AIOS_HEARTBEAT_INTERVAL_S plus a second")
        return self

    @property
    def redrive_after(self) -> float:
        return min(self.redrive_after_s, self.task_retention_s / 2)

    @model_validator(mode="after")
    def _uploads_are_readable(self) -> "Settings":
        upload_dir = Path(os.path.realpath(self.upload_dir))
        roots = [Path(os.path.realpath(root)) for root in self.file_roots]
        if not any(root == upload_dir or root in upload_dir.parents for root in roots):
            raise ValueError(f"AIOS_UPLOAD_DIR ({self.upload_dir}) must be inside one of "
                             f"AIOS_FILE_ROOTS ({', '.join(self.file_roots)})")
        return self

    @model_validator(mode="after")
    def _one_list_of_managers(self) -> "Settings":
        urls = [u.rstrip("/") for u in self.sandbox_manager_urls]
        if len(set(urls)) != len(urls):
            raise ValueError("SANDBOX_MANAGER_URLS lists a manager twice")
        given = "sandbox_manager_url" in self.model_fields_set
        if urls and given and self.sandbox_manager_url.rstrip("/") not in urls:
            raise ValueError(f"SANDBOX_MANAGER_URL ({self.sandbox_manager_url}) is not one of "
                             f"SANDBOX_MANAGER_URLS ({', '.join(urls)}): set one of them")
        return self

    @property
    def manager_urls(self) -> list[str]:
        """The sandbox managers: SANDBOX_MANAGER_URLS, else SANDBOX_MANAGER_URL alone."""
        return ([u.rstrip("/") for u in self.sandbox_manager_urls]
                or [self.sandbox_manager_url.rstrip("/")])

    @field_validator("cors_origins", "llm_fallback", "file_roots",
                     "browse_allowlist", "sandbox_manager_urls", mode="before")
    @classmethod
    def _split_origins(cls, value):
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @property
    def broker_url(self) -> str:
        return self.celery_broker_url or self.redis_url

    @property
    def result_backend(self) -> str:
        return self.celery_result_backend or self.redis_url


class ConfigurationError(SystemExit):
    """Stops the process at start with a message naming each bad variable."""


# Compose's secrets volume (docker-compose.yml's `secrets`): one file per variable, named as
# it (AIOS_API_TOKEN, SECRET_KEY, SANDBOX_MANAGER_TOKEN, REDIS_PASSWORD, ...). Read after the
# environment and .env, which win.
SECRETS_DIR_VARIABLE = "AIOS_SECRETS_DIR"


def secrets_dir() -> Optional[str]:
    """AIOS_SECRETS_DIR when it names a folder (compose sets it), else None."""
    path = os.environ.get(SECRETS_DIR_VARIABLE, "")
    return path if path and os.path.isdir(path) else None


def with_redis_password(url: Optional[str], password: str) -> Optional[str]:
    """A redis:// or rediss:// URL without credentials, given `password`; others as they are."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or "@" in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=f":{quote(password, safe='')}@{parts.netloc}"))


def load_settings(**overrides) -> Settings:
    """The settings from the environment, .env and (compose) the secrets folder; in that
    order of precedence. With a secrets folder, REDIS_PASSWORD goes into the redis URLs that
    carry no password (compose gives the services redis://redis:6379/0)."""
    if "_secrets_dir" not in overrides:
        overrides["_secrets_dir"] = secrets_dir()
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
                 for e in exc.errors()]
        raise ConfigurationError("AI-OS: bad configuration\n" + "\n".join(lines)) from None
    if overrides["_secrets_dir"] and settings.redis_password:
        password = settings.redis_password.get_secret_value()
        settings = settings.model_copy(update={
            name: with_redis_password(getattr(settings, name), password)
            for name in ("redis_url", "celery_broker_url", "celery_result_backend")})
    return settings
