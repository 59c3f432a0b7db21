#!/usr/bin/env node
// Runs @modelcontextprotocol/server-everything over Streamable HTTP on 127.0.0.1 only.
//
//   node everything_http.mjs PORT      (PORT 0 = pick a free port in 20000-32767; this
//                                       workplace only allows ports below 32768, and the
//                                       kernel's own ephemeral range starts at 32768)
//
// The package's own `streamableHttp` mode calls `app.listen(PORT)` (all interfaces) and
// logs to stdout, so this script mounts the package's `createServer()` on the SDK's
// `StreamableHTTPServerTransport` itself, one server + transport per session, as that entry
// does. Endpoint: `/mcp` (POST, GET = standalone SSE stream, DELETE = end session).
//
// stdout carries exactly one line, `listening <port>`, once the socket accepts connections.
// Everything else goes to stderr. The process exits when stdin closes (keep stdin a pipe
// that the parent holds open; `/dev/null` makes it exit at once), on SIGTERM and on SIGINT.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { createServer } from '@modelcontextprotocol/server-everything/dist/server/index.js';

// The package and the SDK log with console.log: keep stdout for the one ready line.
console.log = console.error;
console.info = console.error;
console.debug = console.error;

const portArg = process.argv[2] ?? '0';
const port = Number.parseInt(portArg, 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`usage: node everything_http.mjs PORT (got ${JSON.stringify(portArg)})\n`);
    process.exit(2);
}

const MAX_BODY = 4 * 1024 * 1024;
/** sessionId -> { transport, server, cleanup } */
const sessions = new Map();

function sendJsonRpcError(res, status, code, message, id = null) {
    if (res.headersSent) return;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id }));
}

function readBody(req) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        let size = 0;
        req.on('data', (c) => {
            size += c.length;
            if (size > MAX_BODY) {
                reject(Object.assign(new Error('body too large'), { status: 413 }));
                req.destroy();
                return;
            }
            chunks.push(c);
        });
        req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        req.on('error', reject);
    });
}

async function newSession(req, res, body) {
    const { server, cleanup } = createServer();
    let transport;
    transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (sid) => {
            sessions.set(sid, { transport, server, cleanup });
            process.stderr.write(`session initialized ${sid}\n`);
        },
    });
    server.server.onclose = async () => {
        const sid = transport.sessionId;
        if (sid && sessions.has(sid)) {
            sessions.delete(sid);
            cleanup(sid);
            process.stderr.write(`session closed ${sid}\n`);
        }
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
}

async function handle(req, res) {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/mcp') {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
        return;
    }
    const sid = req.headers['mcp-session-id'];
    const session = typeof sid === 'string' ? sessions.get(sid) : undefined;

    if (req.method === 'POST') {
        let body;
        try {
            const text = await readBody(req);
            body = JSON.parse(text);
        } catch (e) {
            if (e && e.status === 413) return sendJsonRpcError(res, 413, -32600, 'Request body too large');
            return sendJsonRpcError(res, 400, -32700, 'Parse error');
        }
        if (session) return session.transport.handleRequest(req, res, body);
        if (sid !== undefined) return sendJsonRpcError(res, 404, -32001, 'Session not found');
        const isInit = Array.isArray(body) ? body.some(isInitializeRequest) : isInitializeRequest(body);
        if (isInit) return newSession(req, res, body);
        return sendJsonRpcError(res, 400, -32000, 'Bad Request: No valid session ID provided', body?.id ?? null);
    }
    if (req.method === 'GET' || req.method === 'DELETE') {
        if (session) return session.transport.handleRequest(req, res);
        if (sid !== undefined) return sendJsonRpcError(res, 404, -32001, 'Session not found');
        return sendJsonRpcError(res, 400, -32000, 'Bad Request: No valid session ID provided');
    }
    res.writeHead(405, { allow: 'GET, POST, DELETE', 'content-type': 'text/plain' });
    res.end('method not allowed\n');
}

const httpServer = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
        process.stderr.write(`error handling ${req.method} ${req.url}: ${err?.stack ?? err}\n`);
        sendJsonRpcError(res, 500, -32603, 'Internal server error');
    });
});

let stopping = false;
async function shutdown(why) {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`everything_http: stopping (${why})\n`);
    // Never hang on shutdown: hard exit after a short grace period.
    setTimeout(() => process.exit(0), 1000).unref();
    for (const [sid, s] of sessions) {
        try {
            await s.transport.close();
        } catch (e) {
            process.stderr.write(`closing session ${sid}: ${e}\n`);
        }
        try {
            s.cleanup(sid);
        } catch {
            /* already cleaned */
        }
    }
    sessions.clear();
    httpServer.closeAllConnections?.();
    httpServer.close(() => process.exit(0));
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.stdin.on('end', () => shutdown('stdin closed'));
process.stdin.on('close', () => shutdown('stdin closed'));
process.stdin.on('error', () => shutdown('stdin error'));
process.stdin.resume();

// PORT 0: the kernel would pick from its ephemeral range (32768+), which is off limits
// here, so try random ports below 32768 instead.
const PICK_LO = 20000;
const PICK_HI = 32767;
let attemptsLeft = port === 0 ? 64 : 1;
function tryListen() {
    const p = port === 0 ? PICK_LO + Math.floor(Math.random() * (PICK_HI - PICK_LO + 1)) : port;
    httpServer.listen(p, '127.0.0.1');
}
httpServer.on('error', (err) => {
    attemptsLeft -= 1;
    if (err?.code === 'EADDRINUSE' && attemptsLeft > 0) {
        tryListen();
        return;
    }
    process.stderr.write(`everything_http: ${err?.message ?? err}\n`);
    process.exit(1);
});
httpServer.on('listening', () => {
    process.stdout.write(`listening ${httpServer.address().port}\n`);
});
tryListen();
