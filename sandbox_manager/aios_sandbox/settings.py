"""The sandbox manager's configuration: one validated object, read from env and `.env`."""

import json
import os
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import (Field, PrivateAttr, SecretStr, ValidationError, field_validator,
                      model_validator)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .limits import MIN_CPUS, Limits, OutputCaps


# Docker's default seccomp profile plus what Chromium's own sandbox needs (user namespaces,
# chroot): docker/seccomp-browser.json, when the manager runs from the repository.
BROWSER_SECCOMP = Path(__file__).resolve().parents[2] / "docker" / "seccomp-browser.json"


def default_limits() -> Limits:
    return Limits()


def maximum_limits() -> Limits:
    return Limits(memory_mb=2048, cpus=2.0, pids=512, timeout_s=600, output_bytes=16 << 20,
                  nofile=4096, fsize_mb=512, home_mb=1024, tmp_mb=1024)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANDBOX_", env_file=("../.env", ".env"),
                                      extra="ignore", env_nested_delimiter="__")

    manager_token: Optional[SecretStr] = Field(default=None, min_length=16)
    insecure_no_token: bool = False  # development only: serve without a token
    manager_name: str = Field(default="default", pattern=r"^[a-zA-Z0-9_.-]{1,64}$")
    # text (the default) or json: one JSON object per line (aios_sandbox/logs.py); the
    # variable is the web's and worker's LOG_FORMAT, unprefixed
    log_format: Literal["text", "json"] = Field(default="text", validation_alias="LOG_FORMAT")

    image: str = "aios-sandbox"
    uid: int = Field(default=10001, gt=0)
    runtime: Optional[str] = None  # an OCI runtime such as runsc (gVisor)

    defaults: Limits = Field(default_factory=default_limits)
    maxima: Limits = Field(default_factory=maximum_limits)

    pool_size: int = Field(default=2, ge=0, le=64)
    pool_max_age_s: int = Field(default=600, gt=0)
    max_active_runs: int = Field(default=16, gt=0)
    max_sessions: int = Field(default=32, ge=0)
    session_ttl_s: int = Field(default=1800, gt=0)
    max_session_ttl_s: int = Field(default=86400, gt=0)
    reaper_interval_s: float = Field(default=5.0, gt=0)
    start_timeout_s: float = Field(default=20.0, gt=0)

    max_request_bytes: int = Field(default=32 << 20, gt=0)
    max_code_bytes: int = Field(default=512 << 10, gt=0)
    max_stdin_bytes: int = Field(default=1 << 20, ge=0)
    max_files: int = Field(default=64, ge=0)
    max_file_bytes: int = Field(default=10 << 20, gt=0)

    # What a run gives back from ~/outputs (figures land there too); past a cap, the result
    # says `outputs_truncated` and names what it left out.
    max_outputs: int = Field(default=32, ge=0, le=1000)
    max_output_file_bytes: int = Field(default=10 << 20, gt=0)
    max_outputs_bytes: int = Field(default=25 << 20, gt=0)

    # Filtered internet for sandboxes that ask for `network: "egress"`: off unless enabled.
    # Entries are checked again, and refused with a reason, by the proxy (aios.net.egress).
    allow_egress: bool = False
    egress_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    egress_deny: Annotated[list[str], NoDecode] = Field(default_factory=list)
    egress_ports: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [80, 443])
    egress_max_bytes: int = Field(default=1 << 30, gt=0)
    egress_max_connections: int = Field(default=32, gt=0, le=1024)
    egress_bridge: str = "bridge"  # the Docker network the proxy reaches out through

    # Browser sandboxes: Chromium under a supervisor in a hardened container of their own,
    # always behind an egress proxy of their own (whatever SANDBOX_ALLOW_EGRESS says: the
    # network is a browser's whole point), with the egress policy above.
    allow_browsers: bool = True
    browser_image: str = "aios-browser"
    max_browsers: int = Field(default=4, ge=0, le=256)
    browser_ttl_s: int = Field(default=1800, gt=0)
    browser_max_ttl_s: int = Field(default=86400, gt=0)
    browser_idle_ttl_s: int = Field(default=600, gt=0)  # when the create does not say
    browser_start_timeout_s: float = Field(default=60.0, gt=0)  # Chromium's start included
    browser_action_timeout_s: float = Field(default=30.0, gt=0)
    browser_max_action_timeout_s: float = Field(default=300.0, gt=0, le=300)  # the supervisor's
    browser_max_bytes: int = Field(default=256 << 20, gt=0)  # its proxy's byte budget
    browser_max_download_bytes: int = Field(default=20 << 20, gt=0)  # one download action
    browser_memory_mb: int = Field(default=1024, ge=128)
    browser_cpus: float = Field(default=1.0, ge=MIN_CPUS)
    browser_pids: int = Field(default=512, ge=32)
    browser_nofile: int = Field(default=4096, ge=64)
    browser_home_mb: int = Field(default=64, ge=16)
    # Chromium's profile, its shared memory (--disable-dev-shm-usage) and downloads
    browser_tmp_mb: int = Field(default=512, ge=64)
    # A seccomp profile file; unset: docker/seccomp-browser.json when present, else Docker's
    # default; "default": Docker's default (Chromium's own sandbox cannot start under it).
    browser_seccomp: Optional[str] = None
    # Chromium's own sandbox: auto (on when the kernel and profile allow it), on (a browser
    # without it fails to start), off
    browser_chromium_sandbox: Literal["auto", "on", "off"] = "auto"
    _browser_seccomp_text: Optional[str] = PrivateAttr(default=None)

    @field_validator("maxima", mode="before")
    @classmethod
    def _maxima_fill_in(cls, value):
        # SANDBOX_MAXIMA__MEMORY_MB alone must not pull the other maxima down to defaults.
        if isinstance(value, dict):
            return {**maximum_limits().model_dump(), **value}
        return value

    @field_validator("egress_allow", "egress_deny", "egress_ports", mode="before")
    @classmethod
    def _comma_separated(cls, value):
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("egress_allow", "egress_deny")
    @classmethod
    def _plain_entries(cls, entries: list[str]) -> list[str]:
        bad = [e for e in entries if any(c.isspace() or c in "?#@\\" for c in e)]
        if bad:
            raise ValueError(f"not a host, host:port, address or network: {', '.join(bad)}")
        return entries

    @field_validator("egress_ports")
    @classmethod
    def _ports(cls, ports: list[int]) -> list[int]:
        if not ports or any(not 0 < p < 65536 for p in ports):
            raise ValueError("give one or more ports between 1 and 65535, comma-separated")
        return ports

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.manager_token is None and not self.insecure_no_token:
            raise ValueError(
                "SANDBOX_MANAGER_TOKEN is not set: set it (16+ characters), or set "
                "SANDBOX_INSECURE_NO_TOKEN=1 for local development only")
        over = self.defaults.exceeding(self.maxima)
        if over:
            raise ValueError(f"SANDBOX_DEFAULTS exceed SANDBOX_MAXIMA for: {', '.join(over)}")
        for default, maximum in (("browser_ttl_s", "browser_max_ttl_s"),
                                 ("browser_action_timeout_s", "browser_max_action_timeout_s")):
            if getattr(self, default) > getattr(self, maximum):
                raise ValueError(f"SANDBOX_{default.upper()} exceeds SANDBOX_{maximum.upper()}")
        self._browser_seccomp_text = _seccomp_profile(self.browser_seccomp)
        return self

    @property
    def home(self) -> str:
        return "/home/sandboxuser"

    @property
    def browser_limits(self) -> Limits:
        """What every browser container gets, and its hello is checked against."""
        return Limits(memory_mb=self.browser_memory_mb, cpus=self.browser_cpus,
                      pids=self.browser_pids, timeout_s=self.browser_action_timeout_s,
                      nofile=self.browser_nofile, home_mb=self.browser_home_mb,
                      tmp_mb=self.browser_tmp_mb,
                      fsize_mb=max(self.browser_home_mb, self.browser_tmp_mb))

    @property
    def browser_seccomp_profile(self) -> Optional[str]:
        """The profile's JSON text for `security_opt` (the Engine API wants the content, not
        a path); None: Docker's default."""
        return self._browser_seccomp_text

    @property
    def output_caps(self) -> OutputCaps:
        return OutputCaps(self.max_outputs, self.max_output_file_bytes, self.max_outputs_bytes)


