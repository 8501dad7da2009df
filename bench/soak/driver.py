#!/usr/bin/env python3
"""Load, faults and bookkeeping of the soak benchmark (bench/soak/run.sh starts everything else).

Against a running `feedwatch serve` (demo mode, the sandbox bank on its own listener) whose
PostgreSQL cluster the caller owns, this:
  1. creates tenant and helpdesk keys and a few hundred connections to the sandbox banks, in a
     mix of healthy, flaky, slow, maintenance and failing ones (the password picks the fault);
  2. drives mixed API traffic at a paced rate for the soak's length, recording every request's
     start, kind, status and latency;
  3. meanwhile restarts PostgreSQL every so often (`pg_ctl restart -m fast`), recording each
     window from the restart's start to /readyz answering 200 again, plus a grace;
  4. moves a slice of the connections' schedules to "due" every few seconds, so the scheduler
     keeps refreshing (the shortest interval the API and the schema allow is 1 h);
  5. samples feedwatch's resident memory (and threads, descriptors) every minute;
  6. lets the queue drain, then reads the `job` table: counts by state, jobs stuck, and every
     refresh the API acknowledged (202) looked up by id;
and writes one JSON document (printed as a table by --table).

Standard library only. Latencies are the client's (a Python thread per in-flight request, so
they include the driver's own scheduling under load); pacing skips slots it missed rather than
bunching them, so during a stall the load falls rather than queueing (closed loop per thread).
"""

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

# (sandbox slug, password, weight): what a connection's refreshes meet. The magic passwords
# are in src/sandbox/magic.rs: error_<code> makes the bank fail as code <code> would.
MIX = [
    ("healthy", "pass_good", 44),
    ("flaky", "pass_good", 15),
    ("slow", "pass_good", 8),
    ("maintenance", "pass_good", 7),
    ("rejecting", "pass_good", 5),
    ("healthy", "error_103", 3),   # password changed: needs the user
    ("healthy", "error_185", 2),   # MFA prompt: needs the user
    ("healthy", "error_324", 2),   # a renamed account's statement fails, the others succeed
    ("healthy", "error_709", 2),   # an account refused by the bank
    ("healthy", "error_102", 3),   # the bank's outage (HTTP 503): retried
    ("healthy", "error_706", 2),   # rate limited with Retry-After: snoozed
    ("healthy", "error_707", 2),   # unavailable with Retry-After: snoozed
    ("healthy", "error_713", 2),   # a garbled reply
    ("healthy", "error_714", 1),   # no accounts
    ("healthy", "error_721", 1),   # empty statements
    ("healthy", "error_712", 1),   # the bank stalls until the client's bank timeout
]

# (kind, weight): reads first, then writes. `patch` also reads the connection for its ETag
# (recorded as `detail`).
KINDS = [
    ("list", 18),
    ("detail", 22),
    ("summary", 10),
    ("error_lookup", 14),
    ("error_search", 10),
    ("refresh_status", 6),
    ("refresh", 10),
    ("patch", 6),
    ("create", 4),
]
# Recorded but not drawn: the fixed-fleet mode's purge that follows each create.
RECORDED_KINDS = [k for k, _ in KINDS] + ["purge"]

ERROR_CODES = ["102", "103", "108", "185", "187", "324", "701", "706", "707", "709", "712", "713",
               "714", "715", "720", "721", "799", "15500", "plaid:ITEM_LOGIN_REQUIRED", "402"]
SEARCHES = ["password changed", "verification code", "bank down", "maintenance", "account locked",
            "too many requests", "renamed account", "timeout", "mfa", "no accounts", "consent expired"]
LIST_FILTERS = ["", "&state=healthy", "&state=needs_user_action", "&state=bank_issue", "&stale_for=48h",
                "&q=account"]


def now():
    return time.time()


