#!/usr/bin/env bash
# Fill wheelhouse/ with a wheel for every pinned requirement of the service images
# (python-backend, sandbox_manager, constraints.txt), of the sandbox image's data layer
# (sandbox_manager/runner/requirements.txt) and of the browser image's supervisor
# (sandbox_manager/browser/requirements.txt), made on the host: containers here cannot
# reach PyPI over HTTPS, so the Dockerfiles install from it with `pip install --no-index`.
# Also pytest and pytest-timeout (pinned in constraints.txt), for the app image's `test` stage
# (`docker build --target test .`).
# A no-op while the requirements, the constraints and the target Pythons are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=wheelhouse
PIP=(.venv/bin/python -m pip)
INPUTS=(python-backend/requirements.txt sandbox_manager/requirements.txt constraints.txt
        sandbox_manager/runner/requirements.txt sandbox_manager/browser/requirements.txt)
TEST_PINS=(pytest pytest-timeout)   # versions from constraints.txt
# Markers are evaluated per interpreter (redis needs async-timeout below Python 3.11.3), so
# wheels are resolved for each Python the images run: the venv's (as python:3.11-slim's, a
# recent 3.11) and Debian's python3 (the one in aios-base:bookworm, 3.11.2 in bookworm).
if [ -z "${WHEELHOUSE_PYTHONS:-}" ]; then
  WHEELHOUSE_PYTHONS=.venv/bin/python
  if /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    WHEELHOUSE_PYTHONS+=" /usr/bin/python3"
  fi
fi
read -ra pythons <<<"$WHEELHOUSE_PYTHONS"

hash=$( (cat "${INPUTS[@]}"; echo "${TEST_PINS[*]}"
         for py in "${pythons[@]}"; do
           "$py" -c 'import platform, sys; print(sys.version, platform.machine())'
         done) | sha256sum | cut -c1-16)
if [ "$(cat "$DIR/.stamp" 2>/dev/null)" = "$hash" ] && ls "$DIR"/*.whl >/dev/null 2>&1; then
  echo "wheelhouse up to date ($(ls "$DIR"/*.whl | wc -l) wheels)"
  exit 0
fi

echo "filling $DIR/ from ${INPUTS[*]} for ${pythons[*]}"
rm -rf "$DIR/.partial"
mkdir -p "$DIR/.partial"
for py in "${pythons[@]}"; do
  # One resolution for both services per Python; a failure keeps the previous wheelhouse.
  "${PIP[@]}" --python "$py" wheel -q --disable-pip-version-check -w "$DIR/.partial" \
    -r python-backend/requirements.txt -r sandbox_manager/requirements.txt "${TEST_PINS[@]}" \
    -c constraints.txt \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  # The sandbox's data layer is a program of its own: resolved apart from the services.
  "${PIP[@]}" --python "$py" wheel -q --disable-pip-version-check -w "$DIR/.partial" \
    -r sandbox_manager/runner/requirements.txt \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  # So is the browser image's supervisor (Playwright's driver and greenlet).
  "${PIP[@]}" --python "$py" wheel -q --disable-pip-version-check -w "$DIR/.partial" \
    -r sandbox_manager/browser/requirements.txt -c constraints.txt \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
done
rm -f "$DIR"/*.whl
mv "$DIR/.partial"/*.whl "$DIR/"
rmdir "$DIR/.partial"
echo "$hash" > "$DIR/.stamp"
echo "wheelhouse ready ($(ls "$DIR"/*.whl | wc -l) wheels)"
