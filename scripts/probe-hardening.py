#!/usr/bin/env python3
"""Re-measures issue 12's probe figures against a real `arbiter serve` (bounded, 127.0.0.1).

Usage: scripts/probe-hardening.py [--idle-seconds 60] [--fillers 20000]
Needs `scripts/build-plugins.sh` to have run (the plugins and target/debug/arbiter).

1. Idle watcher: with the example plugins and settings copied into a scratch directory
   and a relative decision log (`sink = "decisions.log"`, written beside the config), one
   read of a settings file and one decision, then the generation is polled for
   --idle-seconds. Expected: it stays 1 and no reload is attempted.
2. Positional arrays: every object of a valid action written as a positional array, alone
   and in pairs, sent to /v1/decide. Expected: 0 decisions (every answer a 4xx).
3. Taint after filler tasks: the example exfiltration chain's first call (a restricted
   read), --fillers decisions in other tasks, then the chain's second call. Expected: deny.
"""

import argparse
import http.client
import itertools
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOKEN = "probe-admin-token-0123456789"


def request(conn, method, path, body=None, admin=False):
    headers = {"content-type": "application/json"}
    if admin:
        headers["authorization"] = f"Bearer {TOKEN}"
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, json.loads(data) if data else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle-seconds", type=int, default=60)
    parser.add_argument("--fillers", type=int, default=20000)
    parser.add_argument("--port", type=int, default=18481)
    args = parser.parse_args()

    scratch = pathlib.Path(tempfile.mkdtemp(prefix="arbiter-probe-"))
    for plugin in ["intent", "scope", "sensitivity"]:
        shutil.copy(ROOT / f"plugins/{plugin}/example-settings.json", scratch / f"{plugin}.json")
    example = (ROOT / "examples/arbiter.toml").read_text()
    config = (
        example.replace('"../build/', f'"{ROOT}/build/')
        .replace('settings_file = "../plugins/intent/example-settings.json"', 'settings_file = "intent.json"')
        .replace('settings_file = "../plugins/scope/example-settings.json"', 'settings_file = "scope.json"')
        .replace('settings_file = "../plugins/sensitivity/example-settings.json"', 'settings_file = "sensitivity.json"')
    )
    config += '\n[server.decision_log]\nsink = "decisions.log"\n'
    (scratch / "arbiter.toml").write_text(config)
    env = dict(os.environ, ARBITER_ADMIN_TOKEN=TOKEN)
    server = subprocess.Popen(
        [str(ROOT / "target/debug/arbiter"), "serve", "--config", str(scratch / "arbiter.toml"),
         "--listen", f"127.0.0.1:{args.port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(scratch / "server.log", "w"),
    )
    try:
        deadline = time.time() + 120
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
                status, _ = request(conn, "GET", "/readyz")
                if status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit("server did not become ready")
            time.sleep(0.2)

        chain = json.loads((ROOT / "examples/actions/exfiltration-chain.json").read_text())
        allowed = json.loads((ROOT / "examples/actions/allowed-read.json").read_text())

        # 1. Idle watcher.
        (scratch / "scope.json").read_bytes()
        status, decision = request(conn, "POST", "/v1/decide", allowed)
        assert status == 200, decision
        generations = []
        started = time.time()
        while time.time() - started < args.idle_seconds:
            time.sleep(min(5, args.idle_seconds))
            _, reload = request(conn, "GET", "/v1/reload", admin=True)
            generations.append(reload["generation"])
        attempts = len(reload.get("recent", []))
        print(f"idle: generations polled over {args.idle_seconds} s after a read and a logged decision: "
              f"{sorted(set(generations))}, reload attempts: {attempts}")

        # 2. Positional arrays.
        objects = ["agent", "tool", "task", "credential", "resource"]
        bodies = []
        for n in (1, 2):
            for fields in itertools.combinations(objects, n):
                body = json.loads(json.dumps(chain[0]))
                for f in fields:
                    body[f] = list(body[f].values())
                bodies.append(body)
        body = json.loads(json.dumps(chain[0]))
        body["delegation"] = [list(p.values()) for p in body["delegation"]]
        bodies.append(body)
        bodies.append(list(chain[0].values()))
        decided = 0
        for i, body in enumerate(bodies):
            if isinstance(body, dict):
                body["request_id"] = f"positional-{i}"
            status, answer = request(conn, "POST", "/v1/decide", body)
            if status == 200:
                decided += 1
        print(f"positional arrays: {decided} decisions for {len(bodies)} positional-array requests")

        # 3. Taint after filler tasks.
        status, first = request(conn, "POST", "/v1/decide", chain[0])
        assert status == 200, first
        filler = json.loads(json.dumps(allowed))
        started = time.time()
        for i in range(args.fillers):
            filler["request_id"] = f"filler-{i}"
            filler["task"]["id"] = f"filler-task-{i}"
            status, answer = request(conn, "POST", "/v1/decide", filler)
            assert status == 200, answer
        status, second = request(conn, "POST", "/v1/decide", chain[1])
        print(f"taint: read {first['effect']}, {args.fillers} filler tasks in {time.time() - started:.0f} s, "
              f"then exfiltration {second['effect']}: {second['reason'][:160]}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
