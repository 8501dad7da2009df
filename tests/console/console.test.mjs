// The helpdesk console in a real browser: Debian's Chromium, headless, through ChromeDriver.
// Runs against the live service scripts/with-feedwatch starts (FEEDWATCH_URL, FEEDWATCH_ADMIN_KEY:
// a throwaway database, the sandbox bank and its demo tenant). Every test saves a screenshot
// under target/console/; axe-core runs in every page the tests open.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Builder, By, until } from "selenium-webdriver";
import chrome from "selenium-webdriver/chrome.js";

const here = dirname(fileURLToPath(import.meta.url));
const shots = join(here, "..", "..", "target", "console");
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const BASE = process.env.FEEDWATCH_URL;
const ADMIN = process.env.FEEDWATCH_ADMIN_KEY;
const ORIGIN = new URL(BASE).origin;
const WAIT = 20_000;
const PAGE_LIMIT = 150 * 1024;

if (!BASE || !ADMIN) {
  console.error("console-test: FEEDWATCH_URL and FEEDWATCH_ADMIN_KEY are required (run under scripts/with-feedwatch)");
  process.exit(2);
}

// --- the JSON API, for setting up and for the numbers the pages must agree with ---

async function api(method, path, body, key = ADMIN) {
  const response = await fetch(BASE + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function tenantKey(tenant) {
  const created = await api("POST", "/v1/api-keys", { role: "tenant", tenant_id: tenant, label: "console test" });
  return created.secret;
}

async function institutionId(q) {
  const page = await api("GET", `/v1/institutions?q=${encodeURIComponent(q)}`);
  if (!page.items.length) throw new Error(`no institution matches ${q}`);
  return page.items[0].id;
}

// --- the browser ---

const options = new chrome.Options()
  .setChromeBinaryPath("/usr/bin/chromium")
  .addArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
    "--disable-gpu", "--no-first-run", "--disable-extensions", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--metrics-recording-only", "--no-default-browser-check");
const service = new chrome.ServiceBuilder("/usr/bin/chromedriver");
const driver = await new Builder().forBrowser("chrome").setChromeOptions(options).setChromeService(service).build();

mkdirSync(shots, { recursive: true });
let shotNumber = 0;
// The whole page, not only the window: the window grows to the page's height for the shot.
async function screenshot(name) {
  shotNumber += 1;
  const file = join(shots, `${String(shotNumber).padStart(2, "0")}-${name}.png`);
  const rect = await driver.manage().window().getRect();
  const height = await driver.executeScript("return document.documentElement.scrollHeight;");
  await driver.manage().window().setRect({ width: rect.width, height: Math.min(Math.max(height + 140, rect.height), 4000) });
  writeFileSync(file, await driver.takeScreenshot(), "base64");
  await driver.manage().window().setRect({ width: rect.width, height: rect.height });
  return file;
}

async function open(path) {
  await driver.get(BASE + path);
  await driver.wait(until.elementLocated(By.css("main")), WAIT);
}

// An element's text. A page that is being replaced (a form's redirect, a live swap) can take the
// element away between finding and reading it; then the new page's element is read instead.
// ChromeDriver reports that race in two ways: as a stale element, or (seen in CI with Chromium
// 148) as an "unknown error" from the inspector saying the node left the document.
function elementWentAway(error) {
  return error.name === "StaleElementReferenceError" ||
    /does not belong to the document|No node with given id|Cannot find context with specified id/.test(error.message);
}

/** `until.stalenessOf`, also reading ChromeDriver's "not in the document" answers as gone: while
 * a page is replaced, asking after one of its elements can get either. */
function goneFrom(element) {
  return async () => {
    try {
      await element.isEnabled();
      return false;
    } catch (error) {
      if (elementWentAway(error)) return true;
      throw error;
    }
  };
}

async function text(css) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await (await driver.wait(until.elementLocated(By.css(css)), WAIT)).getText();
    } catch (error) {
      if (!elementWentAway(error) || attempt >= 20) throw error;
    }
  }
}

async function signIn(key) {
  await open("/console/sign-in");
  await driver.findElement(By.id("key")).sendKeys(key);
  await driver.findElement(By.css("form[action='/console/sign-in'] button")).click();
}

async function signOut() {
  await driver.findElement(By.css("form.signout button")).click();
  await driver.wait(until.urlContains("/console/sign-in"), WAIT);
}

