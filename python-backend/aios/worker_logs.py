"""The Celery worker's own output follows LOG_FORMAT too: its handlers get the format and
the masking once Celery has set them up, and with json its banner and its shutdown notices
(printed, not logged, by Celery) become JSON lines as well."""

import logging
import os
import sys

from celery import signals
from celery.apps import worker as celery_worker

from .logs import JsonFormatter, log_as

log = logging.getLogger("celery.apps.worker")


def _settings():
    from celery import current_app
    return getattr(current_app, "aios_settings", None)


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _log_as_settings_say(**_):
    settings = _settings()
    if settings is not None:
        log_as(settings, level=False)  # the level stays the worker's -l


@signals.celeryd_init.connect
def _no_text_banner(instance=None, **_):
    settings = _settings()
    if settings is not None and settings.log_format == "json":
        instance.quiet = True  # its banner is logged below instead, as one line
        celery_worker.safe_say = _say_as_json


@signals.celeryd_after_setup.connect
def _banner_as_one_line(instance=None, **_):
    settings = _settings()
    if settings is not None and settings.log_format == "json":
        log.info("%s", instance.startup_info(artlines=False).strip())


def _say_as_json(msg, f=sys.__stderr__):
    """Celery's safe_say (called in signal handlers: one os.write, no lock), as a JSON line."""
    record = logging.LogRecord("celery.apps.worker", logging.WARNING, __file__, 0,
                               str(msg).strip(), None, None)
    try:
        os.write(f.fileno(), (JsonFormatter().format(record) + "\n").encode())
    except OSError:
        pass
