"""Entry point: `gunicorn -k eventlet -w 1 app:app` (web) and `celery -A app.celery worker`."""

import logging
import os
import warnings

# The design runs on eventlet, in bug-fix-only maintenance: its deprecation notice (printed
# when Socket.IO loads its eventlet driver, in the worker too) is nothing a user can act on.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from aios.web import create_app  # noqa: E402 - after the filter above

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app()
celery = app.extensions["celery"]
logging.getLogger("httpx").setLevel(logging.WARNING)
