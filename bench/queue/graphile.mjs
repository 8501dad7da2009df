// graphile-worker reference for the queue ceiling benchmark (issue #8): no-op jobs per second,
// in graphile-worker's own schema (graphile_worker) of the same database as feedwatch's bench.
//
//   node graphile.mjs --url URL [--jobs N] [--mode fast|default] [--instances P]
//
// --mode fast: the configuration of graphile-worker's performance page
//   (https://worker.graphile.org/docs/performance, "Quick stats"): concurrentJobs 24,
//   maxPoolSize 25, localQueue { size: 500 }, completeJobBatchDelay 0, failJobBatchDelay 0;
//   the page's best figure runs 4 such instances (--instances 4).
// --mode default: graphile-worker's defaults (concurrentJobs 1, pollInterval 2000, no batching).
//
// The N jobs are added with one graphile_worker.add_jobs call, then P worker processes are
// started and timed until every handler ran and the job table is empty (graphile-worker deletes
// a job when it completes). Prints one JSON line.
import { fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { Logger, run, runMigrations } from "graphile-worker";

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .reduce((pairs, arg, i, all) => (arg.startsWith("--") ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const url = args.url ?? process.env.DATABASE_URL;
const jobs = Number(args.jobs ?? 100000);
const mode = args.mode ?? "fast";
const instances = Number(args.instances ?? 1);
const timeoutMs = Number(args["timeout-s"] ?? 120) * 1000;

function workerOptions() {
  const base = { connectionString: url, noHandleSignals: true };
  if (mode === "default") return { ...base };
  return {
    ...base,
    concurrency: 24,
    maxPoolSize: 25,
    preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  };
}

// A worker process: runs until told to stop, reporting how many handlers ran.
async function child() {
  let done = 0;
  let reported = 0;
  const options = workerOptions();
  options.logger = new Logger(() => (level, message) => {
    if (level === "error" || level === "warning") console.error(`[graphile] ${message}`);
  });
  const runner = await run({
    ...options,
    taskList: {
      noop: async () => {
        done += 1;
      },
    },
  });
  const timer = setInterval(() => {
    if (done !== reported) {
      reported = done;
      process.send({ done });
    }
  }, 2);
  process.on("message", async (message) => {
    if (message === "stop") {
      clearInterval(timer);
      await runner.stop();
      process.exit(0);
    }
  });
  process.send({ ready: true });
}

async function main() {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await runMigrations({ connectionString: url, logger: undefined });
  const { rows: versionRows } = await client
    .query("select max(id) as version from graphile_worker.migrations")
    .catch(() => ({ rows: [] }));
  await client.query("delete from graphile_worker._private_jobs");
  await client.query("delete from graphile_worker._private_job_queues").catch(() => {});
  const fillStart = Date.now();
  await client.query(
    `select graphile_worker.add_jobs(array(
       select json_populate_record(null::graphile_worker.job_spec,
                                   json_build_object('identifier', 'noop', 'payload', '{}'::json))
       from generate_series(1, $1::int)))`,
    [jobs],
  );
  await client.query("vacuum analyze graphile_worker._private_jobs");
  await client.query("checkpoint");
  const fillSeconds = (Date.now() - fillStart) / 1000;

  const counts = new Array(instances).fill(0);
  const children = [];
  const self = fileURLToPath(import.meta.url);
  await Promise.all(
    Array.from({ length: instances }, (_, i) => {
      const worker = fork(self, ["--child", "1", ...process.argv.slice(2)], { stdio: "inherit" });
      children.push(worker);
      return new Promise((resolve, reject) => {
        worker.on("message", (message) => {
          if (message.ready) resolve();
          if (message.done !== undefined) counts[i] = message.done;
        });
        worker.on("exit", (code) => code !== 0 && reject(new Error(`worker ${i} exited with ${code}`)));
      });
    }),
  );
  // Workers start polling as soon as they run; the clock starts when the last one is up, and
  // the jobs they did before that are left out of the rate.
  const started = process.hrtime.bigint();
  const deadline = Date.now() + timeoutMs;
  const total = () => counts.reduce((a, b) => a + b, 0);
  const doneBeforeClock = total();
  while (total() < jobs) {
    if (Date.now() > deadline) throw new Error(`timed out: ${total()} of ${jobs} handlers ran`);
    await new Promise((r) => setTimeout(r, 2));
  }
  const handlersDone = Number(process.hrtime.bigint() - started) / 1e9;
  for (;;) {
    const { rows } = await client.query("select exists(select 1 from graphile_worker._private_jobs) as left");
    if (!rows[0].left) break;
    if (Date.now() > deadline) throw new Error("timed out waiting for completions");
    await new Promise((r) => setTimeout(r, 1));
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  for (const worker of children) worker.send("stop");
  await Promise.all(children.map((worker) => new Promise((r) => worker.on("exit", r))));
  const { version } = JSON.parse(readFileSync(new URL("./node_modules/graphile-worker/package.json", import.meta.url)));
  await client.end();
  console.log(
    JSON.stringify({
      bench: "graphile_worker",
      version,
      schema_migration: versionRows[0]?.version ?? null,
      mode,
      instances,
      jobs,
      fill_seconds: Math.round(fillSeconds * 1000) / 1000,
      seconds: Math.round(seconds * 1000) / 1000,
      handlers_done_seconds: Math.round(handlersDone * 1000) / 1000,
      done_before_clock: doneBeforeClock,
      jobs_per_s: Math.round((jobs - doneBeforeClock) / seconds),
      node: process.version,
    }),
  );
}

if (args.child) {
  child().catch((error) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