class Api:
    """One keep-alive HTTP connection to feedwatch, reopened after an error."""

    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def request(self, method, path, key=None, body=None, headers=None):
        """Returns (status, headers dict, body bytes); status 0 for a socket error or timeout."""
        hdrs = dict(headers or {})
        if key:
            hdrs["Authorization"] = f"Bearer {key}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                response = self.conn.getresponse()
                payload = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as error:
                # The server closed an idle keep-alive socket as the request went out: once more
                # on a new socket (the request never reached a handler).
                self.close()
                if attempt == 2:
                    return 0, {"error": repr(error)}, b""
            except (OSError, http.client.HTTPException) as error:
                self.close()
                return 0, {"error": repr(error)}, b""
        return 0, {}, b""

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def must(result, expected, what):
    status, _, payload = result
    if status not in expected:
        sys.exit(f"[soak] {what}: HTTP {status}: {payload[:300]!r}")
    return json.loads(payload) if payload else None


class Psql:
    def __init__(self, psql, url):
        self.cmd = [psql, "-qAtX", "-v", "ON_ERROR_STOP=1", "-F", "\t", url]

    def rows(self, sql, retries=30):
        """Rows of a query, retried while PostgreSQL is restarting."""
        for _ in range(retries):
            done = subprocess.run(self.cmd, input=sql, capture_output=True, text=True)
            if done.returncode == 0:
                return [line.split("\t") for line in done.stdout.splitlines() if line]
            time.sleep(1)
        raise RuntimeError(f"psql failed: {done.stderr.strip()}")


