"""Resource limits of one sandbox, and how a request's overrides meet the server's maxima."""

from dataclasses import dataclass
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field


# Docker's smallest CPU quota: below it nano_cpus rounds to 0, which Docker takes as "no
# limit", and the sandbox would fail the hardening check (the manager would stop serving).
MIN_CPUS = 0.01


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    memory_mb: int = Field(default=256, ge=16)
    cpus: float = Field(default=1.0, ge=MIN_CPUS)
    pids: int = Field(default=64, ge=8)
    timeout_s: float = Field(default=10.0, gt=0)
    output_bytes: int = Field(default=1 << 20, gt=0)
    nofile: int = Field(default=256, ge=16)
    fsize_mb: int = Field(default=64, ge=1)
    home_mb: int = Field(default=128, ge=1)
    tmp_mb: int = Field(default=64, ge=1)

    def exceeding(self, maxima: "Limits") -> list[str]:
        return [name for name in type(self).model_fields
                if getattr(self, name) > getattr(maxima, name)]


@dataclass(frozen=True)
class OutputCaps:
    """What a run may give back from ~/outputs: files, bytes per file, bytes in all."""
    max_count: int
    max_file_bytes: int
    max_total_bytes: int


class LimitOverrides(BaseModel):
    """What a request may ask for; anything left out takes the server default."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    memory_mb: Optional[int] = Field(default=None, ge=16)
    cpus: Optional[float] = Field(default=None, ge=MIN_CPUS)
    pids: Optional[int] = Field(default=None, ge=8)
    output_bytes: Optional[int] = Field(default=None, gt=0)
    nofile: Optional[int] = Field(default=None, ge=16)
    fsize_mb: Optional[int] = Field(default=None, ge=1)
    home_mb: Optional[int] = Field(default=None, ge=1)
    tmp_mb: Optional[int] = Field(default=None, ge=1)


class LimitExceeded(ValueError):
    def __init__(self, fields: dict[str, object]):
        self.fields = fields
        detail = ", ".join(f"{k} (max {v})" for k, v in fields.items())
        super().__init__(f"requested limits exceed the server maxima: {detail}")


def resolve(defaults: Limits, maxima: Limits, overrides: Optional[LimitOverrides] = None,
            timeout_s: Optional[float] = None) -> Limits:
    """Defaults with the request's overrides applied; refuses anything above the maxima."""
    asked = overrides.model_dump(exclude_none=True) if overrides else {}
    if timeout_s is not None:
        asked["timeout_s"] = timeout_s
    limits = defaults.model_copy(update=asked)
    over = limits.exceeding(maxima)
    if over:
        raise LimitExceeded({name: getattr(maxima, name) for name in over})
    return limits
