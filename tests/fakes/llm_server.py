"""A fake LLM server speaking the real wire protocols (JSON and SSE) of OpenAI's chat
completions (/v1/chat/completions), Groq's (/openai/v1/..., usage in `x_groq`, no `event:`
lines), Mistral's (/mistral/v1/..., `finish_reason` on every choice, the tool name on every
tool-call delta) and Anthropic's Messages API (/v1/messages, an `event:` line on every
event). The model name picks the scenario; every request is recorded for the tests."""

import asyncio
import io
import json
import wave
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

# Scripted models ("script:NAME") for agent tests: turn N of a conversation (N = the number
# of assistant messages so far) asks for tools, or answers text; past the end: "done". A turn
# may be a function of the messages so far (e.g. to click a ref the last snapshot gave).
ANALYSIS_STEPS = [  # load a CSV the user attached, keep it, chart it
    "import pandas as pd\ndf = pd.read_csv('sales.csv')\nprint(len(df), 'rows')",
    "df['amount'].describe()",
    "import matplotlib.pyplot as plt\ndf.plot(x='month', y='amount')\nplt.show()",
]
SCRIPTS: dict[str, list[dict]] = {
    "code5": [{"tools": [("run_code", {"language": "python", "code": f"print({i} * 7)"})]}
              for i in range(5)] + [{"text": "Five runs done."}],
    "analysis": [{"tools": [("run_code", {"language": "python", "code": code})]}
                 for code in ANALYSIS_STEPS] + [{"text": "Sales grew every month."}],
}


def scripted_turn(scripts: dict, model: str, messages: list[dict]) -> dict:
    turns = scripts[model.split(":", 1)[1]]
    n = sum(1 for m in messages if m.get("role") == "assistant")
    turn = turns[n] if n < len(turns) else {"text": "done"}
    if callable(turn):
        turn = turn(messages)
    if "tools" in turn:
        return {"tools": [(f"call_{n}_{i}", name, json.dumps(arguments))
                          for i, (name, arguments) in enumerate(turn["tools"])]}
    return turn


