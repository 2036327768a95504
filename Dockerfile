# One image for web, worker and flower (python-backend/); docker-compose.yml picks the
# process by its command. Build context: the repository root (.dockerignore keeps it small).
# Targets: `app` (the default: the last stage is the same image) and `test`, which runs the
# unit tests inside the image during the build: `docker build --target test .` (same
# BASE_IMAGE build arg). BuildKit builds only what a target needs; the legacy builder
# (DOCKER_BUILDKIT=0) builds every stage before it, so a plain build runs the unit tests too
# (once: the layer is cached) and docker-compose.yml names `target: app`.
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
FROM ${BASE_IMAGE} AS app
ARG APP_UID=10002
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH HOME=/home/aios AIOS_USER=aios \
    AIOS_WRITABLE_DIRS=/srv/tmp
# ffmpeg for audio and video files, Debian's public CA list for the providers. No browser:
# the agent's Chromium runs in browser sandboxes (Dockerfile.browser), never beside secrets.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid ${APP_UID} aios \
    && useradd --uid ${APP_UID} --gid ${APP_UID} --home-dir /home/aios --create-home \
        --shell /usr/sbin/nologin aios \
    && mkdir -p /srv/tmp && chown aios:aios /srv/tmp \
    && ln -s /srv /app
# /app -> /srv: the design guide's paths work as printed (/app/tmp is the shared scratch
# space, /srv/tmp; /app/python-backend the code).
COPY --from=venv /opt/venv /opt/venv
COPY docker/entrypoint.sh /usr/local/bin/aios-entrypoint
COPY python-backend/ /srv/python-backend/
WORKDIR /srv/python-backend
EXPOSE 8765 5555
# Starts as root, makes AIOS_WRITABLE_DIRS (the shared tmp/) writable, runs the command as aios.
ENTRYPOINT ["aios-entrypoint"]
# The design's command; gunicorn.conf.py (read from the WORKDIR) adds worker_connections.
CMD ["gunicorn", "--worker-class", "eventlet", "-w", "1", "--bind", "0.0.0.0:8765", "app:app"]

# --- test: the unit tests, in this image (`docker build --target test .`) ------------------
# tests/unit with the layout of the repository (the tests find files from their own path),
# the sandbox manager's code and requirements (the unit tests of its pure modules), pytest
# from the wheelhouse. tests/domain and tests/integration need redis-server, dockerd and the
# other images: they run on the host (`make test`), not here.
FROM app AS test
COPY constraints.txt sandbox_manager/requirements.txt /req/
COPY --from=venv /wheelhouse/ /wheelhouse/
RUN /opt/venv/bin/pip install -q --disable-pip-version-check --no-cache-dir \
        $(ls /wheelhouse/*.whl >/dev/null 2>&1 && echo --no-index --find-links /wheelhouse) \
        -r /req/requirements.txt pytest pytest-timeout -c /req/constraints.txt \
    && rm -rf /wheelhouse /req
COPY pytest.ini .env.example /srv/
COPY sandbox_manager/ /srv/sandbox_manager/
COPY docker/seccomp-browser.json /srv/docker/
COPY scripts/supervise.py /srv/scripts/
COPY tests/__init__.py tests/files.py tests/net_helpers.py /srv/tests/
COPY tests/unit/ /srv/tests/unit/
WORKDIR /srv
USER aios
# As the services' user, so all but one: making a device node (mknod) needs root.
RUN python -m pytest -p no:cacheprovider -q tests/unit --deselect \
    tests/unit/test_files.py::test_missing_folders_fifos_devices_and_bad_values_are_refused

# --- the default target: the runtime image, unchanged --------------------------------------
FROM app
