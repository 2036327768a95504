"""Chat attachments: files read by the FileReader go with the last user message."""

from .roots import FileRefused


def attach(messages: list[dict], parts: list[dict]) -> list[dict]:
    """The messages with the parts added to the last user message (its text first)."""
    if not parts:
        return messages
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last_user is None:
        raise FileRefused("invalid_path", "attachments need a user message to go with")
    message = messages[last_user]
    content = [{"type": "text", "text": message["content"]}, *parts]
    return [*messages[:last_user], dict(message, content=content), *messages[last_user + 1:]]