def _seccomp_profile(setting: Optional[str]) -> Optional[str]:
    if setting == "default" or (setting is None and not BROWSER_SECCOMP.is_file()):
        return None
    path = Path(setting) if setting else BROWSER_SECCOMP
    try:
        profile = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"SANDBOX_BROWSER_SECCOMP: not a readable JSON seccomp profile: "
                         f"{exc}") from None
    return json.dumps(profile, separators=(",", ":"))


class ConfigurationError(SystemExit):
    """Stops the service at start with a message naming each bad variable."""


# Compose's secrets volume: one file per variable, named as it (SANDBOX_MANAGER_TOKEN), read
# after the environment and .env, which win.
SECRETS_DIR_VARIABLE = "AIOS_SECRETS_DIR"


def secrets_dir() -> Optional[str]:
    """AIOS_SECRETS_DIR when it names a folder (compose sets it), else None."""
    path = os.environ.get(SECRETS_DIR_VARIABLE, "")
    return path if path and os.path.isdir(path) else None


def load_settings(**overrides) -> Settings:
    if "_secrets_dir" not in overrides:
        overrides["_secrets_dir"] = secrets_dir()
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = [str(p) for p in error["loc"]]
            var = ("SANDBOX_" + "__".join(loc)).upper() if loc else "configuration"
            lines.append(f"  {var}: {error['msg'].removeprefix('Value error, ')}")
        raise ConfigurationError(
            "sandbox manager: bad configuration\n" + "\n".join(lines)) from None
