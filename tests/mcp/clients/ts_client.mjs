#!/usr/bin/env node
// Scripted MCP client on the real TypeScript SDKs, driven by the gateway tests.
//
// Reads ONE JSON document from stdin, writes ONE JSON document to stdout (see README.md):
//   {"transport": {"kind": "http", "url": "http://127.0.0.1:P/mcp", "headers": {...}}
//               | {"kind": "stdio", "command": "python3", "args": [...], "env": {...}, "cwd": "..."},
//    "sdk": "v1" | "v2",           v1 = @modelcontextprotocol/sdk 1.32.2 (legacy only),
//                                  v2 = @modelcontextprotocol/client 2.4.0
//    "mode": "legacy" | "auto" | "2026-07-28",
//    "timeout": 30, "deadline": 120,   seconds: per request / whole run
//    "steps": [{"op": "list_tools"}, {"op": "call_tool", "name": ..., "arguments": {...}, "progress": true},
//              {"op": "ping"}, {"op": "terminate_session"},
//              {"op": "listen"}, {"op": "wait_list_changed", "count": 1, "timeout": 5}]}
//    "elicitation": {"action": "accept", "approve": {"api": "http://127.0.0.1:P", "token": "...", "approver": "..."}}
//
// With "elicitation" the client declares URL elicitation. v2 answers `elicitation/create`
// (a 2026-07-28 input-required result): it approves the approval the URL names, as an
// approver on that page would, then answers "action". A call_tool step with
// "retry_after_url" does the same for a 2025-11-25 -32042 error and calls again.
//
// Every notifications/tools/list_changed the client receives is counted in the output's
// top-level "list_changed_events".
//
// Exit code 0 when setup succeeded (steps may still have failed: see "ok"), 1 on a fatal
// setup/connection failure (`{"fatal": {...}}`), 2 on a bad input document.

const out = { protocol_version: null, session_id: null, list_changed_events: 0, steps: [] };
const listChangedWaiters = new Set();

function onToolListChanged() {
    out.list_changed_events += 1;
    for (const w of listChangedWaiters) w();
}

/** Resolve true once `count` list_changed notifications have arrived in total, false after timeoutMs. */
function waitListChanged(count, timeoutMs) {
    return new Promise((resolve) => {
        const check = () => {
            if (out.list_changed_events < count) return;
            listChangedWaiters.delete(check);
            clearTimeout(timer);
            resolve(true);
        };
        const timer = setTimeout(() => {
            listChangedWaiters.delete(check);
            resolve(false);
        }, timeoutMs);
        listChangedWaiters.add(check);
        check();
    });
}
let finished = false;

