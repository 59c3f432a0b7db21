"""A small MCP server on the Python `mcp` 2.3.0 SDK (MCPServer), for the gateway tests.

    python py_server.py stdio [--call-log PATH] [--protocol-version V]
    python py_server.py http PORT [--call-log PATH] [--protocol-version V] [--header-log PATH]

http: Streamable HTTP on 127.0.0.1, path /mcp, stateful sessions (the SDK server is
dual-era: legacy `initialize` sessions and 2026-07-28 `server/discover`). PORT 0 picks a
free port below 32768. When the socket is serving, it prints one line `listening <port>`
to stdout. In http mode it exits when stdin closes (keep stdin a pipe held by the parent),
and on SIGTERM/SIGINT. In stdio mode stdout is the MCP channel; logs go to stderr.

Every executed tool call appends one JSON line `{"tool": name, "arguments": {...}}` to the
call log: `--call-log PATH`, else the file named by env var MCP_CALL_LOG, else nowhere.

--protocol-version V (one of 2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25): a
handshake-only server pinned to V. `initialize` is answered with exactly V whatever the
client proposes, and the 2026-07-28 era is refused the way a handshake-only server
refuses it (stdio: the SDK's handshake-only loop, `server/discover` gets a JSON-RPC
error; http: HTTP 400 with a JSON-RPC error body), so `mode: auto` clients fall back to
`initialize` and end up on V.

--header-log PATH (http only; else env var MCP_HEADER_LOG): one JSON line per HTTP
request, `{"http": "POST", "path": "/mcp", "rpc": "tools/call", "headers": {mcp-* ...}}`
(plus `authorization` when one arrives: the gateway must never pass the agent's on).

--require-credential JWKS_URL AUDIENCE (http only): a tool server that accepts a
`tools/call` only with an Arbiter per-call credential in `Authorization: Bearer`,
verified with PyJWT against the JWKS fetched from JWKS_URL: signature, `exp`, `aud` =
AUDIENCE, and the call itself (`tool` = params.name, `args_sha256` = SHA-256 of the
arguments as JSON with sorted keys and no whitespace). A call without one, or with one
for another tool, other arguments or another audience, gets HTTP 401 and does not run.
Each verdict is one JSON line in the header log: `{"credential": {claims}}` or
`{"credential_refused": reason}`.
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

import mcp_types
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from mcp.server import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.message import ServerMessageMetadata

CALL_LOG: str | None = None
HEADER_LOG: str | None = None
REQUIRE_CREDENTIAL: list[str] | None = None

# A fake "confidential" record: tests check whether this text (ACCT-12345678) leaks.
RECORD_TEMPLATE = (
    "CUSTOMER RECORD {id} (CONFIDENTIAL)\n"
    "name: Jane Example\n"
    "account: ACCT-12345678\n"
    "email: jane.example@example.invalid\n"
    "balance: 1024.00 EUR\n"
)

mcp = MCPServer("arbiter-py-test-server", version="1.0.0", log_level="WARNING")

# MCPServer advertises `tools.listChanged: false` in the handshake era (it passes no
# NotificationOptions); `unlock` does send notifications/tools/list_changed, so say so.
# (At 2026-07-28 the SDK derives listChanged from `subscriptions/listen` being served.)
_create_init_options = mcp._lowlevel_server.create_initialization_options
mcp._lowlevel_server.create_initialization_options = lambda notification_options=None, *a, **kw: (  # type: ignore[method-assign]
    _create_init_options(notification_options or NotificationOptions(tools_changed=True), *a, **kw)
)


def append_line(path: str | None, record: dict[str, Any]) -> None:
    if not path:
        return
    line = json.dumps(record, sort_keys=True) + "\n"
    # One write per line with O_APPEND, so concurrent writers don't interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def log_call(tool: str, arguments: dict[str, Any]) -> None:
    append_line(CALL_LOG, {"tool": tool, "arguments": arguments})


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
    # Written only when the count finished: a cancelled call never writes it.
    log_call("slow_count_done", {"n": n})
    return f"counted {n}"


@mcp.tool()
async def ping_client(ctx: Context) -> str:
    """Send the client a ping, a server-to-client request, and wait for its answer."""
    log_call("ping_client", {})
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return "2026-07-28 has no server-to-client requests"
    # Related to this call, so that over HTTP it goes on this call's SSE stream.
    await ctx.session.send_request(
        mcp_types.PingRequest(),
        mcp_types.EmptyResult,
        metadata=ServerMessageMetadata(related_request_id=ctx.request_context.request_id),
    )
    return "the client answered the ping"


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    log_call("add", {"a": a, "b": b})
    return a + b


@mcp.tool()
async def unlock(name: str, ctx: Context, channel: str = "request") -> str:
    """Register a new tool `name` at run time and announce it with notifications/tools/list_changed.

    channel (handshake era only): "request" sends the notification on this call's own
    response stream (HTTP: the POST's SSE stream, before the result), "standalone" on the
    session's standalone channel (HTTP: the GET SSE stream; dropped if none is open). At
    2026-07-28 change notifications reach only `subscriptions/listen` streams, so there the
    event is published on the server's subscription bus instead.
    """
    log_call("unlock", {"name": name, "channel": channel})
    if channel not in ("request", "standalone"):
        raise ValueError('channel must be "request" or "standalone"')
    if mcp._tool_manager.get_tool(name) is None:

        def unlocked() -> str:
            log_call(name, {})
            return f"unlocked tool {name} ran"

        mcp.add_tool(unlocked, name=name, description=f"Tool unlocked at run time by unlock({name!r}).")
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        await ctx.notify_tools_changed()
    elif channel == "request":
        await ctx.session.send_notification(
            mcp_types.ToolListChangedNotification(), related_request_id=ctx.request_context.request_id
        )
    else:
        await ctx.session.send_tool_list_changed()
    return f"unlocked {name}"


def pin_protocol_version(version: str) -> None:
    """Make this a handshake-only server on `version` (monkeypatches mcp 2.3.0 internals)."""
    import mcp.server.lowlevel.server as lowlevel
    import mcp.server.streamable_http_manager as shttp_manager
    from mcp.server.runner import ServerRunner, serve_loop

    # 1. ServerRunner._negotiate_initialize (a staticmethod) picks the version for both the
    #    InitializeResult and the connection state: the requested one if it is in
    #    HANDSHAKE_PROTOCOL_VERSIONS, else 2025-11-25. Answer `version` instead, always.
    original = ServerRunner._negotiate_initialize

    def negotiate(params: Any) -> tuple[Any, str]:
        init, _ = original(params)
        return init, version

    ServerRunner._negotiate_initialize = staticmethod(negotiate)  # type: ignore[method-assign]

    # 2. stdio: Server.run drives serve_dual_era_loop (a first request carrying the
    #    2026-07-28 `_meta` envelope opens a modern connection). serve_loop is the SDK's
    #    handshake-only loop, with the same signature: there `server/discover` is answered
    #    with a JSON-RPC error and the connection stays open for `initialize`.
    lowlevel.serve_dual_era_loop = serve_loop  # type: ignore[assignment]

    # 3. http: the session manager routes any MCP-Protocol-Version header outside
    #    HANDSHAKE_PROTOCOL_VERSIONS to the modern entry. Refuse it instead, as mcp 1.x's
    #    transport did: HTTP 400 with a JSON-RPC error body (-32600).
    async def refuse_modern(_app: Any, _security: Any, _json: bool, _state: Any, scope: Any, receive: Any, send: Any) -> None:
        pv = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"mcp-protocol-version"), "")
        await shttp_manager._error_response(
            f"Bad Request: Unsupported protocol version: {pv}. Supported versions: {version}", 400
        )(scope, receive, send)

    shttp_manager.handle_modern_request = refuse_modern  # type: ignore[assignment]


class HeaderLog:
    """ASGI middleware: one JSON line per HTTP request with its method, path, JSON-RPC
    method(s), mcp-* and authorization headers. POST lines are written once the body has
    been read."""

    def __init__(self, app: Any, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rec: dict[str, Any] = {
            "http": scope["method"],
            "path": scope["path"],
            "headers": {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in scope["headers"]
                if k.lower().startswith(b"mcp-") or k.lower() == b"authorization"
            },
        }
        if scope["method"] != "POST":
            append_line(self.path, rec)
            return await self.app(scope, receive, send)
        body = bytearray()
        logged = False

        async def receive_logged() -> Any:
            nonlocal logged
            message = await receive()
            if message["type"] == "http.request" and not logged:
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    logged = True
                    rec["rpc"] = rpc_methods(bytes(body))
                    append_line(self.path, rec)
            return message

        await self.app(scope, receive_logged, send)
        if not logged:
            append_line(self.path, rec)


class RequireCredential:
    """ASGI middleware: see --require-credential in the module docs."""

    def __init__(self, app: Any, jwks_url: str, audience: str) -> None:
        import jwt

        self.app = app
        self.jwks = jwt.PyJWKClient(jwks_url, cache_keys=False)
        self.audience = audience

    def verdict(self, scope: Any, body: bytes) -> str | None:
        """None when the call may run, else why not."""
        import hashlib

        import jwt

        try:
            msg = json.loads(body)
        except ValueError:
            return None
        if not isinstance(msg, dict) or msg.get("method") != "tools/call":
            return None
        auth = next((v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"authorization"), "")
        if not auth.lower().startswith("bearer "):
            return "no credential"
        token = auth[7:].strip()
        try:
            key = self.jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=["EdDSA", "ES256"],
                audience=self.audience,
                options={"require": ["exp", "iat", "sub", "aud", "jti"]},
            )
        except jwt.PyJWTError as e:
            return f"{type(e).__name__}: {e}"
        params = msg.get("params") or {}
        if claims.get("tool") != params.get("name"):
            return f"issued for tool {claims.get('tool')!r}, not {params.get('name')!r}"
        canonical = json.dumps(params.get("arguments") or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if claims.get("args_sha256") != hashlib.sha256(canonical.encode()).hexdigest():
            return "issued for other arguments"
        append_line(HEADER_LOG, {"credential": claims})
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        body = bytearray()
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                break
        reason = await asyncio.to_thread(self.verdict, scope, bytes(body))
        if reason is not None:
            append_line(HEADER_LOG, {"credential_refused": reason})
            payload = json.dumps({"error": f"credential refused: {reason}"}).encode()
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": payload})
            return

        async def replay() -> Any:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def rpc_methods(body: bytes) -> Any:
    """The JSON-RPC method of a request/notification, "response" for a response, a list for a batch."""
    try:
        msg = json.loads(body)
    except ValueError:
        return None
    one = lambda m: m.get("method", "response") if isinstance(m, dict) else None  # noqa: E731
    return [one(m) for m in msg] if isinstance(msg, list) else one(msg)


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
    if REQUIRE_CREDENTIAL:
        app = RequireCredential(app, *REQUIRE_CREDENTIAL)
    if HEADER_LOG:
        app = HeaderLog(app, HEADER_LOG)
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
    global CALL_LOG, HEADER_LOG, REQUIRE_CREDENTIAL
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("transport", choices=["stdio", "http"])
    ap.add_argument("port", nargs="?", type=int, default=0)
    ap.add_argument("--call-log", default=None)
    ap.add_argument("--header-log", default=None)
    ap.add_argument("--protocol-version", choices=HANDSHAKE_PROTOCOL_VERSIONS, default=None)
    ap.add_argument("--require-credential", nargs=2, metavar=("JWKS_URL", "AUDIENCE"), default=None)
    args = ap.parse_args()
    REQUIRE_CREDENTIAL = args.require_credential
    CALL_LOG = args.call_log or os.environ.get("MCP_CALL_LOG") or None
    HEADER_LOG = args.header_log or os.environ.get("MCP_HEADER_LOG") or None
    if args.protocol_version:
        pin_protocol_version(args.protocol_version)
    if args.transport == "stdio":
        mcp.run("stdio")
    else:
        if not 0 <= args.port <= 65535:
            ap.error("PORT must be 0..65535")
        asyncio.run(serve_http(args.port))


if __name__ == "__main__":
    main()
