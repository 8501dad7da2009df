// The README's tour as a front end would write it: every path, parameter and body is typed
// from openapi/openapi.json, so a change to the document that breaks a client breaks `tsc`,
// and a server that answers outside its document breaks this run.
//
// FEEDWATCH_URL and FEEDWATCH_ADMIN_KEY name a live service, FEEDWATCH_SANDBOX_URL its sandbox
// bank (scripts/client-test starts one).

import { randomUUID } from "node:crypto";
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "../generated/feedwatch.js";

type Problem = components["schemas"]["Problem"];
type JobState = components["schemas"]["JobState"];

const baseUrl = required("FEEDWATCH_URL");
const sandboxUrl = required("FEEDWATCH_SANDBOX_URL");
const adminKey = required("FEEDWATCH_ADMIN_KEY");
// One trace for the whole tour: the service logs it and passes it to the bank it calls.
const traceparent = `00-${randomHex(16)}-${randomHex(8)}-01`;

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function randomHex(bytes: number): string {
  return randomUUID().replaceAll("-", "").slice(0, bytes * 2).padStart(bytes * 2, "1");
}

function clientFor(key: string) {
  const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${key}` } });
  const tracing: Middleware = {
    onRequest({ request }) {
      request.headers.set("traceparent", traceparent);
      return request;
    },
  };
  client.use(tracing);
  return client;
}

/** A problem document, typed, as every error answer of the API is. */
class ProblemError extends Error {
  constructor(
    readonly step: string,
    readonly problem: Problem,
  ) {
    super(`${step}: ${problem.status} ${problem.code}: ${problem.detail}`);
  }
}

/** The data of a successful answer, or a typed ProblemError for the document's error answers. */
function ok<T>(step: string, result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data !== undefined) {
    console.log(`ok   ${step} (${result.response.status})`);
    return result.data;
  }
  if (isProblem(result.error)) throw new ProblemError(step, result.error);
  throw new Error(`${step}: HTTP ${result.response.status} without a problem document`);
}

function isProblem(value: unknown): value is Problem {
  return typeof value === "object" && value !== null && "code" in value && "status" in value && "title" in value;
}

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`check failed: ${what}`);
}

const admin = clientFor(adminKey);

// What does this error mean, and what do I do?
const entry = ok("look up 102", await admin.GET("/v1/errors/{code}", { params: { path: { code: "102" } } }));
check(entry.entry.code === 102 && entry.matched.by === "code", "102 is the entry with code 102");
const alias = ok(
  "look up plaid:ITEM_LOGIN_REQUIRED",
  await admin.GET("/v1/errors/{code}", { params: { path: { code: "plaid:ITEM_LOGIN_REQUIRED" } } }),
);
check(alias.matched.by === "alias" && alias.matched.alias?.namespace === "plaid", "an alias lookup names the alias that matched");
const hits = ok("search 'password changed'", await admin.GET("/v1/errors", { params: { query: { q: "password changed" } } }));
check(hits.items.length > 0, "a search for a changed password finds entries");
const ambiguous = await admin.GET("/v1/errors/{code}", { params: { path: { code: "402" } } });
check(ambiguous.response.status === 300, "a bare code several providers use answers 300");

// Keys: a tenant key sees one tenant only.
const tenantId = randomUUID();
const created = ok(
  "create a tenant key",
  await admin.POST("/v1/api-keys", { body: { role: "tenant", tenant_id: tenantId, label: "books app (typescript tour)" } }),
);
const tenant = clientFor(created.secret);

// An institution (this service's own sandbox bank, spoken to over real OFX) and a connection.
const institution = ok(
  "create an institution",
  await admin.POST("/v1/institutions", {
    body: {
      slug: `ts-tour-${randomHex(4)}`,
      name: "TypeScript Tour Bank",
      provider: "ofx",
      ofx: { url: `${sandboxUrl}/ofx/healthy`, org: "FEEDWATCH-SANDBOX", fid: "90001" },
    },
  }),
);
const connection = ok(
  "create a connection",
  await tenant.POST("/v1/connections", {
    params: { header: { "idempotency-key": randomUUID() } },
    body: {
      institution_id: institution.id,
      display_name: "Operating",
      credentials: { user_id: "user_good", password: "pass_good" },
    },
  }),
);
check(connection.tenant_id === tenantId, "the connection belongs to the key's tenant");

// Trigger a refresh (a plain POST, no body) and follow it to its outcome.
const accepted = ok(
  "trigger a refresh",
  await tenant.POST("/v1/connections/{id}/refresh", { params: { path: { id: connection.id } } }),
);
const outcome = await follow(accepted.refresh_id);
check(outcome === "succeeded", `the refresh succeeded (it ended ${outcome})`);

// Right after a success a tenant's refresh is refused with a typed 429; helpdesk and admin may
// force one with the optional body.
const tooSoon = await tenant.POST("/v1/connections/{id}/refresh", { params: { path: { id: connection.id } } });
check(tooSoon.error?.code === "refresh_cooldown", "a refresh right after a success answers refresh_cooldown");
const forced = ok(
  "force a refresh",
  await admin.POST("/v1/connections/{id}/refresh", { params: { path: { id: connection.id } }, body: { force: true } }),
);
check((await follow(forced.refresh_id)) === "succeeded", "the forced refresh succeeded");

// The sync feed, from the start.
const sync = ok(
  "read the sync feed",
  await tenant.GET("/v1/connections/{id}/transactions/sync", { params: { path: { id: connection.id }, query: { cursor: "0" } } }),
);
check(sync.added.length > 0, "the first sync lists the bank's transactions");

// Health at a glance, and the troubleshooting ladder.
const summary = ok("read the health summary", await tenant.GET("/v1/health/summary", {}));
check(summary.connections === 1, "the tenant's summary counts its one connection");
check(summary.by_state["healthy"] === 1, "the connection is healthy");
const diagnosis = ok(
  "diagnose the connection",
  await tenant.GET("/v1/connections/{id}/diagnosis", { params: { path: { id: connection.id } } }),
);
check(diagnosis.state === "healthy" && diagnosis.findings.length > 0, "the diagnosis reads a healthy connection");

// A problem response, handled as a typed error: another tenant's (or no) connection is a 404.
try {
  ok("read a connection that does not exist", await tenant.GET("/v1/connections/{id}", { params: { path: { id: randomUUID() } } }));
  throw new Error("a missing connection was found");
} catch (error) {
  if (!(error instanceof ProblemError)) throw error;
  check(error.problem.status === 404 && error.problem.code === "not_found", `a missing connection is not_found (${error.message})`);
  console.log(`ok   a missing connection is a typed problem: ${error.problem.code}`);
}

console.log(`typescript tour: passed (trace ${traceparent.slice(3, 35)})`);

async function follow(refreshId: number): Promise<JobState> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const refresh = ok(`follow refresh ${refreshId}`, await tenant.GET("/v1/refreshes/{id}", { params: { path: { id: refreshId } } }));
    if (refresh.state !== "available" && refresh.state !== "running") return refresh.state;
    if (Date.now() > deadline) throw new Error(`refresh ${refreshId} still ${refresh.state} after a minute`);
    // The API has no long poll; a front end would poll like this.
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
