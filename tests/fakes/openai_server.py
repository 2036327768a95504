"""A fake chat-completions server speaking the real wire protocol (JSON and SSE) of OpenAI
(/v1/...) and of Groq (/openai/v1/..., usage in `x_groq`, no `event:` lines). The model name
picks the scenario; every request is recorded for the tests to inspect."""

import asyncio
import json
import threading
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ..integration.support import free_port


def chunk(model: str, delta: dict | None = None, finish=None, usage=None, groq=False) -> str:
    body = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
            "model": model, "choices": []}
    if delta is not None or finish:
        body["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    if usage and groq:
        body["x_groq"] = {"id": "req_fake", "usage": usage}
    elif usage:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n"


def error(status: int, message: str, code: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error",
                                   "code": code}}, status, headers=headers)


TOOL_CALLS = [("call_1", "get_weather", '{"city": "Paris", "unit": "celsius"}'),
              ("call_2", "get_time", '{"timezone": "Europe/Paris"}')]


class FakeOpenAI:
    def __init__(self):
        self.requests: list[dict] = []
        self.disconnects: list[float] = []
        self.counts: dict[str, int] = {}
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.completions)
        self.app.post("/openai/v1/chat/completions")(self.completions)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.groq_base_url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))

    def start(self) -> "FakeOpenAI":
        threading.Thread(target=self.server.run, daemon=True).start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True

    async def completions(self, request: Request):
        body = await request.json()
        body["authorization"] = request.headers.get("authorization")
        self.requests.append(body)
        model = body["model"]
        self.counts[model] = self.counts.get(model, 0) + 1
        if model == "fail-401":
            return error(401, "Incorrect API key provided", "invalid_api_key")
        if model == "fail-429" or (model == "flaky-429" and self.counts[model] == 1):
            return error(429, "Rate limit reached", "rate_limit_exceeded", {"retry-after": "1"})
        if model == "fail-500":
            return error(500, "The server had an error", "server_error")
        if model == "too-long":
            return error(400, "This model's maximum context length is 8192 tokens",
                         "context_length_exceeded")
        groq = request.url.path.startswith("/openai/")
        return StreamingResponse(self.events(model, groq), media_type="text/event-stream")

    async def events(self, model: str, groq: bool):
        usage = {"prompt_tokens": 7, "completion_tokens": 0, "total_tokens": 7}
        try:
            if model == "tools":
                for call_id, name, arguments in TOOL_CALLS:
                    index = int(call_id[-1]) - 1
                    yield chunk(model, {"tool_calls": [{"index": index, "id": call_id,
                                                        "type": "function",
                                                        "function": {"name": name, "arguments": ""}}]})
                    for i in range(0, len(arguments), 5):  # arguments split over many chunks
                        yield chunk(model, {"tool_calls": [{"index": index, "function": {
                            "arguments": arguments[i:i + 5]}}]})
                finish = "tool_calls"
            else:
                count, pause = token_plan(model)
                for i in range(count):
                    yield chunk(model, {"content": token(model, i)})
                    usage["completion_tokens"] += 1
                    if model == "cut" and i == 1:
                        raise ConnectionAbortedError("the fake cuts the stream")
                    if model == "stall" and i == 0:
                        await asyncio.sleep(30)
                    await asyncio.sleep(pause)
                finish = "stop"
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            if groq:  # usage rides on the last chunk, in x_groq
                yield chunk(model, {}, finish=finish, usage=usage, groq=True)
            else:  # a final chunk with empty choices, as stream_options.include_usage asks
                yield chunk(model, {}, finish=finish)
                yield chunk(model, usage=usage)
            yield "data: [DONE]\n\n"
        except asyncio.CancelledError:
            self.disconnects.append(time.monotonic())
            raise


def token_plan(model: str) -> tuple[int, float]:
    if model.startswith("long-"):
        return int(model.split("-")[1]), 0.0
    if model == "slow":
        return 200, 0.1
    return 4, 0.0


def token(model: str, i: int) -> str:
    return ["Hel", "lo", " wor", "ld"][i] if token_plan(model)[0] == 4 else f"t{i} "


if __name__ == "__main__":  # a standalone fake, for benchmarks: prints its base URL
    fake = FakeOpenAI().start()
    print(fake.base_url, flush=True)
    threading.Event().wait()
