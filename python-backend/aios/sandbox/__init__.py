"""The sandbox manager as the worker uses it: the HTTP client, waiting for capacity, files
going in (attachments) and coming out (artifacts). Tools and task kinds use it; the task
pipeline does not."""