// Every page a test opens is checked: axe-core finds no serious or critical violation, and the
// page loaded nothing from another origin.
const checkedPages = new Map();
async function checkPage(label, { get = true } = {}) {
  await driver.executeScript(AXE);
  const result = await driver.executeAsyncScript(`
    const done = arguments[arguments.length - 1];
    axe.run(document, { resultTypes: ["violations"] }).then(r => done(r.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ")) }))),
      e => done([{ id: "axe-error", impact: "critical", help: String(e), nodes: [] }]));`);
  const serious = result.filter((violation) => violation.impact === "serious" || violation.impact === "critical");
  const resources = await driver.executeScript(
    "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href]);");
  const foreign = resources.filter((name) => new URL(name).origin !== ORIGIN);
  checkedPages.set(label, { serious, foreign, get, url: await driver.getCurrentUrl() });
  if (serious.length) throw new Error(`axe on ${label}: ${JSON.stringify(serious, null, 1)}`);
  if (foreign.length) throw new Error(`${label} loaded from another origin: ${foreign.join(", ")}`);
}

// --- tests ---

const results = [];
async function test(name, body) {
  const started = Date.now();
  try {
    await body();
    results.push({ name, ok: true });
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name}: ${error.stack || error}`);
    try { await screenshot(`FAILED-${name.replace(/\W+/g, "-")}`); } catch { /* the browser may be gone */ }
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

const demoTenant = "00000000-0000-4000-8000-00000000de70";
const otherTenant = "00000000-0000-4000-8000-0000000000b2";
const healthyBank = await institutionId("healthy");
const otherConnection = await api("POST", "/v1/connections", {
  tenant_id: otherTenant, institution_id: healthyBank, display_name: "Other tenant's account",
  credentials: { user_id: "user_good", password: "pass_good" },
});

await test("sign-in refused with a wrong key", async () => {
  await driver.get(BASE + "/console/connections");
  await driver.wait(until.urlContains("/console/sign-in"), WAIT);
  await signIn("fw_00000000000000000000000000000000_" + "0".repeat(64));
  const problem = await text("#signin-error");
  assert(/not valid/.test(problem), `sign-in error says: ${problem}`);
  assert((await driver.getCurrentUrl()).includes("/console/sign-in"), "still on the sign-in page");
  const cookies = await driver.manage().getCookies();
  assert(!cookies.some((cookie) => cookie.name === "fw_console"), "no session cookie after a refused key");
  await checkPage("sign-in (refused)");
  await screenshot("sign-in-refused");
});

await test("sign-in accepted with a right key, and the key is nowhere after it", async () => {
  await signIn(ADMIN);
  await driver.wait(until.elementLocated(By.css("#state-counts")), WAIT);
  const cookie = await driver.manage().getCookie("fw_console");
  assert(cookie && cookie.httpOnly, "the session cookie is HttpOnly");
  assert(cookie.sameSite === "Strict", `SameSite is ${cookie.sameSite}`);
  assert(!cookie.value.includes(ADMIN.split("_")[2]), "the cookie is not the key");
  const source = await driver.getPageSource();
  assert(!source.includes(ADMIN) && !source.includes(ADMIN.split("_")[2]), "the key is not in the page");
  assert(!(await driver.getCurrentUrl()).includes(ADMIN.split("_")[2]), "the key is not in the URL");
  await screenshot("overview");
});

await test("the overview's counts equal /v1/health/summary", async () => {
  // Refreshes run while the test reads; the page and the API must agree on one reading.
  let last = "";
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const summary = await api("GET", "/v1/health/summary");
    await open("/console");
    const shown = {};
    for (const item of await driver.findElements(By.css("#state-counts li[data-count]"))) {
      shown[await item.getAttribute("data-count")] = Number((await item.findElement(By.css(".n")).getText()).trim());
    }
    const after = await api("GET", "/v1/health/summary");
    const expected = { connections: summary.connections, stale: summary.stale.connections, ...summary.by_state };
    const stable = JSON.stringify(summary.by_state) === JSON.stringify(after.by_state);
    last = `page ${JSON.stringify(shown)} api ${JSON.stringify(expected)}`;
    if (stable && Object.entries(expected).every(([name, count]) => shown[name] === count)) {
      await checkPage("overview");
      await screenshot("overview-counts");
      return;
    }
    await driver.sleep(500);
  }
  throw new Error(`counts never matched: ${last}`);
});

await test("a connection that needs the user shows the right message and diagnosis", async () => {
  const waiting = await api("GET", `/v1/connections?tenant_id=${demoTenant}&error_code=103`);
  let connection = waiting.items[0];
  for (let attempt = 0; !connection || connection.state !== "needs_user_action"; attempt += 1) {
    assert(attempt < 60, "the demo's 103 connection never reached needs_user_action");
    await driver.sleep(500);
    connection = (await api("GET", `/v1/connections?tenant_id=${demoTenant}&q=Password%20changed`)).items[0];
  }
  const entry = await api("GET", "/v1/errors/103");
  await open(`/console/connections/${connection.id}`);
  const message = await text("#tell-text");
  assert(message === entry.entry.user_message.trim(), `tell the customer: ${message}`);
  const credentials = await driver.findElement(By.css("#diagnosis li[data-check='credentials']"));
  assert((await credentials.getAttribute("data-verdict")) === "fail", "the credentials check fails");
  const answer = await text("#diagnosis-answer");
  assert(/^sign-in details:/i.test(answer), `diagnosis answer: ${answer}`);
  const code = await driver.findElement(By.css("#error a.code"));
  assert((await code.getAttribute("href")).endsWith("/console/errors/103"), "the code links to its entry");
  assert((await text(".badge.state-needs_user_action")) === "needs user action", "state badge");
  await checkPage("connection (needs user action)");
  await screenshot("connection-needs-user");
  await driver.manage().window().setRect({ width: 390, height: 844 });
  await screenshot("connection-needs-user-phone");
  await driver.manage().window().setRect({ width: 1280, height: 1000 });
});

await test("refresh now on a healthy connection ends in a new success, without a reload", async () => {
  const healthy = (await api("GET", `/v1/connections?tenant_id=${demoTenant}&state=healthy&q=Operating`)).items[0]
    || (await api("GET", `/v1/connections?tenant_id=${demoTenant}&state=healthy`)).items[0];
  assert(healthy, "the demo has a healthy connection");
  await open(`/console/connections/${healthy.id}`);
  const before = (await driver.findElements(By.css("#history tr[data-state='succeeded']"))).length;
  await driver.findElement(By.id("refresh-now")).click();
  await driver.wait(until.elementLocated(By.css("#progress")), WAIT);
  // A reload would lose this mark; the page must show the outcome with it still there.
  await driver.executeScript("window.__sameDocument = true;");
  await driver.wait(until.elementLocated(By.css("#progress.done")), 60_000);
  await driver.wait(async () =>
    (await driver.findElements(By.css("#history tr[data-state='succeeded']"))).length > before, WAIT);
  assert(await driver.executeScript("return window.__sameDocument === true;"), "the page was not reloaded");
  assert(/finished/.test(await text("#progress")), "the progress says it finished");
  assert(!(await driver.getCurrentUrl()).includes("refresh="), "the address no longer follows the refresh");
  assert(/\(feed\)/.test(await text("#coverage")), "the days the feed covered are listed");
  await checkPage("connection (after refresh)");
  await screenshot("refresh-now-succeeded");
});

await test("declare and resolve an incident", async () => {
  await open("/console/incidents");
  await checkPage("incidents");
  const bank = await institutionId("maintenance");
  await driver.findElement(By.css(`select[name='institution_id'] option[value='${bank}']`)).click();
  await driver.findElement(By.css("input[name='title']")).sendKeys("Scheduled maintenance tonight");
  await driver.findElement(By.css("textarea[name='message']")).sendKeys("The bank expects to be back by 06:00 UTC.");
  await screenshot("incident-declare-form");
  await driver.findElement(By.id("declare-submit")).click();
  await driver.wait(until.elementLocated(By.css("#incident-state")), WAIT);
  assert((await text("#incident-state")) === "open", "declared open");
  const declared = await api("GET", `/v1/incidents?state=open&institution_id=${bank}`);
  assert(declared.items.length === 1 && declared.items[0].title === "Scheduled maintenance tonight", "the API sees it");
  await checkPage("incident (open)");
  await screenshot("incident-open");
  // Resolving posts a form and redirects: wait for the open page to go before reading the new one.
  const openState = await driver.findElement(By.id("incident-state"));
  await driver.findElement(By.id("resolve-submit")).click();
  await driver.wait(goneFrom(openState), WAIT);
  await driver.wait(async () => (await text("#incident-state")) === "resolved", WAIT);
  const resolved = await api("GET", `/v1/incidents/${declared.items[0].id}`);
  assert(resolved.state === "resolved", "the API sees it resolved");
  await checkPage("incident (resolved)");
  await screenshot("incident-resolved");
});

await test("the error search finds 103 for “password changed”, as you type", async () => {
  await open("/console/errors");
  await checkPage("error reference");
  const box = await driver.findElement(By.id("error-search"));
  await box.sendKeys("password changed");
  // No submit: the list follows the typing.
  // The address follows the list in the same tick as the swap: once it carries the whole query,
  // no slower answer for a shorter prefix can replace the list under the assertions below.
  await driver.wait(async () => (await driver.getCurrentUrl()).includes("q=password+changed"), WAIT);
  await driver.wait(until.elementLocated(By.css("#hit-list li[data-code='103']")), WAIT);
  const first = await driver.findElement(By.css("#hit-list li")).getAttribute("data-code");
  assert(first === "103", `first hit is ${first}`);
  await screenshot("error-search");
  await driver.findElement(By.css("#hit-list li[data-code='103'] a.code")).click();
  await driver.wait(until.elementLocated(By.css("#alias-table")), WAIT);
  assert((await driver.findElements(By.css("#alias-table tbody tr"))).length > 0, "aliases listed");
  await checkPage("error entry 103");
  await screenshot("error-entry-103");
});

await test("an entry no provider code maps to (610, duplicate transactions) reads whole", async () => {
  await open("/console/errors/610");
  const page = await text("main");
  assert(page.includes("Duplicate transactions"), "the title is shown");
  assert(page.includes("No provider's code maps to this entry yet."), "the empty alias list says so");
  assert((await driver.findElements(By.css("#alias-table"))).length === 0, "no empty alias table");
  // Its agent notes are written as paragraphs (blank lines in the text): one <p> each, in order.
  const entry = await api("GET", "/v1/errors/610");
  const paragraphs = entry.entry.agent_notes.split(/\n\s*\n/).map((p) => p.replace(/\s+/g, " ").trim()).filter(Boolean);
  assert(paragraphs.length > 1, "610's notes are several paragraphs");
  const shown = await driver.findElements(By.css("#agent-notes p"));
  assert(shown.length === paragraphs.length, `${shown.length} paragraphs shown, ${paragraphs.length} written`);
  for (const [n, p] of shown.entries()) {
    assert((await p.getText()) === paragraphs[n], `paragraph ${n + 1} reads as written`);
  }
  await checkPage("error entry 610");
  await screenshot("error-entry-610");
});

await test("an entry that is not an error (612, bank not offered) reads as the API has it", async () => {
  await open("/console/errors/612");
  const entry = (await api("GET", "/v1/errors/612")).entry;
  assert((await text("h1")).includes(entry.title), "the title is shown");
  const facts = await text("dl.facts");
  assert(facts.includes("coverage"), `the category is shown: ${facts}`);
  assert(facts.includes("upload file"), `the action is shown: ${facts}`);
  // The steps send the agent to the evidence list: it must be on the page, item for item.
  const evidence = await driver.findElements(By.css("[aria-labelledby='evidence'] li"));
  const shown = await Promise.all(evidence.map((li) => li.getText()));
  assert(shown.length === entry.escalation_evidence.length, `${shown.length} evidence items shown`);
  entry.escalation_evidence.forEach((item, n) => assert(shown[n] === item, `evidence ${n + 1} reads as written`));
  for (const code of entry.related) {
    assert((await driver.findElements(By.css(`[aria-labelledby='related'] a[href$='/console/errors/${code}']`))).length > 0, `${code} is linked`);
  }
  const sources = await driver.findElements(By.css("[aria-labelledby='sources'] a.url"));
  assert(sources.length === entry.sources.length, `${sources.length} of ${entry.sources.length} sources linked`);
  await checkPage("error entry 612");
  await screenshot("error-entry-612");
});

await test("a refused statement file's problem code, pasted into the search, opens its entry (620)", async () => {
  await open("/console/errors");
  const box = await driver.findElement(By.id("error-search"));
  await box.sendKeys("statement_unreadable");
  await driver.wait(async () => (await driver.getCurrentUrl()).includes("q=statement_unreadable"), WAIT);
  await driver.wait(until.elementLocated(By.css("#hit-list li[data-code='620']")), WAIT);
  const first = await driver.findElement(By.css("#hit-list li")).getAttribute("data-code");
  assert(first === "620", `first hit is ${first}`);
  await driver.findElement(By.css("#hit-list li[data-code='620'] a.code")).click();
  await driver.wait(until.elementLocated(By.css("dl.facts")), WAIT);
  const entry = (await api("GET", "/v1/errors/620")).entry;
  assert((await text("h1")).includes(entry.title), "the title is shown");
  const facts = await text("dl.facts");
  assert(facts.includes("statement"), `the category is shown: ${facts}`);
  assert(facts.includes("upload file"), `the action is shown: ${facts}`);
  const steps = await driver.findElements(By.css("[aria-labelledby='steps'] li"));
  assert(steps.length === entry.steps.length, `${steps.length} of ${entry.steps.length} steps shown`);
  await checkPage("error entry 620");
  await screenshot("error-entry-620");
});

await test("a form posted without its CSRF token is refused", async () => {
  const any = (await api("GET", `/v1/connections?tenant_id=${demoTenant}&q=Payroll`)).items[0];
  await open(`/console/connections/${any.id}`);
  const before = (await api("GET", `/v1/connections/${any.id}/refreshes`)).items.length;
  await driver.executeScript(
    "document.querySelector('#actions form input[name=csrf]').remove();");
  // The connection's own page may show an error notice too (a demo connection in trouble), so
  // wait for that page to go before reading the answer's.
  const page = await driver.findElement(By.css("body"));
  await driver.findElement(By.id("refresh-now")).click();
  await driver.wait(goneFrom(page), WAIT);
  await driver.wait(until.elementLocated(By.css("p.notice.error")), WAIT);
  assert((await text("h1")) === "Not allowed", "refused page");
  assert(/did not come from your console session/.test(await text("p.notice.error")), "says why");
  const after = (await api("GET", `/v1/connections/${any.id}/refreshes`)).items.length;
  assert(after === before, "nothing was enqueued");
  // The refused page answered a POST; its address is not a page to fetch again.
  await checkPage("refused form", { get: false });
  await screenshot("csrf-refused");
});

await test("the other pages pass axe and load nothing from outside", async () => {
  await open("/console/connections");
  await checkPage("connections");
  await screenshot("connections");
  await open("/console/connections?state=needs_user_action");
  await checkPage("connections (filtered)");
  await open("/console/institutions");
  await checkPage("institutions");
  await screenshot("institutions");
  await open(`/console/institutions/${healthyBank}`);
  await checkPage("institution");
  await screenshot("institution");
  await open("/console/no-such-page");
  await checkPage("not found");
});

await test("every page weighs under 150 KB with its assets, and carries the security headers", async () => {
  const session = (await driver.manage().getCookie("fw_console")).value;
  const assets = ["/console/assets/console.js", "/console/assets/console.css"];
  let assetBytes = 0;
  for (const path of assets) {
    assetBytes += (await (await fetch(BASE + path, { headers: { Cookie: `fw_console=${session}` } })).arrayBuffer()).byteLength;
  }
  for (const [label, page] of checkedPages) {
    if (!page.get) continue;
    const response = await fetch(page.url, { headers: { Cookie: `fw_console=${session}` }, redirect: "manual" });
    const bytes = (await response.arrayBuffer()).byteLength + assetBytes;
    assert(bytes < PAGE_LIMIT, `${label}: ${bytes} bytes`);
    const csp = response.headers.get("content-security-policy") || "";
    assert(csp.includes("default-src 'none'") && csp.includes("script-src 'self'") && !csp.includes("unsafe-inline"),
      `${label}: CSP ${csp}`);
    assert(response.headers.get("x-frame-options") === "DENY", `${label}: X-Frame-Options`);
    assert(response.headers.get("referrer-policy"), `${label}: Referrer-Policy`);
  }
});

await test("a tenant session cannot open another tenant's connection", async () => {
  await open("/console");
  await signOut();
  const key = await tenantKey(demoTenant);
  await signIn(key);
  await driver.wait(until.elementLocated(By.css("#state-counts")), WAIT);
  await checkPage("overview (tenant)");
  await open(`/console/connections/${otherConnection.id}`);
  assert((await text("h1")) === "Not found", "another tenant's connection is a 404 page");
  await checkPage("not found (tenant)");
  await screenshot("tenant-404");
  await open("/console/connections");
  const source = await driver.getPageSource();
  assert(!source.includes(otherConnection.id), "the list does not show it");
  await screenshot("tenant-connections");
});

await driver.quit();
const failed = results.filter((result) => !result.ok);
console.log(`console-test: ${results.length - failed.length} passed, ${failed.length} failed; ` +
  `${checkedPages.size} pages checked with axe-core; screenshots in target/console/`);
process.exit(failed.length ? 1 : 0);
