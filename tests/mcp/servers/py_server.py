"""A small MCP server on the Python `mcp` 2.3.0 SDK (MCPServer), for the gateway tests.

    python py_server.py stdio [--call-log PATH]
    python py_server.py http PORT [--call-log PATH]

http: Streamable HTTP on 127.0.0.1, path /mcp, stateful sessions (the SDK server is
dual-era: legacy `initialize` sessions and 2026-07-28 `server/discover`). PORT 0 picks a
free port below 32768. When the socket is serving, it prints one line `listening <port>`
to stdout. In http mode it exits when stdin closes (keep stdin a pipe held by the parent),
and on SIGTERM/SIGINT. In stdio mode stdout is the MCP channel; logs go to stderr.

Every executed tool call appends one JSON line `{"tool": name, "arguments": {...}}` to the
call log: `--call-log PATH`, else the file named by env var MCP_CALL_LOG, else nowhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import os
import random
import signal
import socket
import sys
import threading
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

CALL_LOG: str | None = None

# A fake "confidential" record: tests check whether this text (ACCT-12345678) leaks.
RECORD_TEMPLATE = (
    "CUSTOMER RECORD {id} (CONFIDENTIAL)\n"
    "name: Jane Example\n"
    "account: ACCT-12345678\n"
    "email: jane.example@example.invalid\n"
    "balance: 1024.00 EUR\n"
)

mcp = MCPServer("arbiter-py-test-server", version="1.0.0", log_level="WARNING")


def log_call(tool: str, arguments: dict[str, Any]) -> None:
    if not CALL_LOG:
        return
    line = json.dumps({"tool": tool, "arguments": arguments}, sort_keys=True) + "\n"
    # One write per line with O_APPEND, so concurrent calls don't interleave.
    fd = os.open(CALL_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@mcp.tool()
def echo(message: str) -> str:
    """Return the message unchanged."""
    log_call("echo", {"message": message})
    return message


@mcp.tool()
def read_record(id: str) -> str:  # noqa: A002 - the tool's argument is called `id`
    """Read a customer record (confidential)."""
    log_call("read_record", {"id": id})
    return RECORD_TEMPLATE.format(id=id)


@mcp.tool()
def post_message(channel: str, text: str) -> str:
    """Post a message to a channel."""
    log_call("post_message", {"channel": channel, "text": text})
    return f"posted to {channel}"


@mcp.tool()
def delete_everything(confirm: bool) -> str:
    """Delete everything (fake: deletes nothing)."""
    log_call("delete_everything", {"confirm": confirm})
    return "deleted everything" if confirm else "nothing deleted (confirm was false)"


@mcp.tool()
async def slow_count(n: int, ctx: Context) -> str:
    """Count to n, sending one progress notification per step (50 ms apart)."""
    log_call("slow_count", {"n": n})
    for i in range(1, n + 1):
        await asyncio.sleep(0.05)
        await ctx.report_progress(i, n, f"step {i}/{n}")
    return f"counted {n}"


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    log_call("add", {"a": a, "b": b})
    return a + b


def bind_socket(port: int) -> socket.socket:
    """Bind 127.0.0.1:port; port 0 tries random ports in 20000-32767 (the kernel's own
    ephemeral range starts at 32768, which this workplace does not allow)."""
    attempts = 64 if port == 0 else 1
    last: OSError | None = None
    for _ in range(attempts):
        p = random.randint(20000, 32767) if port == 0 else port
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", p))
        except OSError as e:
            sock.close()
            last = e
            if e.errno == errno.EADDRINUSE:
                continue
            raise
        sock.listen(128)
        sock.setblocking(False)
        return sock
    assert last is not None
    raise last


async def serve_http(port: int) -> None:
    import uvicorn

    app = mcp.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")
    sock = bind_socket(port)
    actual = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")

    class Server(uvicorn.Server):
        # uvicorn re-raises a captured SIGTERM after shutdown (exit status -15); handle the
        # signals here instead so a requested stop exits 0.
        @contextlib.contextmanager
        def capture_signals(self):  # type: ignore[override]
            yield

    server = Server(config)
    loop = asyncio.get_running_loop()

    def stop(_why: str) -> None:
        # force_exit: don't wait for open SSE streams (a GET stream never ends by itself).
        server.should_exit = True
        server.force_exit = True
        # Open streams are cancelled on the way out; that is not an error worth a traceback.
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig.name)

    # Exit when stdin closes: a parent (test harness) that dies must not leave us running.
    def watch_stdin() -> None:
        try:
            # os.read on the fd, not sys.stdin: a daemon thread blocked inside a buffered
            # reader's lock can abort interpreter shutdown.
            while os.read(0, 65536):
                pass
        except (OSError, ValueError):
            pass
        loop.call_soon_threadsafe(stop, "stdin closed")

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.01)
        sys.stdout.write(f"listening {actual}\n")
        sys.stdout.flush()

    announcer = asyncio.create_task(announce())
    await server.serve(sockets=[sock])
    announcer.cancel()


def main() -> None:
    global CALL_LOG
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("transport", choices=["stdio", "http"])
    ap.add_argument("port", nargs="?", type=int, default=0)
    ap.add_argument("--call-log", default=None)
    args = ap.parse_args()
    CALL_LOG = args.call_log or os.environ.get("MCP_CALL_LOG") or None
    if args.transport == "stdio":
        mcp.run("stdio")
    else:
        if not 0 <= args.port <= 65535:
            ap.error("PORT must be 0..65535")
        asyncio.run(serve_http(args.port))


if __name__ == "__main__":
    main()
