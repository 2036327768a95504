# Image for web, worker and flower (python-backend/).
# Placeholder: the services run natively today (`make run`); this image, with Chromium for
# Playwright and a wheelhouse install, arrives with the deployment issue. It has no build
# stage yet, so `docker build` fails on purpose.