class Soak:
    def __init__(self, args):
        self.args = args
        parsed = urllib.parse.urlsplit(args.base)
        self.host, self.port = parsed.hostname, parsed.port
        self.psql = Psql(args.psql, args.db_url)
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.records = []         # (start, end, kind, status, latency_ms, problem code or "")
        self.connections = []     # {"id", "key", "etag"}
        self.refresh_ids = {}     # job the API acknowledged with 202 -> its connection
        self.purged = set()       # connections purged by the fixed-fleet mode
        self.created_in_load = [] # the fixed-fleet mode's next victims, oldest first
        self.windows = []         # {"start", "ready", "end", "restart_seconds", "readyz_after_s", "ok"}
        self.rss = []             # {"t", "rss_kb", "hwm_kb", "threads", "fds"}
        self.aging = {"rounds": 0, "made_due": 0, "failed_rounds": 0}
        self.stop = threading.Event()
        self.t0 = None

    # --- set-up -------------------------------------------------------------------------
    def setup(self):
        api = Api(self.host, self.port, 30)
        admin = self.args.admin_key
        banks = must(api.request("GET", "/v1/institutions?q=sandbox&limit=100", admin), {200}, "institutions")
        self.banks = {i["slug"].removeprefix("sandbox-"): i["id"] for i in banks["items"]
                      if i["slug"].startswith("sandbox-")}
        missing = {slug for slug, _, _ in MIX} - set(self.banks)
        if missing:
            sys.exit(f"[soak] sandbox institutions missing: {sorted(missing)}")
        self.tenant_keys = []
        for n in range(self.args.tenants):
            created = must(api.request("POST", "/v1/api-keys", admin,
                                       {"role": "tenant", "tenant_id": str(uuid.uuid4()), "label": f"soak tenant {n}"}),
                           {201}, "tenant key")
            self.tenant_keys.append(created["secret"])
        helpdesk = must(api.request("POST", "/v1/api-keys", admin, {"role": "helpdesk", "label": "soak helpdesk"}),
                        {201}, "helpdesk key")
        self.helpdesk_key = helpdesk["secret"]
        api.close()

        def create_some(count):
            mine = Api(self.host, self.port, 30)
            rng = random.Random(self.rng.random())
            for _ in range(count):
                status, _, payload = self.create_connection(mine, rng)
                if status != 201:
                    sys.exit(f"[soak] creating a connection: HTTP {status}: {payload[:300]!r}")
            mine.close()

        per_thread = [self.args.connections // 8 + (1 if i < self.args.connections % 8 else 0) for i in range(8)]
        threads = [threading.Thread(target=create_some, args=(n,)) for n in per_thread]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        log(f"created {len(self.connections)} connections for {self.args.tenants} tenants")

    def create_connection(self, api, rng):
        slug, password, _ = rng.choices(MIX, weights=[w for _, _, w in MIX])[0]
        key = rng.choice(self.tenant_keys)
        body = {"institution_id": self.banks[slug], "display_name": f"soak {slug} {password} {rng.randrange(10**6)}",
                "credentials": {"user_id": "user_good", "password": password}, "refresh_every": "1h"}
        status, headers, payload = api.request("POST", "/v1/connections", key, body,
                                               {"Idempotency-Key": str(uuid.uuid4())})
        if status == 201:
            view = json.loads(payload)
            with self.lock:
                self.connections.append({"id": view["id"], "key": key,
                                         "etag": headers.get("etag", f'"v{view["version"]}"')})
        return status, headers, payload

    # --- load ---------------------------------------------------------------------------
    def record(self, start, kind, result):
        status, _, payload = result
        end = now()
        code = ""
        if status >= 500:
            try:
                code = json.loads(payload).get("code", "")
            except (ValueError, AttributeError):
                code = "(not problem+json)"
        elif status == 0:
            code = result[1].get("error", "")[:80]
        self.records.append((start, end, kind, status, (end - start) * 1000.0, code))
        return result

    def one(self, api, rng, kind):
        if kind == "create":
            start = now()
            result = self.record(start, kind, self.create_connection(api, rng))
            if self.args.fixed_fleet and result[0] == 201:
                self.purge_one(api, json.loads(result[2])["id"])
            return result
        if kind == "summary":
            start = now()
            top = rng.choice(["", "?top=5"])
            return self.record(start, kind, api.request("GET", f"/v1/health/summary{top}", self.helpdesk_key))
        if kind == "error_lookup":
            code = urllib.parse.quote(rng.choice(ERROR_CODES), safe=":")
            key = rng.choice(self.tenant_keys + [self.helpdesk_key])
            start = now()
            return self.record(start, kind, api.request("GET", f"/v1/errors/{code}", key))
        if kind == "error_search":
            q = urllib.parse.quote(rng.choice(SEARCHES))
            start = now()
            return self.record(start, kind, api.request("GET", f"/v1/errors?q={q}&limit=10", rng.choice(self.tenant_keys)))
        if kind == "list":
            start = now()
            path = f"/v1/connections?limit=20{rng.choice(LIST_FILTERS)}"
            return self.record(start, kind, api.request("GET", path, rng.choice(self.tenant_keys)))
        if kind == "refresh_status":
            with self.lock:
                ids = list(self.refresh_ids)
            if ids:
                start = now()
                return self.record(start, kind, api.request("GET", f"/v1/refreshes/{rng.choice(ids)}", self.helpdesk_key))
            kind = "detail"
        with self.lock:
            connection = rng.choice(self.connections)
        path = f"/v1/connections/{connection['id']}"
        if kind == "refresh":
            start = now()
            result = self.record(start, kind, api.request("POST", f"{path}/refresh", connection["key"]))
            if result[0] == 202:
                with self.lock:
                    self.refresh_ids[int(json.loads(result[2])["refresh_id"])] = connection["id"]
            return result
        start = now()
        result = self.record(start, "detail", api.request("GET", path, connection["key"]))
        if result[0] == 200:
            connection["etag"] = result[1].get("etag", connection.get("etag"))
        if kind != "patch" or result[0] != 200:
            return result
        body = {"display_name": f"soak renamed {rng.randrange(10**6)}"}
        if rng.random() < 0.3:
            body = {"paused": rng.random() < 0.5}
        start = now()
        result = self.record(start, "patch", api.request("PATCH", path, connection["key"], body,
                                                         {"If-Match": connection["etag"]}))
        if result[0] == 200:
            connection["etag"] = result[1].get("etag", connection["etag"])
        return result

    def purge_one(self, api, keep):
        """The fixed-fleet mode: every create is paired with the purge of the connection the load
        created before it, so the fleet (and the rows behind it) keeps its set-up size while the
        create and delete paths keep running, and RSS can be compared from start to end. The
        set-up fleet is never purged: its acknowledged refreshes all stay checkable."""
        with self.lock:
            self.created_in_load.append(keep)
            if len(self.created_in_load) < 2:
                return
            victim_id = self.created_in_load.pop(0)
            self.connections = [c for c in self.connections if c["id"] != victim_id]
            self.purged.add(victim_id)
        start = now()
        self.record(start, "purge", api.request("DELETE", f"/v1/connections/{victim_id}?purge=true",
                                                self.args.admin_key))

    def worker(self, index):
        rng = random.Random(self.rng.random() + index)
        api = Api(self.host, self.port, self.args.request_timeout)
        interval = self.args.workers / self.args.rate
        next_at = now() + rng.random() * interval
        kinds, weights = [k for k, _ in KINDS], [w for _, w in KINDS]
        while not self.stop.is_set():
            delay = next_at - now()
            if delay > 0:
                self.stop.wait(delay)
                if self.stop.is_set():
                    break
            elif delay < -1.0:
                next_at = now()   # behind by more than a second: skip the missed slots
            next_at += interval
            self.one(api, rng, rng.choices(kinds, weights=weights)[0])
        api.close()

    # --- faults, schedules, memory -------------------------------------------------------
    def restarter(self):
        api = Api(self.host, self.port, 2)
        every = self.args.restart_every * 60
        k = 1
        while not self.stop.wait(max(0.0, self.t0 + k * every - now())):
            if self.t0 + k * every > self.t0 + self.args.minutes * 60 - 30:
                break   # no restart in the last half minute: its recovery would not be seen under load
            start = now()
            done = subprocess.run(self.args.restart_cmd, shell=True, capture_output=True, text=True)
            restarted = now()
            ready = None
            while now() - start < 120:
                if api.request("GET", "/readyz")[0] == 200:
                    ready = now()
                    break
                time.sleep(0.1)
            window = {"start": start - self.t0, "restart_seconds": restarted - start,
                      "ready": None if ready is None else ready - self.t0,
                      "readyz_after_s": None if ready is None else ready - start,
                      "end": (ready if ready is not None else now()) - self.t0 + self.args.window_grace,
                      "pg_ctl_rc": done.returncode}
            self.windows.append(window)
            log(f"PostgreSQL restart {k}: pg_ctl {restarted - start:.1f} s (rc {done.returncode}), "
                f"/readyz 200 after {window['readyz_after_s'] if ready else 'never'} s")
            k += 1
        api.close()

    def ager(self):
        # Each round makes this many connections due now: every connection comes due about every
        # `due_cycle` seconds, on top of the manual refreshes.
        per_round = max(1, round(len(self.connections) * self.args.due_every / self.args.due_cycle))
        while not self.stop.wait(self.args.due_every):
            try:
                made = self.psql.rows(
                    f"""with due as (select id from connection where not paused and next_refresh_at > now()
                                     order by random() limit {per_round})
                        update connection c set next_refresh_at = now() from due where c.id = due.id
                        returning c.id""", retries=1)
                self.aging["rounds"] += 1
                self.aging["made_due"] += len(made)
            except RuntimeError:
                self.aging["failed_rounds"] += 1   # PostgreSQL restarting: the next round catches up

    def sample_rss(self):
        status = {}
        try:
            with open(f"/proc/{self.args.server_pid}/status") as f:
                for line in f:
                    name, _, value = line.partition(":")
                    status[name] = value.strip()
            fds = len(os.listdir(f"/proc/{self.args.server_pid}/fd"))
        except OSError:
            return
        self.rss.append({"t": now() - self.t0, "connections": len(self.connections),
                         "rss_kb": int(status["VmRSS"].split()[0]),
                         "hwm_kb": int(status["VmHWM"].split()[0]), "threads": int(status["Threads"]), "fds": fds})

    def sampler(self):
        self.sample_rss()
        while not self.stop.wait(self.args.sample_seconds):
            self.sample_rss()

    # --- the run --------------------------------------------------------------------------
    def run(self):
        self.setup()
        self.t0 = now()
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.t0))
        self.load_before = open("/proc/loadavg").read().split()[:3]
        background = [threading.Thread(target=f, daemon=True) for f in (self.restarter, self.ager, self.sampler)]
        workers = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(self.args.workers)]
        for t in background + workers:
            t.start()
        log(f"load: {self.args.rate} req/s from {self.args.workers} threads for {self.args.minutes} min; "
            f"PostgreSQL restart every {self.args.restart_every} min")
        deadline = self.t0 + self.args.minutes * 60
        while now() < deadline:
            time.sleep(min(30, max(0.1, deadline - now())))
            done = len(self.records)
            fives = sum(1 for r in self.records if r[3] >= 500)
            log(f"{(now() - self.t0) / 60:.1f} min: {done} requests, {fives} 5xx, "
                f"RSS {self.rss[-1]['rss_kb'] // 1024 if self.rss else '?'} MB")
        self.stop.set()
        for t in workers + background:
            t.join(timeout=150)
        self.load_end = now() - self.t0
        self.load_after = open("/proc/loadavg").read().split()[:3]
        self.sample_rss()
        self.rss[-1]["after_load"] = True
        self.drain = self.drain_queue()
        self.sample_rss()
        self.rss[-1]["after_drain"] = True
        return self.report()

    def drain_queue(self):
        """Waits until nothing runs and nothing is due (retries and snoozes may wait longer)."""
        start = now()
        quiet = 0
        last = None
        while now() - start < self.args.drain_seconds:
            (running, due), = self.psql.rows(
                "select count(*) filter (where state = 'running'), "
                "count(*) filter (where state = 'available' and run_at <= now()) from job")
            last = {"running": int(running), "due": int(due)}
            quiet = quiet + 1 if last == {"running": 0, "due": 0} else 0
            if quiet >= 3:
                break
            time.sleep(1)
        return {"seconds": round(now() - start, 1), "drained": quiet >= 3, "last": last}

    # --- the report -----------------------------------------------------------------------
    def jobs(self):
        by_state = {s: int(n) for s, n in self.psql.rows("select state, count(*) from job group by state order by 1")}
        by_trigger = [{"trigger": t, "state": s, "count": int(n)} for t, s, n in self.psql.rows(
            "select trigger, state, count(*) from job group by 1, 2 order by 1, 2")]
        stuck = [{"job_id": int(i), "state": s, "why": w} for i, s, w in self.psql.rows(
            """select job_id, state, case when state = 'running' then 'lease expired ' || (now() - lease_expires_at)
                                          else 'due since ' || (now() - run_at) end
               from job where (state = 'running' and lease_expires_at < now())
                           or (state = 'available' and run_at < now() - interval '60 seconds')
               order by job_id limit 50""")]
        waiting = [{"count": int(n), "last_error": e, "next_run_within_s": float(s)} for n, e, s in self.psql.rows(
            """select count(*), coalesce(left(errors -> -1 ->> 'error', 90), '(no error recorded: snoozed, or its first run)'),
                      round(extract(epoch from max(run_at) - now())::numeric, 0)
               from job where state = 'available' and run_at >= now() - interval '60 seconds'
               group by 2 order by 1 desc limit 10""")]
        failed = [{"count": int(n), "last_error": e} for n, e in self.psql.rows(
            """select count(*), left(errors -> -1 ->> 'error', 90) from job where state = 'failed'
               group by 2 order by 1 desc limit 10""")]
        (rescued,), = self.psql.rows(
            """select count(*) from job
               where exists (select 1 from jsonb_array_elements(errors) e where e ->> 'error' like 'lease expired%')""")
        # Where the unfinished jobs wait: a bulkhead (a few refreshes per institution at once)
        # behind a slow or stalling bank shows here as due jobs of one institution.
        pending = [{"institution": slug, "state": state, "count": int(n), "due": int(due)}
                   for slug, state, n, due in self.psql.rows(
            """select i.slug, j.state, count(*), count(*) filter (where j.run_at <= now())
               from job j join connection c on c.id = j.connection_id join institution i on i.id = c.institution_id
               where j.state in ('available', 'running') group by 1, 2 order by 1, 2""")]
        # A purged connection takes its jobs with it: its acknowledged refreshes are not lost.
        ids = sorted(job for job, connection in self.refresh_ids.items() if connection not in self.purged)
        purged_acknowledged = len(self.refresh_ids) - len(ids)
        missing = []
        acknowledged_states = {}
        if ids:
            rows = self.psql.rows(
                f"""select a.id, j.state from unnest('{{{','.join(map(str, ids))}}}'::bigint[]) a(id)
                    left join job j on j.job_id = a.id""")
            for job_id, state in rows:
                if state == "":
                    missing.append(int(job_id))
                else:
                    acknowledged_states[state] = acknowledged_states.get(state, 0) + 1
        return {"by_state": by_state, "by_trigger": by_trigger, "stuck": stuck, "waiting": waiting,
                "failed_by_error": failed, "pending_by_institution": pending, "ever_rescued_after_lease_expiry": int(rescued),
                "acknowledged": {"count": len(ids), "by_state": acknowledged_states, "missing": missing,
                                 "of_purged_connections": purged_acknowledged},
                "lost": len(missing) + len(stuck)}

    def report(self):
        def inside(record):
            return any(record[0] < self.t0 + w["end"] and record[1] > self.t0 + w["start"] for w in self.windows)

        def summary(records):
            latencies = sorted(r[4] for r in records)
            statuses = {}
            for r in records:
                statuses[str(r[3])] = statuses.get(str(r[3]), 0) + 1

            def pct(p):
                if not latencies:
                    return None
                return round(latencies[min(len(latencies) - 1, max(0, int(round(p / 100 * len(latencies))) - 1))], 2)
            return {"requests": len(records), "p50_ms": pct(50), "p99_ms": pct(99),
                    "max_ms": round(latencies[-1], 2) if latencies else None,
                    "statuses": dict(sorted(statuses.items())),
                    "5xx": sum(1 for r in records if r[3] >= 500), "socket_errors": sum(1 for r in records if r[3] == 0)}

        outside = [r for r in self.records if not inside(r)]
        inside_records = [r for r in self.records if inside(r)]
        kinds = sorted({r[2] for r in self.records}, key=RECORDED_KINDS.index)
        bad_outside = [{"t": round(r[0] - self.t0, 2), "kind": r[2], "status": r[3], "latency_ms": round(r[4], 1),
                        "code": r[5]} for r in outside if r[3] >= 500 or r[3] == 0]
        inside_codes = {}
        for r in inside_records:
            if r[3] >= 500 or r[3] == 0:
                key = f"{r[3]} {r[5]}".strip()
                inside_codes[key] = inside_codes.get(key, 0) + 1
        load_seconds = self.load_end
        return {
            "date": self.started_at,
            "minutes": self.args.minutes, "restart_every_min": self.args.restart_every,
            "rate_target": self.args.rate, "workers": self.args.workers,
            "rate_achieved": round(len(self.records) / load_seconds, 1),
            "connections": {"created_at_setup": self.args.connections, "at_end": len(self.connections),
                            "tenants": self.args.tenants},
            "load_before": self.load_before, "load_after": self.load_after,
            "overall": summary(self.records),
            "outside_windows": summary(outside),
            "inside_windows": summary(inside_records) | {"failures_by_code": inside_codes},
            "by_kind": {k: summary([r for r in self.records if r[2] == k]) for k in kinds},
            "5xx_outside_windows": bad_outside[:200],
            "restart_windows": [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in w.items()}
                                for w in self.windows],
            "schedule_aging": self.aging,
            "rss": self.rss,
            "rss_trend": rss_trend(self.rss),
            "drain": self.drain,
            "jobs": self.jobs(),
        }


