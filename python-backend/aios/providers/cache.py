"""Deterministic chat answers (temperature 0) served from Redis for a while."""

import hashlib
import json
from typing import Optional

import redis

PREFIX = "aios:chatcache:"


class ChatCache:
    def __init__(self, client: redis.Redis, ttl_s: int):
        self.redis = client
        self.ttl_s = ttl_s

    @staticmethod
    def key(provider: str, model: str, task_input: dict) -> str:
        identity = {"provider": provider, "model": model, "messages": task_input["messages"],
                    "tools": task_input.get("tools"), "max_tokens": task_input.get("max_tokens")}
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        return PREFIX + digest

    @staticmethod
    def applies(task_input: dict) -> bool:
        return task_input.get("temperature") == 0 and task_input.get("cache", True)

    def get(self, key: str) -> Optional[dict]:
        raw = self.redis.get(key)
        return json.loads(raw) if raw else None

    def put(self, key: str, result: dict) -> None:
        self.redis.set(key, json.dumps(result), ex=self.ttl_s)
