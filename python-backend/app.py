"""Entry point: `gunicorn -k eventlet -w 1 app:app` (web) and `celery -A app.celery worker`."""

import logging
import os

from aios.web import create_app

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app()
celery = app.extensions["celery"]
logging.getLogger("httpx").setLevel(logging.WARNING)