class FakeLLM:
    def __init__(self, scripts: dict | None = None):
        self.scripts = dict(SCRIPTS, **(scripts or {}))
        self.requests: list[dict] = []
        self.disconnects: list[float] = []
        self.counts: dict[str, int] = {}
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.completions)
        self.app.post("/openai/v1/chat/completions")(self.completions)
        self.app.post("/mistral/v1/chat/completions")(self.completions)
        self.app.post("/v1/messages")(self.messages)
        self.app.post("/v1/audio/transcriptions")(self.transcriptions)
        self.app.post("/openai/v1/audio/transcriptions")(self.transcriptions)
        self.transcribed: list[dict] = []
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.groq_base_url = f"http://127.0.0.1:{self.port}"
        self.mistral_base_url = f"http://127.0.0.1:{self.port}/mistral"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))

    def start(self) -> "FakeLLM":
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
        path = request.url.path
        flavor = "groq" if path.startswith("/openai/") else \
            "mistral" if path.startswith("/mistral/") else "openai"
        turn = scripted_turn(self.scripts, model, body["messages"]) \
            if model.startswith("script:") else None
        if turn and "error" in turn:  # a scripted failure mid-conversation
            return error(turn["error"], "scripted failure", "scripted")
        return StreamingResponse(self.events(model, flavor, turn),
                                 media_type="text/event-stream")

    async def events(self, model: str, flavor: str, turn: dict | None = None):
        groq = flavor == "groq"
        usage = {"prompt_tokens": 7, "completion_tokens": 0, "total_tokens": 7}
        calls = TOOL_CALLS if model == "tools" else (turn or {}).get("tools")
        try:
            if calls:
                for index, (call_id, name, arguments) in enumerate(calls):
                    yield chunk(model, {"tool_calls": [{
                        "index": index, "id": call_id, "type": "function",
                        "function": {"name": name, "arguments": ""}}]})
                    for i in range(0, len(arguments), 5):  # arguments split over many chunks
                        function = {"arguments": arguments[i:i + 5]}
                        if flavor == "mistral":  # its SDK wants the name on every delta
                            function["name"] = name
                        yield chunk(model, {"tool_calls": [{"index": index, "function": function}]})
                finish = "tool_calls"
            else:
                tokens, pause = plan_tokens(model, turn)
                for i, text in enumerate(tokens):
                    yield chunk(model, {"content": text})
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
            elif flavor == "mistral":  # usage rides on the last chunk
                yield chunk(model, {}, finish=finish, usage=usage)
            else:  # a final chunk with empty choices, as stream_options.include_usage asks
                yield chunk(model, {}, finish=finish)
                yield chunk(model, usage=usage)
            yield "data: [DONE]\n\n"
        except asyncio.CancelledError:
            self.disconnects.append(time.monotonic())
            raise


    async def transcriptions(self, request: Request):
        """Whisper's endpoint: a multipart form with `file` and `model`. It answers with the
        audio's real duration, so a test knows the whole sound track arrived."""
        async with request.form() as form:  # closes the spooled upload
            upload, model = form["file"], form["model"]
            audio, filename = await upload.read(), upload.filename
        record = {"model": model, "filename": filename, "bytes": len(audio),
                  "authorization": request.headers.get("authorization")}
        self.transcribed.append(record)
        if model == "fail-401":
            return error(401, "Incorrect API key provided", "invalid_api_key")
        try:
            with wave.open(io.BytesIO(audio)) as wav:
                seconds = wav.getnframes() / wav.getframerate()
        except (wave.Error, EOFError):
            return error(400, "Invalid file format.", "invalid_file")
        return JSONResponse({"text": f"a recording of {seconds:.1f} seconds"})

    async def messages(self, request: Request):
        body = await request.json()
        body["authorization"] = request.headers.get("authorization")
        body["x-api-key"] = request.headers.get("x-api-key")
        self.requests.append(body)
        model = body["model"]
        self.counts[model] = self.counts.get(model, 0) + 1
        failures = {"fail-401": (401, "authentication_error", "invalid x-api-key"),
                    "fail-429": (429, "rate_limit_error", "rate limited"),
                    "fail-500": (500, "api_error", "internal error"),
                    "too-long": (400, "invalid_request_error",
                                 "prompt is too long: 300000 tokens > 200000 maximum")}
        if model in failures:
            status, kind, message = failures[model]
            return JSONResponse({"type": "error", "error": {"type": kind, "message": message}},
                                status, headers={"retry-after": "1"} if status == 429 else None)
        turn = scripted_turn(self.scripts, model, body["messages"]) \
            if model.startswith("script:") else None
        return StreamingResponse(self.anthropic_events(model, turn),
                                 media_type="text/event-stream")

    async def anthropic_events(self, model: str, turn: dict | None = None):
        def event(kind: str, data: dict) -> str:
            return f"event: {kind}\ndata: {json.dumps(dict(data, type=kind))}\n\n"
        yield event("message_start", {"message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 7, "output_tokens": 1}}})
        try:
            calls = TOOL_CALLS if model == "tools" else (turn or {}).get("tools")
            if calls:
                for index, (call_id, name, arguments) in enumerate(calls):
                    yield event("content_block_start", {"index": index, "content_block": {
                        "type": "tool_use", "id": call_id, "name": name, "input": {}}})
                    for i in range(0, len(arguments), 5):
                        yield event("content_block_delta", {"index": index, "delta": {
                            "type": "input_json_delta", "partial_json": arguments[i:i + 5]}})
                    yield event("content_block_stop", {"index": index})
                stop, produced = "tool_use", 12
            else:
                tokens, pause = plan_tokens(model, turn)
                count = len(tokens)
                yield event("content_block_start", {"index": 0, "content_block": {
                    "type": "text", "text": ""}})
                for i, text in enumerate(tokens):
                    yield event("content_block_delta", {"index": 0, "delta": {
                        "type": "text_delta", "text": text}})
                    if model == "cut" and i == 1:
                        raise ConnectionAbortedError("the fake cuts the stream")
                    if model == "stall" and i == 0:
                        await asyncio.sleep(30)
                    await asyncio.sleep(pause)
                yield event("content_block_stop", {"index": 0})
                stop, produced = "end_turn", count
            yield event("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                                          "usage": {"output_tokens": produced}})
            yield event("message_stop", {})
        except asyncio.CancelledError:
            self.disconnects.append(time.monotonic())
            raise


def plan_tokens(model: str, turn: dict | None) -> tuple[list[str], float]:
    if turn is not None:  # a scripted text answer, word by word
        words = turn["text"].split(" ")
        return [w + " " for w in words[:-1]] + words[-1:], 0.0
    count, pause = token_plan(model)
    return [token(model, i) for i in range(count)], pause


def token_plan(model: str) -> tuple[int, float]:
    if model.startswith("long-"):
        return int(model.split("-")[1]), 0.0
    if model == "slow":
        return 200, 0.1
    return 4, 0.0


def token(model: str, i: int) -> str:
    return ["Hel", "lo", " wor", "ld"][i] if token_plan(model)[0] == 4 else f"t{i} "


if __name__ == "__main__":  # a standalone fake, for benchmarks: prints its base URL
    fake = FakeLLM().start()
    print(fake.base_url, flush=True)
    threading.Event().wait()
