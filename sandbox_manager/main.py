"""Entry point: `uvicorn main:app --port 8000` from this folder."""

import logging

from aios_sandbox.api import create_app
from aios_sandbox.logs import configure_logging
from aios_sandbox.settings import load_settings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
# uvicorn has set up its loggers by now (before it imports this module): they follow too
settings = load_settings()
configure_logging(settings.log_format,
                  [settings.manager_token.get_secret_value()] if settings.manager_token else [])
app = create_app(settings)
