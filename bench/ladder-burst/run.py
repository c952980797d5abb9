#!/usr/bin/env python3
"""Escalation timers at scale: 10,000 deadlines falling due at once.

Starts `tapis serve --simulated-clock`, submits N notices to a platform,
delivers all of them in one instant (the platform resumes its event stream
after the last event, which confirms every notice), then moves the clock so
that N reminders, then N first warnings, fall due together, and measures the
wall time until every one has fired (the advance call returns only when
nothing more is due). Usage:

    python3 bench/ladder-burst/run.py [--notices 10000] [--postgres URL] [--bin PATH]
"""

import argparse
import concurrent.futures as cf
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ADMIN = "bench-admin-token-0123456789abcdef"


def call(base, method, path, token, body=None, headers=None, timeout=600):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        text = r.read()
        return json.loads(text) if text else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--notices", type=int, default=10_000)
    ap.add_argument("--postgres", help="postgres://… of an empty database")
    ap.add_argument("--bin", default="target/release/tapis")
    args = ap.parse_args()

    data = tempfile.mkdtemp(prefix="tapis-burst-")
    cmd = [args.bin, "--data-dir", data, "serve", "--listen", "127.0.0.1:0",
           "--simulated-clock", "2017-03-29T09:00:00+07:00"]
    env = dict(os.environ, TAPIS_BOOTSTRAP_TOKEN=ADMIN, TAPIS_LOG="warn")
    if args.postgres:
        env["TAPIS_DATABASE_URL"] = args.postgres
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    base = None
    for line in server.stdout:
        if line.startswith("tapis listening on "):
            base = line.split()[3]
            break
    try:
        authority = call(base, "GET", "/api/v1/whoami", ADMIN)["party_id"]
        platform = call(base, "POST", "/api/v1/parties", ADMIN, {"kind": "platform", "name": "Bench"})["id"]
        officer = call(base, "POST", f"/api/v1/parties/{authority}/tokens", ADMIN, {"role": "officer", "label": "bench"})["token"]
        agent = call(base, "POST", f"/api/v1/parties/{platform}/tokens", ADMIN, {"role": "platform_agent", "label": "bench"})["token"]

        def submit(i):
            return call(base, "POST", "/api/v1/notices", officer, {
                "platform_id": platform, "category": "terrorism", "urgency": "urgent",
                "legal_basis": {"reference": "Law 11/2008 art. 40", "text": "x"},
                "explanation": "burst", "items": [{"kind": "url", "value": f"https://example.com/burst/{i}"}]})["id"]

        t = time.monotonic()
        with cf.ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(submit, range(args.notices)))
        submit_s = time.monotonic() - t
        assert len(set(ids)) == args.notices

        # the stream's last event id: resuming after it confirms every notice
        t = time.monotonic()
        req = urllib.request.Request(base + "/api/v1/stream", headers={"Authorization": f"Bearer {agent}"})
        last = 0
        with urllib.request.urlopen(req, timeout=600) as r:
            seen = 0
            while seen < args.notices:
                line = r.readline().decode()
                if line.startswith("id:"):
                    last = int(line[3:])
                    seen += 1
        req = urllib.request.Request(base + "/api/v1/stream", headers={"Authorization": f"Bearer {agent}", "Last-Event-ID": str(last)})
        urllib.request.urlopen(req, timeout=600).close()
        deliver_s = time.monotonic() - t

        results = {}
        for step, secs in (("reminder", 2 * 3600), ("warning", 2 * 3600)):
            t = time.monotonic()
            call(base, "POST", "/api/v1/admin/clock/advance", ADMIN, {"seconds": secs})
            results[step] = time.monotonic() - t

        # every notice got its reminder and warning exactly once (from the audit log)
        query = "SELECT action, COUNT(*) FROM audit_events WHERE action IN ('notice.reminder', 'notice.warning') GROUP BY action"
        if args.postgres:
            rows = subprocess.run(["psql", args.postgres, "-Atc", query], capture_output=True, text=True, check=True).stdout
            counts = dict((a, int(n)) for a, n in (line.split("|") for line in rows.split()))
        else:
            import sqlite3
            with sqlite3.connect(os.path.join(data, "tapis.db")) as db:
                counts = dict(db.execute(query).fetchall())
        reminders = counts.get("notice.reminder", 0)
        warnings = counts.get("notice.warning", 0)
        out = {
            "notices": args.notices,
            "backend": "postgres" if args.postgres else "sqlite",
            "submit_seconds": round(submit_s, 2),
            "deliver_all_seconds": round(deliver_s, 2),
            "reminders_fire_seconds": round(results["reminder"], 2),
            "warnings_fire_seconds": round(results["warning"], 2),
            "reminders_seen": reminders,
            "warnings_seen": warnings,
        }
        print(json.dumps(out, indent=2))
        if reminders != args.notices or warnings != args.notices:
            print("LOST OR DUPLICATED STEPS", file=sys.stderr)
            sys.exit(1)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