/** Approves the approval `url` names (its last path segment), as "elicitation.approve" says. */
async function approveAt(doc, url) {
    const approve = doc.elicitation?.approve;
    if (!approve || !url) return null;
    const id = url.replace(/\/+$/, '').split('/').pop();
    const response = await fetch(`${approve.api}/v1/approvals/${id}/approve`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${approve.token}` },
        body: JSON.stringify({ approver: approve.approver }),
    });
    return response.status;
}

function finish(code) {
    if (finished) return;
    finished = true;
    process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(code));
}

/** The error as the SDK surfaces it: class name, code, message, data. */
function errorJson(e, debug) {
    if (!(e instanceof Error)) return { class: typeof e, message: String(e) };
    const o = { class: e.constructor?.name ?? e.name };
    if (e.name && e.name !== o.class) o.name = e.name;
    if (e.code !== undefined) o.code = e.code;
    o.message = e.message;
    if (e.data !== undefined) o.data = e.data;
    if (typeof e.status === 'number') o.status = e.status;
    // e.g. TypeError "fetch failed" with cause ECONNREFUSED.
    if (e.cause instanceof Error) o.cause = { class: e.cause.constructor?.name ?? e.cause.name, code: e.cause.code, message: e.cause.message };
    if (debug && e.stack) o.stack = e.stack;
    return o;
}

async function readStdin() {
    const chunks = [];
    for await (const c of process.stdin) chunks.push(c);
    return Buffer.concat(chunks).toString('utf8');
}

async function loadSdk(sdk) {
    if (sdk === 'v1') {
        const [{ Client }, { StreamableHTTPClientTransport }, { StdioClientTransport }, { ToolListChangedNotificationSchema }] =
            await Promise.all([
                import('@modelcontextprotocol/sdk/client/index.js'),
                import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
                import('@modelcontextprotocol/sdk/client/stdio.js'),
                import('@modelcontextprotocol/sdk/types.js'),
            ]);
        return { Client, StreamableHTTPClientTransport, StdioClientTransport, ToolListChangedNotificationSchema };
    }
    if (sdk === 'v2') {
        const [{ Client, StreamableHTTPClientTransport }, { StdioClientTransport }] = await Promise.all([
            import('@modelcontextprotocol/client'),
            import('@modelcontextprotocol/client/stdio'),
        ]);
        return { Client, StreamableHTTPClientTransport, StdioClientTransport };
    }
    throw new Error(`unknown sdk ${JSON.stringify(sdk)} (v1 or v2)`);
}

async function main() {
    let doc;
    try {
        doc = JSON.parse(await readStdin());
        if (!doc || typeof doc !== 'object' || !doc.transport) throw new Error("input must be a JSON object with a 'transport'");
        doc.sdk ??= 'v1';
        doc.mode ??= 'legacy';
        if (!['v1', 'v2'].includes(doc.sdk)) throw new Error(`unknown sdk ${JSON.stringify(doc.sdk)}`);
        if (doc.sdk === 'v1' && doc.mode !== 'legacy') {
            throw new Error(`sdk v1 (@modelcontextprotocol/sdk) has no version negotiation: only mode "legacy" (got ${JSON.stringify(doc.mode)})`);
        }
        if (!['legacy', 'auto'].includes(doc.mode) && !/^\d{4}-\d{2}-\d{2}$/.test(doc.mode)) {
            throw new Error(`unknown mode ${JSON.stringify(doc.mode)}`);
        }
    } catch (e) {
        out.fatal = { class: e.constructor?.name ?? 'Error', message: `bad input: ${e.message}` };
        return finish(2);
    }
    const debug = !!doc.debug;
    const timeoutMs = Math.round(1000 * (doc.timeout ?? 30));
    setTimeout(() => {
        out.fatal = { class: 'DeadlineExceeded', message: `run exceeded deadline of ${doc.deadline ?? 120}s` };
        finish(1);
    }, Math.round(1000 * (doc.deadline ?? 120))).unref();

    let client;
    let transport;
    let negotiated = null;
    const subscriptions = [];
    try {
        const sdk = await loadSdk(doc.sdk);
        const t = doc.transport;
        if (t.kind === 'http') {
            transport = new sdk.StreamableHTTPClientTransport(new URL(t.url), {
                requestInit: { headers: { ...(t.headers ?? {}) } },
            });
        } else if (t.kind === 'stdio') {
            const params = { command: t.command, args: t.args ?? [] };
            if (t.env) params.env = t.env;
            if (t.cwd) params.cwd = t.cwd;
            transport = new sdk.StdioClientTransport(params);
            // v1's StdioClientTransport does not keep the negotiated version; Client.connect()
            // calls transport.setProtocolVersion(v) when the transport has one.
            if (typeof transport.setProtocolVersion !== 'function') {
                transport.setProtocolVersion = (v) => {
                    negotiated = v;
                };
            }
        } else {
            throw new Error(`unknown transport kind ${JSON.stringify(t.kind)}`);
        }

        const info = { name: `arbiter-test-ts-${doc.sdk}`, version: '1.0.0' };
        const capabilities = doc.elicitation ? { elicitation: { form: {}, url: {} } } : {};
        if (doc.sdk === 'v1') {
            client = new sdk.Client(info, { capabilities });
        } else {
            const mode = doc.mode === 'legacy' || doc.mode === 'auto' ? doc.mode : { pin: doc.mode };
            client = new sdk.Client(info, { capabilities, versionNegotiation: { mode } });
            if (doc.elicitation) {
                out.elicitations = [];
                client.setRequestHandler('elicitation/create', async (request) => {
                    const seen = { mode: request.params.mode, url: request.params.url, message: request.params.message };
                    out.elicitations.push(seen);
                    seen.approved = await approveAt(doc, request.params.url);
                    return { action: doc.elicitation.action ?? 'accept' };
                });
            }
        }
        // Count list_changed (before connect, so none is missed). v1 keys handlers by zod
        // schema, v2 by method name. On a 2026-07-28 connection these notifications arrive
        // only on a subscriptions/listen stream (op "listen"), dispatched to the same handler.
        if (doc.sdk === 'v1') client.setNotificationHandler(sdk.ToolListChangedNotificationSchema, onToolListChanged);
        else client.setNotificationHandler('notifications/tools/list_changed', onToolListChanged);
        await client.connect(transport, { timeout: timeoutMs });
        out.protocol_version =
            (typeof client.getNegotiatedProtocolVersion === 'function' ? client.getNegotiatedProtocolVersion() : undefined) ??
            transport.protocolVersion ??
            negotiated ??
            null;
        if (typeof client.getProtocolEra === 'function') out.protocol_era = client.getProtocolEra() ?? null;
        out.session_id = transport.sessionId ?? null;
    } catch (e) {
        out.fatal = errorJson(e, debug);
        try {
            await client?.close();
        } catch {
            /* ignore */
        }
        return finish(1);
    }

    for (const step of doc.steps ?? []) {
        const rec = { op: step.op };
        if (step.name !== undefined) rec.name = step.name;
        const opts = { timeout: timeoutMs };
        let events = null;
        try {
            switch (step.op) {
                case 'list_tools': {
                    // v2 caches tools/list ('use'); always fetch so filtering is visible.
                    const res =
                        doc.sdk === 'v2' ? await client.listTools(undefined, { ...opts, cacheMode: 'refresh' }) : await client.listTools(undefined, opts);
                    rec.tools = res.tools.map((x) => x.name);
                    if (step.full) rec.result = res;
                    break;
                }
                case 'call_tool': {
                    if (step.progress) {
                        events = [];
                        opts.onprogress = (p) => events.push(p);
                    }
                    const params = { name: step.name, arguments: step.arguments ?? {} };
                    // v1: callTool(params, resultSchema?, options?); v2: callTool(params, options?).
                    const call = () => (doc.sdk === 'v1' ? client.callTool(params, undefined, opts) : client.callTool(params, opts));
                    let res;
                    try {
                        res = await call();
                    } catch (e) {
                        // 2025-11-25: URL elicitation required (UrlElicitationRequiredError in both SDKs).
                        if (e?.code !== -32042 || !step.retry_after_url) throw e;
                        const elicitations = e.elicitations ?? e.data?.elicitations ?? [];
                        rec.url_elicitation_required = { class: e.constructor?.name, message: e.message, elicitations };
                        rec.url_elicitation_required.approved = await approveAt(doc, elicitations[0]?.url);
                        res = await call();
                    }
                    rec.result = res;
                    break;
                }
                case 'ping':
                    await client.ping(opts);
                    break;
                case 'listen': {
                    // v2 on a 2026-07-28 connection only: client.listen() opens a subscriptions/listen
                    // stream; it stays open until the run ends.
                    if (typeof client.listen !== 'function') throw new Error('sdk v1 has no listen() (2026-07-28 only)');
                    const sub = await client.listen({ toolsListChanged: true }, opts);
                    subscriptions.push(sub);
                    rec.honored = sub.honoredFilter;
                    break;
                }
                case 'wait_list_changed': {
                    const count = step.count ?? 1;
                    const ok = await waitListChanged(count, Math.round(1000 * (step.timeout ?? 5)));
                    rec.list_changed_events = out.list_changed_events;
                    if (!ok) throw new Error(`${out.list_changed_events} list_changed notifications, wanted ${count}`);
                    break;
                }
                case 'terminate_session':
                    if (typeof transport.terminateSession !== 'function') throw new Error('transport has no terminateSession()');
                    await transport.terminateSession();
                    break;
                default:
                    throw new Error(`unknown op ${JSON.stringify(step.op)}`);
            }
            rec.ok = true;
        } catch (e) {
            rec.ok = false;
            rec.error = errorJson(e, debug);
        }
        if (events) {
            rec.progress_events = events.length;
            rec.progress = events;
        }
        out.steps.push(rec);
    }
    out.session_id = transport.sessionId ?? out.session_id;
    for (const sub of subscriptions) await sub.close().catch(() => {});
    try {
        await client.close();
    } catch (e) {
        out.close_error = errorJson(e, debug);
    }
    finish(0);
}

main().catch((e) => {
    out.fatal = errorJson(e, true);
    finish(1);
});
