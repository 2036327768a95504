# One image for web, worker and flower (python-backend/); docker-compose.yml picks the
# process by its command. Build context: the repository root (.dockerignore keeps it small).
# BASE_IMAGE: the upstream default; this machine has no registry and builds on the local
# Debian bookworm `aios-base:bookworm` (scripts/build-images.sh), whose python3 is 3.11 too.
ARG BASE_IMAGE=python:3.11-slim

# --- the virtual environment, built apart so the wheels stay out of the final image -------
FROM ${BASE_IMAGE} AS venv
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# python:3.11-slim has ensurepip; Debian's python3 gets it from python3-venv.
RUN python3 -c 'import ensurepip' 2>/dev/null || { apt-get update \
        && apt-get install -y --no-install-recommends python3-venv \
        && rm -rf /var/lib/apt/lists/*; } \
    && python3 -m venv /opt/venv
COPY constraints.txt python-backend/requirements.txt /req/
COPY wheelhouse/ /wheelhouse/
# From the wheelhouse (scripts/make-wheelhouse.sh) when it holds wheels, else the index.
RUN if ls /wheelhouse/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /wheelhouse; fi \
    && /opt/venv/bin/pip install -q "$@" -r /req/requirements.txt -c /req/constraints.txt

# --- the runtime image --------------------------------------------------------------------
FROM ${BASE_IMAGE}
ARG APP_UID=10002
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH HOME=/home/aios AIOS_USER=aios \
    AIOS_CHROMIUM_PATH=/usr/bin/chromium AIOS_WRITABLE_DIRS=/srv/tmp
# Debian's Chromium for Playwright (no downloaded browsers; Playwright's node driver needs
# libatomic), ffmpeg for audio and video files, Debian's public CA list for the providers.
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-liberation libatomic1 ffmpeg \
        ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid ${APP_UID} aios \
    && useradd --uid ${APP_UID} --gid ${APP_UID} --home-dir /home/aios --create-home \
        --shell /usr/sbin/nologin aios \
    && mkdir -p /srv/tmp && chown aios:aios /srv/tmp
COPY --from=venv /opt/venv /opt/venv
COPY docker/entrypoint.sh /usr/local/bin/aios-entrypoint
COPY python-backend/ /srv/python-backend/
WORKDIR /srv/python-backend
EXPOSE 8765 5555
# Starts as root, makes AIOS_WRITABLE_DIRS (the shared tmp/) writable, runs the command as aios.
ENTRYPOINT ["aios-entrypoint"]
# The design's command; gunicorn.conf.py (read from the WORKDIR) adds worker_connections.
CMD ["gunicorn", "--worker-class", "eventlet", "-w", "1", "--bind", "0.0.0.0:8765", "app:app"]
