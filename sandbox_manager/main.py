"""Entry point: `uvicorn main:app --port 8000` from this folder."""

import logging

from aios_sandbox.api import create_app

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app()
