"""Scripted MCP client on the real Python `mcp` 2.3.0 SDK, driven by the gateway tests.

Reads ONE JSON document from stdin, writes ONE JSON document to stdout (see README.md):

    {"transport": {"kind": "http", "url": "http://127.0.0.1:P/mcp", "headers": {...}}
                | {"kind": "stdio", "command": "python3", "args": [...], "env": {...}, "cwd": "..."},
     "mode": "legacy" | "auto" | "2026-07-28",
     "timeout": 30, "deadline": 120,
     "steps": [{"op": "list_tools"}, {"op": "call_tool", "name": ..., "arguments": {...}, "progress": true},
               {"op": "ping"}, {"op": "listen"}, {"op": "wait_list_changed", "count": 1, "timeout": 5}]}

"open_task" (optional) plays the orchestrator before the agent connects: it POSTs
{"agents": [...], "intent": ..., ...} to the gateway's /v1/tasks with the admin token,
then sends the opened task's id in `x-arbiter-task` (and its task credential, when the
answer has one for the agent, in `x-arbiter-task-credential`). The answer is reported as
"opened_task":

    "open_task": {"url": "http://127.0.0.1:P/v1/tasks", "admin_token_env": "ARBITER_ADMIN_TOKEN"
                  | "admin_token": "...", "task": {"agents": [...], "intent": "..."}}

"elicitation" (optional) registers an elicitation callback. Each elicitation it gets is
reported in "elicitations" ({mode, url, message}). It answers with "action" (default
"accept"), after, with "approve", POSTing the approval the URL names (its last path
segment) to the gateway, as an approver would from the page:

    "elicitation": {"action": "accept" | "decline" | "cancel",
                    "approve": {"api": "http://127.0.0.1:P", "token": "...", "approver": "alice"}}

legacy      -> streamable_http_client / stdio_client + ClientSession.initialize()
auto, pin   -> mcp.Client(transport, mode=..., cache=None)

"timeout" (s) bounds each request (read_timeout_seconds); "deadline" (s) bounds the whole run.
Exit code 0 when setup succeeded (individual steps may still have failed: see "ok"),
1 on a fatal setup/connection failure (`{"fatal": {...}}`), 2 on a bad input document.
Every notifications/tools/list_changed the client receives is counted in the output's
top-level "list_changed_events".
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx2
import mcp_types
from mcp import Client, ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning

# e.g. "ping is removed as of 2026-07-28": the step's outcome is recorded, stderr stays quiet.
warnings.simplefilter("ignore", MCPDeprecationWarning)


def error_json(e: BaseException, doc: dict[str, Any] | None = None) -> dict[str, Any]:
    """The error as the SDK surfaces it: class name, and code/message/data for MCPError."""
    tb = traceback.format_exc() if doc and doc.get("debug") else None
    # anyio task groups wrap errors; report the first leaf exception.
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    out: dict[str, Any] = {"class": type(e).__name__}
    if tb:
        out["traceback"] = tb
    if isinstance(e, MCPError):
        out["code"] = e.code
        out["message"] = e.message
        out["data"] = e.data
    else:
        out["message"] = str(e)
    if tb:
        out["traceback"] = out.pop("traceback")
    return out


def dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


class SessionIdRecorder:
    """httpx2 response hook: the low-level transport does not expose its session id, so
    read `Mcp-Session-Id` off the HTTP responses."""

    def __init__(self) -> None:
        self.session_id: str | None = None

    async def __call__(self, response: httpx2.Response) -> None:
        sid = response.headers.get("mcp-session-id")
        if sid:
            self.session_id = sid


class NotificationCounter:
    """message_handler for ClientSession/Client: counts notifications/tools/list_changed
    (at 2026-07-28 those arrive on a `subscriptions/listen` stream and are teed here too)."""

    def __init__(self, out: dict[str, Any]) -> None:
        self.out = out  # out["list_changed_events"] stays current, even if the run is cut short
        self.list_changed = 0
        self.changed = anyio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, mcp_types.ToolListChangedNotification):
            self.list_changed += 1
            self.out["list_changed_events"] = self.list_changed
            self.changed.set()
            self.changed = anyio.Event()
        await anyio.lowlevel.checkpoint()


def elicitation_callback(doc: dict[str, Any], out: dict[str, Any]) -> Any:
    """The callback "elicitation" asks for, or None."""
    spec = doc.get("elicitation")
    if spec is None:
        return None
    out.setdefault("elicitations", [])

    async def on_elicit(context: Any, params: Any) -> Any:
        seen = {"mode": getattr(params, "mode", None), "url": getattr(params, "url", None),
                "message": getattr(params, "message", None)}
        out["elicitations"].append(seen)
        approve = spec.get("approve")
        if approve and seen["url"]:
            approval_id = seen["url"].rstrip("/").rsplit("/", 1)[-1]
            async with httpx2.AsyncClient(timeout=30.0) as http:
                response = await http.post(
                    f"{approve['api']}/v1/approvals/{approval_id}/approve",
                    json={"approver": approve["approver"]},
                    headers={"authorization": f"Bearer {approve['token']}"},
                )
            seen["approved"] = response.status_code
        return mcp_types.ElicitResult(action=spec.get("action", "accept"))

    return on_elicit


async def connect(
    doc: dict[str, Any], stack: AsyncExitStack, recorder: SessionIdRecorder, counter: NotificationCounter,
    out: dict[str, Any],
) -> tuple[Any, str]:
    """Open the transport and the session on `stack`; return (client, negotiated version)."""
    on_elicit = elicitation_callback(doc, out)
    transport = doc["transport"]
    mode = doc.get("mode", "legacy")
    timeout = float(doc.get("timeout", 30))
    if transport["kind"] == "http":
        http_client = httpx2.AsyncClient(
            headers=transport.get("headers") or {},
            # The SDK's own defaults (create_mcp_http_client): 30 s, 300 s SSE read.
            timeout=httpx2.Timeout(30.0, read=300.0),
            event_hooks={"response": [recorder]},
        )
        await stack.enter_async_context(http_client)
        # streamable_http_client(...) is itself a Transport (an async context manager
        # yielding the stream pair), so it serves both ClientSession and Client.
        make_transport = lambda: streamable_http_client(transport["url"], http_client=http_client)  # noqa: E731
    elif transport["kind"] == "stdio":
        params = StdioServerParameters(
            command=transport["command"],
            args=transport.get("args", []),
            env=transport.get("env"),
            cwd=transport.get("cwd"),
        )
        make_transport = lambda: stdio_client(params)  # noqa: E731
    else:
        raise ValueError(f"unknown transport kind {transport['kind']!r}")

    if mode == "legacy":
        read, write = await stack.enter_async_context(make_transport())
        session = await stack.enter_async_context(
            ClientSession(read, write, read_timeout_seconds=timeout, message_handler=counter,
                          elicitation_callback=on_elicit)
        )
        init = await session.initialize()
        return session, init.protocol_version
    # cache=None: Client caches tools/list by default, which would hide list filtering.
    client = await stack.enter_async_context(
        Client(make_transport(), mode=mode, cache=None, read_timeout_seconds=timeout, message_handler=counter,
               elicitation_callback=on_elicit)
    )
    return client, client.protocol_version


async def run_step(
    client: Any, step: dict[str, Any], rec: dict[str, Any], stack: AsyncExitStack, counter: NotificationCounter
) -> None:
    op = step.get("op")
    if op == "list_tools":
        res = await client.list_tools()
        rec["tools"] = [t.name for t in res.tools]
        if step.get("full"):
            rec["result"] = dump(res)
    elif op == "call_tool":
        events: list[dict[str, Any]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            events.append({"progress": progress, "total": total, "message": message})

        want_progress = bool(step.get("progress"))

        async def call() -> Any:
            return await client.call_tool(
                step["name"],
                step.get("arguments") or {},
                progress_callback=on_progress if want_progress else None,
            )

        try:
            try:
                res = await call()
            except MCPError as e:
                # 2025-11-25: URL elicitation required. With "retry_after_url", do what a
                # client does: send the user to the URL (here: approve there, as
                # "elicitation.approve" says), then make the same call again.
                if e.code != -32042 or not step.get("retry_after_url"):
                    raise
                elicitations = (e.data or {}).get("elicitations") or []
                rec["url_elicitation_required"] = {"message": e.message, "elicitations": elicitations}
                approve = (doc_of(client) or {}).get("elicitation", {}).get("approve")
                if approve and elicitations:
                    approval_id = elicitations[0]["url"].rstrip("/").rsplit("/", 1)[-1]
                    async with httpx2.AsyncClient(timeout=30.0) as http:
                        response = await http.post(
                            f"{approve['api']}/v1/approvals/{approval_id}/approve",
                            json={"approver": approve["approver"]},
                            headers={"authorization": f"Bearer {approve['token']}"},
                        )
                    rec["url_elicitation_required"]["approved"] = response.status_code
                res = await call()
            rec["result"] = dump(res)
        finally:
            if want_progress:
                rec["progress_events"] = len(events)
                rec["progress"] = events
    elif op == "ping":
        await client.send_ping()
    elif op == "listen":
        # 2026-07-28 only (Client.listen; ClientSession has none): a subscriptions/listen
        # stream for tools/list_changed, open until the run ends.
        if not hasattr(client, "listen"):
            raise ValueError("listen needs mode auto or 2026-07-28 (mcp.Client)")
        sub = await stack.enter_async_context(client.listen(tools_list_changed=True))
        rec["honored"] = dump(sub.honored)
    elif op == "wait_list_changed":
        # Wait until at least `count` list_changed notifications have arrived in total.
        want = int(step.get("count", 1))
        with anyio.move_on_after(float(step.get("timeout", 5))):
            while counter.list_changed < want:
                await counter.changed.wait()
        rec["list_changed_events"] = counter.list_changed
        if counter.list_changed < want:
            raise TimeoutError(f"{counter.list_changed} list_changed notifications, wanted {want}")
    else:
        raise ValueError(f"unknown op {op!r}")


async def open_task(doc: dict[str, Any], out: dict[str, Any]) -> None:
    """The orchestrator's step: open the task, and give the agent its id and credential."""
    spec = doc["open_task"]
    if "admin_token" in spec:
        token = spec["admin_token"]
    else:
        var = spec.get("admin_token_env", "ARBITER_ADMIN_TOKEN")
        token = os.environ.get(var)
        if not token:
            raise ValueError(f"open_task: the admin token's variable {var} is not set")
    async with httpx2.AsyncClient(timeout=float(doc.get("timeout", 30))) as http:
        response = await http.post(
            spec["url"], json=spec["task"], headers={"authorization": f"Bearer {token}"}
        )
    opened = response.json()
    if response.status_code != 201:
        raise RuntimeError(f"open_task: HTTP {response.status_code}: {json.dumps(opened)}")
    out["opened_task"] = opened
    headers = doc["transport"].setdefault("headers", {})
    headers["x-arbiter-task"] = opened["id"]
    agent = headers.get("x-arbiter-agent") or opened["agents"][0]
    credential = (opened.get("credentials") or {}).get(agent)
    if credential:
        headers["x-arbiter-task-credential"] = credential


