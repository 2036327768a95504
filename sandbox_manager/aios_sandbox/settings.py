"""The sandbox manager's configuration: one validated object, read from env and `.env`."""

from typing import Annotated, Optional

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .limits import Limits, OutputCaps


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
        return self

    @property
    def home(self) -> str:
        return "/home/sandboxuser"

    @property
    def output_caps(self) -> OutputCaps:
        return OutputCaps(self.max_outputs, self.max_output_file_bytes, self.max_outputs_bytes)


class ConfigurationError(SystemExit):
    """Stops the service at start with a message naming each bad variable."""


def load_settings(**overrides) -> Settings:
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
