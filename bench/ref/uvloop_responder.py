"""The uvloop reference row of the HTTP benchmarks: the same minimal
responder as responder.c (counts requests by their CRLF CRLF, writes fixed
answers, no parsing) as a bare asyncio Protocol on uvloop: what Python's
fastest event loop costs per request.

    python3 uvloop_responder.py    prints "addr 127.0.0.1:PORT" once listening
"""
import asyncio
import sys

import uvloop

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class Responder(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.tail = b""

    def data_received(self, data):
        data = self.tail + data
        n = data.count(b"\r\n\r\n")
        self.tail = data[data.rfind(b"\r\n\r\n") + 4:] if n else data[-3:]
        if n:
            self.transport.write(ANSWER * n)


async def main():
    server = await asyncio.get_running_loop().create_server(Responder, "127.0.0.1", 0, backlog=4096)
    print("addr 127.0.0.1:%d" % server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


uvloop.install()
asyncio.run(main())