DOC: dict[str, Any] = {}


def doc_of(_client: Any) -> dict[str, Any]:
    """The input document (one per process)."""
    return DOC


async def run(doc: dict[str, Any], out: dict[str, Any]) -> int:
    DOC.update(doc)
    if "open_task" in doc:
        try:
            await open_task(doc, out)
        except Exception as e:  # noqa: BLE001 - reported like a connection failure
            out["fatal"] = error_json(e, doc)
            return 1
    recorder = SessionIdRecorder()
    counter = NotificationCounter(out)
    # No anyio.fail_after around the setup: the transports enter task groups, and a cancel
    # scope must not be exited while a task group entered inside it is still open. Requests
    # are bounded by read_timeout_seconds, the whole run by main()'s deadline.
    async with AsyncExitStack() as stack:
        try:
            client, out["protocol_version"] = await connect(doc, stack, recorder, counter, out)
            out["session_id"] = recorder.session_id
        except Exception as e:  # noqa: BLE001 - every setup failure is reported
            out["fatal"] = error_json(e, doc)
            return 1

        for step in doc.get("steps", []):
            rec: dict[str, Any] = {"op": step.get("op")}
            if "name" in step:
                rec["name"] = step["name"]
            try:
                await run_step(client, step, rec, stack, counter)
                rec["ok"] = True
            except Exception as e:  # noqa: BLE001 - a step failure is recorded, the script goes on
                rec["ok"] = False
                rec["error"] = error_json(e, doc)
            out["steps"].append(rec)
        out["session_id"] = recorder.session_id or out["session_id"]
        # Leaving the stack ends the session: DELETE (http) / close the child's stdin (stdio).
        try:
            await stack.aclose()
        except Exception as e:  # noqa: BLE001
            out["close_error"] = error_json(e, doc)
    return 0


def main() -> None:
    try:
        doc = json.loads(sys.stdin.read())
        if not isinstance(doc, dict) or "transport" not in doc:
            raise ValueError("input must be a JSON object with a 'transport'")
    except Exception as e:  # noqa: BLE001
        fatal = {"class": type(e).__name__, "message": f"bad input: {e}"}
        json.dump({"protocol_version": None, "session_id": None, "steps": [], "fatal": fatal}, sys.stdout)
        sys.stdout.write("\n")
        sys.exit(2)
    out: dict[str, Any] = {"protocol_version": None, "session_id": None, "list_changed_events": 0, "steps": []}

    async def bounded() -> int:
        with anyio.fail_after(float(doc.get("deadline", 120))):
            return await run(doc, out)

    try:
        code = anyio.run(bounded)
    except BaseException as e:  # noqa: BLE001 - last resort: still one JSON document
        out["fatal"] = error_json(e)
        code = 1
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