def rss_trend(samples, last_minutes=15):
    """RSS's least-squares slope during the load, from the later of minute 1 and `last_minutes`
    before its end (a warm process; the first minute is set-up's and the caches' warm-up), and
    the rise that slope makes over that span as a share of the mean RSS there: the measure of
    "flat" (bench/soak/README.md)."""
    load = [s for s in samples if not s.get("after_drain")]
    if not load:
        return None
    end = next((s["t"] for s in load if s.get("after_load")), load[-1]["t"])
    start = max(60.0, end - last_minutes * 60)
    span = [(s["t"] / 60, s["rss_kb"] / 1024) for s in load if start - 1 <= s["t"] <= end]
    if len(span) < 3:
        return None
    mean_t = sum(t for t, _ in span) / len(span)
    mean_mb = sum(mb for _, mb in span) / len(span)
    slope = sum((t - mean_t) * (mb - mean_mb) for t, mb in span) / sum((t - mean_t) ** 2 for t, _ in span)
    minutes = span[-1][0] - span[0][0]
    return {"from_min": round(span[0][0], 2), "to_min": round(span[-1][0], 2), "samples": len(span),
            "mean_mb": round(mean_mb, 2), "slope_mb_per_min": round(slope, 4),
            "fitted_rise_mb": round(slope * minutes, 2), "fitted_rise_pct": round(100 * slope * minutes / mean_mb, 2),
            "min_mb": round(min(mb for _, mb in span), 1), "max_mb": round(max(mb for _, mb in span), 1)}


