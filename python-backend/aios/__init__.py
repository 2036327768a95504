"""AI-OS web server and worker: tasks from the desktop app to Celery and back, live."""
