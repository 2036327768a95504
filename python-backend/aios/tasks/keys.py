"""Redis key names, in one place."""

PREFIX = "aios"
RECENT = f"{PREFIX}:tasks"            # sorted set: task id by creation time
RUNNING = f"{PREFIX}:tasks:running"   # set of task ids a worker claimed
QUEUED = f"{PREFIX}:tasks:queued"     # sorted set: queued task id by when its message was pushed
WORKERS = f"{PREFIX}:workers"         # sorted set: worker hostname by last sign of life


def record(task_id: str) -> str:
    return f"{PREFIX}:task:{task_id}"


def events(task_id: str) -> str:
    return f"{PREFIX}:task:{task_id}:events"


def heartbeat(task_id: str) -> str:
    return f"{PREFIX}:task:{task_id}:hb"


def cancel(task_id: str) -> str:
    return f"{PREFIX}:task:{task_id}:cancel"


def release(task_id: str) -> str:
    """Set while the worker running the task is stopping: hand it back."""
    return f"{PREFIX}:task:{task_id}:release"


def room(task_id: str) -> str:
    """The Socket.IO room of a task's subscribers."""
    return f"task:{task_id}"


# The Redis pub/sub channel of the Socket.IO message queue (Flask-SocketIO's default, so
# any external Flask-SocketIO emitter with defaults reaches our clients).
SOCKETIO_CHANNEL = "flask-socketio"