def table(doc):
    out = []
    add = out.append
    add("")
    add(f"soak {doc['date']} (rev {doc.get('git_rev', '?')}, {doc.get('cpus', '?')} CPUs): {doc['minutes']} min, "
        f"{doc['rate_achieved']} req/s (target {doc['rate_target']}), PostgreSQL restarted every "
        f"{doc['restart_every_min']} min; load {' '.join(doc['load_before'])} before, {' '.join(doc['load_after'])} after")
    add(f"connections: {doc['connections']['created_at_setup']} at set-up, {doc['connections']['at_end']} at the end, "
        f"{doc['connections']['tenants']} tenants; schedules made due: {doc['schedule_aging']['made_due']} "
        f"in {doc['schedule_aging']['rounds']} rounds")
    add("")
    add(f"{'kind':<15}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'5xx':>6}{'sock':>6}  statuses")
    rows = list(doc["by_kind"].items()) + [("all", doc["overall"]), ("outside windows", doc["outside_windows"]),
                                            ("inside windows", doc["inside_windows"])]
    for name, s in rows:
        statuses = " ".join(f"{k}:{v}" for k, v in s["statuses"].items())
        add(f"{name:<15}{s['requests']:>9}{s['p50_ms'] or 0:>9.1f}{s['p99_ms'] or 0:>9.1f}{s['max_ms'] or 0:>9.1f}"
            f"{s['5xx']:>6}{s['socket_errors']:>6}  {statuses}")
    add("")
    for i, w in enumerate(doc["restart_windows"], 1):
        add(f"restart {i}: at {w['start']:.0f} s, pg_ctl {w['restart_seconds']:.1f} s (rc {w['pg_ctl_rc']}), /readyz 200 "
            f"after {w['readyz_after_s'] if w['readyz_after_s'] is not None else 'never'} s, window to {w['end']:.0f} s")
    add(f"5xx/socket errors inside windows by code: {doc['inside_windows']['failures_by_code'] or 'none'}")
    add(f"5xx/socket errors outside windows: {len(doc['5xx_outside_windows'])} (target 0)")
    for r in doc["5xx_outside_windows"][:20]:
        add(f"  t={r['t']} s {r['kind']} {r['status']} {r['code']} {r['latency_ms']} ms")
    rss = doc["rss"]
    if rss:
        add("RSS MB (connections) by minute: " + " ".join(f"{s['rss_kb'] / 1024:.0f} ({s.get('connections', '?')})" for s in rss)
            + f"; start {rss[0]['rss_kb'] / 1024:.1f}, end of load "
            + f"{next((s['rss_kb'] for s in rss if s.get('after_load')), rss[-1]['rss_kb']) / 1024:.1f}, "
            + f"after drain {rss[-1]['rss_kb'] / 1024:.1f}, peak {max(s['hwm_kb'] for s in rss) / 1024:.1f}; "
            + f"threads {rss[0]['threads']}->{rss[-1]['threads']}, fds {rss[0]['fds']}->{rss[-1]['fds']}")
    trend = doc.get("rss_trend")
    if trend:
        add(f"RSS trend, minute {trend['from_min']:.1f} to {trend['to_min']:.1f} ({trend['samples']} samples): mean "
            f"{trend['mean_mb']} MB, slope {trend['slope_mb_per_min']:+.3f} MB/min, fitted rise {trend['fitted_rise_mb']:+.2f} MB "
            f"({trend['fitted_rise_pct']:+.2f}% of the mean), range {trend['min_mb']}-{trend['max_mb']} MB")
    jobs = doc["jobs"]
    add(f"queue drain: {doc['drain']}")
    add(f"jobs by state: {jobs['by_state']}; rescued after a lost lease at some point: "
        f"{jobs['ever_rescued_after_lease_expiry']}")
    ack = jobs["acknowledged"]
    add(f"refreshes acknowledged (202): {ack['count']}, by state now {ack['by_state']}, missing {len(ack['missing'])}"
        f" (not counted: {ack['of_purged_connections']} of connections the fixed-fleet mode purged)")
    add(f"waiting (available, run_at in the future or due < 60 s): "
        + ("; ".join(f"{w['count']} x {w['last_error']} (next within {w['next_run_within_s']:.0f} s)"
                     for w in jobs["waiting"]) or "none"))
    add("failed: " + ("; ".join(f"{f['count']} x {f['last_error']}" for f in jobs["failed_by_error"]) or "none"))
    add("unfinished by institution (state count/due now): " + ", ".join(
        f"{p['institution'].removeprefix('sandbox-')} {p['state']} {p['count']}/{p['due']}"
        for p in jobs.get("pending_by_institution", [])))
    add(f"stuck (running past lease, or due > 60 s unclaimed): {len(jobs['stuck'])} {jobs['stuck'][:10]}")
    add(f"jobs lost (acknowledged but missing + stuck): {jobs['lost']} (target 0)")
    if rss:
        # The sample at 0 s is taken right after set-up, before any load: growth is judged from
        # the first sample at a minute (the warm process) to the end of the load.
        warm = next((s for s in rss if s["t"] >= 59), rss[1] if len(rss) > 2 else rss[0])
        end = next((s for s in rss if s.get("after_load")), rss[-1])
        growth = (end["rss_kb"] - warm["rss_kb"]) / 1024
        add(f"summary: 5xx outside windows {len(doc['5xx_outside_windows'])} (target 0); RSS {warm['rss_kb'] / 1024:.1f} MB "
            f"at {warm['t'] / 60:.0f} min -> {end['rss_kb'] / 1024:.1f} MB at the end of the load ({growth:+.1f} MB); "
            f"jobs lost {jobs['lost']} (target 0)")
    return "\n".join(out)


