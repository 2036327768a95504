# Image for web, worker and flower (python-backend/).
# Placeholder: the web/worker code arrives with the task-pipeline issue and this image with
# the deployment issue. It has no build stage yet, so `docker build` fails on purpose.
