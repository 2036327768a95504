"""Async JSON-lines conversation with a sandbox's supervisor over its attached socket."""

import asyncio
import socket

from .protocol import BadFrame, FrameDecoder, encode_request


class ChannelClosed(ConnectionError):
    """The container's stdio went away (container removed, or supervisor dead)."""


class RunnerChannel:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder()
        self._frames: list[dict] = []

    @classmethod
    async def open(cls, sock: socket.socket) -> "RunnerChannel":
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 22)
        return cls(reader, writer)

    async def send(self, request: dict) -> None:
        try:
            self._writer.write(encode_request(request))
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise ChannelClosed(str(exc)) from exc

    async def receive(self) -> dict:
        while not self._frames:
            try:
                data = await self._reader.read(1 << 18)
            except (ConnectionError, OSError) as exc:
                raise ChannelClosed(str(exc)) from exc
            if not data:
                raise ChannelClosed("sandbox closed its output: " + self.diagnostics())
            try:
                self._frames.extend(self._decoder.feed(data))
            except BadFrame as exc:  # the conversation is lost: the owner destroys it
                raise ChannelClosed(f"{exc}; {self.diagnostics()}") from exc
        return self._frames.pop(0)

    def diagnostics(self) -> str:
        return self._decoder.diagnostics.decode(errors="replace")[-2000:]

    def close(self) -> None:
        self._writer.close()
