"""`.env.example` names every variable the services read."""

import re
from pathlib import Path

import pytest

from aios.settings import Settings as BackendSettings
from aios_sandbox.settings import Settings as SandboxSettings

ROOT = Path(__file__).resolve().parents[2]
LISTED = set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text()))


def variables(settings, prefix: str = "") -> set[str]:
    names = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias or field.alias
        if isinstance(alias, str):
            names.add(alias.upper())
        elif hasattr(field.annotation, "model_fields"):  # nested: PREFIX_NAME__FIELD
            names |= {f"{prefix}{name}__{sub}".upper() for sub in field.annotation.model_fields}
        else:
            names.add(f"{prefix}{name}".upper())
    return names


@pytest.mark.parametrize("settings,prefix", [(BackendSettings, ""), (SandboxSettings, "SANDBOX_")])
def test_every_variable_is_listed(settings, prefix):
    nested_listed = {name.split("__")[0] for name in LISTED if "__" in name}
    missing = {name for name in variables(settings, prefix)
               if name not in LISTED and name.split("__")[0] not in nested_listed}
    assert not missing, f".env.example does not name {sorted(missing)}"