def log(message):
    print(f"[soak] {message}", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--base", required=True, help="feedwatch's URL, http://127.0.0.1:PORT")
    run.add_argument("--admin-key", required=True)
    run.add_argument("--server-pid", type=int, required=True)
    run.add_argument("--psql", required=True)
    run.add_argument("--db-url", required=True)
    run.add_argument("--restart-cmd", required=True, help="shell command that restarts PostgreSQL")
    run.add_argument("--minutes", type=float, default=20)
    run.add_argument("--restart-every", type=float, default=4)
    run.add_argument("--connections", type=int, default=300)
    run.add_argument("--tenants", type=int, default=4)
    run.add_argument("--rate", type=float, default=100)
    run.add_argument("--workers", type=int, default=16)
    run.add_argument("--request-timeout", type=float, default=35)
    run.add_argument("--window-grace", type=float, default=5)
    run.add_argument("--due-every", type=float, default=10)
    run.add_argument("--due-cycle", type=float, default=300)
    run.add_argument("--drain-seconds", type=float, default=180)
    run.add_argument("--sample-seconds", type=float, default=60, help="how often RSS is sampled")
    run.add_argument("--seed", type=int, default=18)
    run.add_argument("--fixed-fleet", action="store_true",
                     help="pair every create with the purge of another connection (fleet size constant)")
    run.add_argument("--out", required=True)
    show = sub.add_parser("table")
    show.add_argument("file")
    args = parser.parse_args()
    if args.command == "table":
        with open(args.file) as f:
            print(table(json.load(f)))
        return
    doc = Soak(args).run()
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
