// The browser end-to-end check: the bundled page, served from its own origin, talks gRPC-web to the
// gateway in Debian's headless Chromium (driven by playwright-core), and this script uses it as a
// user would, through its forms and buttons.
//
//   node tests/browser/run.mjs --gateway http://127.0.0.1:PORT --workspace WS --live-text TEXT
//
// Steps, each with its own timeout:
//   1. build: buf generate + type-check + esbuild (build.mjs), quietly;
//   2. serve dist/ from a static HTTP server on 127.0.0.1:<free port>; the browser reaches it as
//      --origin (default http://inbox-app.scifer.test), mapped to that port by
//      --host-resolver-rules, so the gateway's CORS allow-list can name one fixed origin;
//   3. sign up through the page's form (the page calls SignUp, then Logout, then shows a login form);
//   4. log in through the login form (Login, then ListWorkspaces): the new user is in no workspace;
//   5. print `SIGNED_IN <email>`: the caller now adds that account to --workspace (as --expect-role);
//   6. click "Refresh" until --workspace is listed, with the role --expect-role, and open it;
//   7. wait for the conversation list (at least --min-conversations entries, and --expect-contact
//      among the contact names when given) and for the watch stream to be open;
//   8. print READY_FOR_LIVE: the caller now sends a webhook whose text is --live-text;
//   9. wait for that text in the live list;
//  10. click the two permission checks: ListConversations in --forbidden-workspace must render one
//      of --expect-error, AddMember in the open workspace one of --expect-admin-error;
//  11. check the session never reached localStorage, sessionStorage or a cookie, and that every
//      gateway call but SignUp and Login carried `authorization: Bearer`;
//  12. screenshot into a fresh temp dir (printed as `SCREENSHOT <path>`) and exit 0.
// Any failure: a message on stderr naming the step, the page's state and console, a screenshot, exit 1.
//
// Options (each also from an environment variable where named): --gateway SCIFER_GATEWAY_URL,
// --workspace SCIFER_WORKSPACE, --live-text SCIFER_LIVE_TEXT, --origin SCIFER_PAGE_ORIGIN,
// --forbidden-workspace SCIFER_FORBIDDEN_WORKSPACE (bad.workspace), --expect-error
// SCIFER_EXPECT_ERROR (comma-separated Connect code names; NotFound), --expect-admin-error
// (PermissionDenied), --expect-role (viewer), --expect-contact SCIFER_EXPECT_CONTACT,
// --min-conversations (1), --email (a fresh browser-<random>@e2e.test), --chromium SCIFER_CHROMIUM
// (/usr/bin/chromium), --screenshot-dir, --no-build. The password is random, made here, typed into
// the page and printed nowhere.

import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, normalize, sep } from "node:path";
import { parseArgs } from "node:util";
import { build, dist, root } from "./build.mjs";

const TIMEOUTS = {
  total: 150_000, // the whole run, whatever hangs
  launch: 30_000,
  account: 20_000, // page load, sign-up, logout, login
  membership: 30_000, // from SIGNED_IN to the workspace in the list
  load: 20_000, // conversation list and watch stream
  live: 30_000, // from READY_FOR_LIVE to the message on the page
  error: 15_000,
  screenshot: 15_000,
};
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-proxy-server", // loopback only, whatever the environment says
];

const { values: opt } = parseArgs({
  options: {
    gateway: { type: "string", default: process.env.SCIFER_GATEWAY_URL },
    workspace: { type: "string", default: process.env.SCIFER_WORKSPACE },
    "live-text": { type: "string", default: process.env.SCIFER_LIVE_TEXT },
    origin: { type: "string", default: process.env.SCIFER_PAGE_ORIGIN ?? "http://inbox-app.scifer.test" },
    "forbidden-workspace": { type: "string", default: process.env.SCIFER_FORBIDDEN_WORKSPACE ?? "bad.workspace" },
    "expect-error": { type: "string", default: process.env.SCIFER_EXPECT_ERROR ?? "NotFound" },
    "expect-admin-error": { type: "string", default: "PermissionDenied" },
    "expect-role": { type: "string", default: "viewer" },
    email: { type: "string", default: `browser-${randomBytes(8).toString("hex")}@e2e.test` },
    "expect-contact": { type: "string", default: process.env.SCIFER_EXPECT_CONTACT },
    "min-conversations": { type: "string", default: "1" },
    chromium: { type: "string", default: process.env.SCIFER_CHROMIUM ?? "/usr/bin/chromium" },
    "screenshot-dir": { type: "string" },
    "no-build": { type: "boolean", default: false },
  },
  strict: true,
});

function fail(message) {
  console.error(`run.mjs: FAILED: ${message}`);
  process.exit(1);
}

for (const required of ["gateway", "workspace", "live-text"]) {
  if (!opt[required]) fail(`--${required} is required`);
}
const origin = new URL(opt.origin);
if (origin.protocol !== "http:" || origin.port || origin.pathname !== "/" || opt.origin.endsWith("/")) {
  fail(`--origin must look like http://host (no port, path or trailing slash), got ${opt.origin}`);
}
if (!existsSync(opt.chromium)) {
  fail(`${opt.chromium} is missing: run \`make browser-deps\` (tests/browser/install-deps.sh)`);
}
if (!existsSync(join(root, "node_modules/playwright-core"))) {
  fail("tests/browser/node_modules is missing: run `make browser-deps` (tests/browser/install-deps.sh)");
}
const codeList = (value) => value.split(",").map((s) => s.trim()).filter(Boolean);
const expectedCodes = codeList(opt["expect-error"]);
const expectedAdminCodes = codeList(opt["expect-admin-error"]);
const password = randomBytes(18).toString("base64url");
const gatewayOrigin = new URL(opt.gateway).origin;
const minConversations = Number.parseInt(opt["min-conversations"], 10);

// Everything the browser printed, for failure messages.
const consoleLines = [];
// Every call the page made to the gateway (preflights aside): its RPC and whether it carried a bearer.
const gatewayCalls = [];
let browser;
let page;
let server;
let userDataDir;
const shotDir = opt["screenshot-dir"] ?? mkdtempSync(join(tmpdir(), "scifer-browser-"));

async function cleanup() {
  await browser?.close().catch(() => {});
  server?.close();
  server?.closeAllConnections?.();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
}

async function pageState() {
  if (!page) return "(no page)";
  try {
    const body = await page.evaluate(() => {
      const s = (sel) => document.querySelector(sel);
      const visible = ["signup", "login", "account", "inbox"].filter((id) => s(`#${id}`) && !s(`#${id}`).hidden);
      const workspaces = [...document.querySelectorAll("#workspaces li")].map((li) => `${li.dataset.workspaceId} ${li.dataset.role}`);
      return [
        `visible: ${visible.join(", ")}`,
        `sign-up: ${s("#signup-state")?.dataset.state} ${s("#signup-state")?.textContent}`,
        `login: ${s("#login-state")?.dataset.state} ${s("#login-state")?.textContent}`,
        `workspaces: ${s("#workspaces")?.dataset.state} ${s("#workspaces-state")?.textContent} ${JSON.stringify(workspaces)}`,
        `conversations: ${s("#conversations")?.dataset.state} ${s("#conversations-state")?.textContent}`,
        `watch: ${s("#watch")?.dataset.state} ${s("#watch")?.textContent}`,
        `live: ${JSON.stringify([...document.querySelectorAll("#live li")].map((li) => li.textContent))}`,
        `permission check (other workspace): ${s("#forbidden-result")?.dataset.state} ${s("#forbidden-result")?.textContent}`,
        `permission check (admin call): ${s("#admin-result")?.dataset.state} ${s("#admin-result")?.textContent}`,
      ].join("\n  ");
    });
    return `  ${body}\n  gateway calls: ${JSON.stringify(gatewayCalls)}`;
  } catch (error) {
    return `(page state unavailable: ${error.message})`;
  }
}

async function failStep(step, error) {
  const state = await pageState();
  let shot = "";
  if (page) {
    const path = join(shotDir, "failure.png");
    shot = await page
      .screenshot({ path, timeout: 5_000 })
      .then(() => `\nscreenshot: ${path}`)
      .catch(() => "");
  }
  const logs = consoleLines.length ? `\nbrowser console:\n  ${consoleLines.slice(-40).join("\n  ")}` : "";
  await cleanup();
  fail(`${step}: ${error?.message ?? error}\npage state:\n${state}${logs}${shot}`);
}

async function step(name, timeoutMs, body) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([body(), timeout]);
  } catch (error) {
    await failStep(name, error);
  } finally {
    clearTimeout(timer);
  }
}

// The last resort: nothing may keep this process (or its browser) alive beyond the budget.
setTimeout(() => {
  failStep("whole run", new Error(`did not finish within ${TIMEOUTS.total} ms`)).catch(() => process.exit(1));
  setTimeout(() => process.exit(1), 10_000).unref();
}, TIMEOUTS.total).unref();
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    cleanup().finally(() => process.exit(1));
  });
}

const CONTENT_TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json",
};

function serve() {
  return new Promise((resolve, reject) => {
    const s = createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      const file = normalize(join(dist, path === "/" ? "index.html" : decodeURIComponent(path)));
      if ((req.method !== "GET" && req.method !== "HEAD") || !file.startsWith(dist + sep) || !existsSync(file)) {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found");
        return;
      }
      const body = readFileSync(file);
      res.writeHead(200, {
        "content-type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
        "cache-control": "no-store",
      });
      res.end(req.method === "HEAD" ? undefined : body);
    });
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => resolve(s));
  });
}

await step("build (buf generate, tsc, esbuild)", 120_000, async () => {
  if (!opt["no-build"]) build();
});

server = await step("static server", 5_000, serve);
const port = server.address().port;

const { chromium } = await import("playwright-core");
await step("launch chromium", TIMEOUTS.launch, async () => {
  userDataDir = mkdtempSync(join(tmpdir(), "scifer-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opt.chromium,
    headless: true,
    args: [...CHROMIUM_FLAGS, `--host-resolver-rules=MAP ${origin.hostname} 127.0.0.1:${port}`],
    viewport: { width: 900, height: 700 },
    timeout: TIMEOUTS.launch,
  });
  browser = context;
  page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`[pageerror] ${e.message}`));
  page.on("requestfailed", (r) => consoleLines.push(`[requestfailed] ${r.url()} ${r.failure()?.errorText}`));
  page.on("request", (r) => {
    const url = new URL(r.url());
    if (url.origin !== gatewayOrigin || r.method() !== "POST") return;
    const auth = r.headers().authorization;
    gatewayCalls.push({ rpc: url.pathname.split("/").pop(), bearer: typeof auth === "string" && /^Bearer \S{16,}$/.test(auth) });
  });
});

const pageUrl = new URL("/", opt.origin);
pageUrl.search = new URLSearchParams({ gateway: opt.gateway, forbidden: opt["forbidden-workspace"] }).toString();

/** Waits for `selector`'s data-state to be one of `done`/`error`; throws unless it is `done`. */
async function settled(selector, what, timeout) {
  await page.locator(`${selector}:is([data-state="done"], [data-state="loaded"], [data-state="error"])`).waitFor({ state: "attached", timeout });
  const node = page.locator(selector);
  if ((await node.getAttribute("data-state")) === "error") throw new Error(`${what} failed: ${await node.textContent()}`);
}

await step(`open ${pageUrl} and sign up as ${opt.email}`, TIMEOUTS.account, async () => {
  await page.goto(pageUrl.toString(), { waitUntil: "load", timeout: TIMEOUTS.account });
  await page.locator("#signup-form").waitFor({ state: "visible", timeout: TIMEOUTS.account });
  await page.fill("#signup-email", opt.email);
  await page.fill("#signup-password", password);
  await page.fill("#signup-name", "Browser User");
  await page.click('#signup-form button[type="submit"]');
  await settled("#signup-state", "sign-up", TIMEOUTS.account);
  await page.locator("#login-form").waitFor({ state: "visible", timeout: TIMEOUTS.account });
  const rpcs = gatewayCalls.map((c) => c.rpc);
  if (rpcs.join() !== "SignUp,Logout") throw new Error(`the page called ${JSON.stringify(rpcs)}, not SignUp then Logout`);
});

await step("log in through the form", TIMEOUTS.account, async () => {
  await page.fill("#login-email", opt.email);
  await page.fill("#login-password", password);
  await page.click('#login-form button[type="submit"]');
  await settled("#login-state", "login", TIMEOUTS.account);
  await settled("#workspaces", "ListWorkspaces", TIMEOUTS.account);
  const listed = await page.locator("#workspaces li").count();
  if (listed !== 0) throw new Error(`a new account lists ${listed} workspace(s), expected none`);
  const shown = (await page.textContent("#account-email"))?.trim();
  if (shown !== opt.email) throw new Error(`the page says it is signed in as ${JSON.stringify(shown)}`);
});

console.log(`SIGNED_IN ${opt.email}`);

const workspaceItem = page.locator(`#workspaces li[data-workspace-id="${opt.workspace.replace(/["\\]/g, "\\$&")}"]`);

await step(`wait to be added to ${opt.workspace} (clicking Refresh)`, TIMEOUTS.membership, async () => {
  for (;;) {
    await page.click("#refresh-workspaces");
    await settled("#workspaces", "ListWorkspaces", TIMEOUTS.membership);
    if ((await workspaceItem.count()) > 0) break;
    await page.waitForTimeout(300);
  }
  const role = await workspaceItem.getAttribute("data-role");
  if (role !== opt["expect-role"]) throw new Error(`listed with role ${role}, expected ${opt["expect-role"]}`);
});

await step(`open ${opt.workspace}, list conversations and watch`, TIMEOUTS.load, async () => {
  await workspaceItem.locator("button.open").click({ timeout: TIMEOUTS.load });
  const list = page.locator("#conversations");
  await page.locator('#conversations:is([data-state="loaded"], [data-state="error"])').waitFor({ state: "attached", timeout: TIMEOUTS.load });
  if ((await list.getAttribute("data-state")) !== "loaded") {
    throw new Error(`the conversation list failed to load: ${await page.textContent("#conversations-state")}`);
  }
  const contacts = await page.locator("#conversations li .contact").allTextContents();
  if (contacts.length < minConversations) {
    throw new Error(`expected at least ${minConversations} conversation(s), the page shows ${contacts.length}`);
  }
  if (opt["expect-contact"] && !contacts.includes(opt["expect-contact"])) {
    throw new Error(`no conversation with contact ${JSON.stringify(opt["expect-contact"])} in ${JSON.stringify(contacts)}`);
  }
  await page.locator('#watch:is([data-state="open"], [data-state="error"], [data-state="ended"])').waitFor({ state: "attached", timeout: TIMEOUTS.load });
  const watch = await page.locator("#watch").getAttribute("data-state");
  if (watch !== "open") throw new Error(`the watch stream is ${watch}, not open: ${await page.textContent("#watch")}`);
});

console.log("READY_FOR_LIVE");

await step(`live message ${JSON.stringify(opt["live-text"])}`, TIMEOUTS.live, async () => {
  const outcome = await page.waitForFunction(
    (text) => {
      if ([...document.querySelectorAll("#live li")].some((li) => li.textContent === text)) return "shown";
      const watch = document.querySelector("#watch")?.dataset.state;
      return watch === "open" ? false : `watch stream ${watch}`;
    },
    opt["live-text"],
    { timeout: TIMEOUTS.live, polling: 100 },
  );
  const value = await outcome.jsonValue();
  if (value !== "shown") throw new Error(`the message never showed: ${value}`);
});

// Connect's numeric codes are gRPC's: the name and the number rendered must agree.
const GRPC = { InvalidArgument: 3, NotFound: 5, PermissionDenied: 7, Unauthenticated: 16 };
async function permissionCheck(button, resultSelector, expected) {
  await page.click(button, { timeout: TIMEOUTS.error });
  const result = page.locator(resultSelector);
  await page.locator(`${resultSelector}:is([data-state="error"], [data-state="allowed"])`).waitFor({ state: "attached", timeout: TIMEOUTS.error });
  if ((await result.getAttribute("data-state")) !== "error") throw new Error("the call succeeded; it must be refused");
  const name = await result.getAttribute("data-code-name");
  const code = Number(await result.getAttribute("data-code"));
  if (!expected.includes(name)) throw new Error(`rendered ${name} (${code}); expected ${expected.join(" or ")}`);
  if (name in GRPC && GRPC[name] !== code) throw new Error(`rendered ${name} with code ${code}`);
  const text = (await result.textContent()).trim();
  if (!text.startsWith(`${name} (${code})`)) throw new Error(`rendered ${JSON.stringify(text)}`);
  return text;
}

await step(`permission check: workspace ${JSON.stringify(opt["forbidden-workspace"])}`, TIMEOUTS.error, async () => {
  console.log(`PERMISSION_ERROR ${await permissionCheck("#try-forbidden", "#forbidden-result", expectedCodes)}`);
});

await step(`permission check: AddMember as ${opt["expect-role"]}`, TIMEOUTS.error, async () => {
  console.log(`ADMIN_ERROR ${await permissionCheck("#try-admin", "#admin-result", expectedAdminCodes)}`);
});

await step("session kept in memory and sent as a bearer", TIMEOUTS.error, async () => {
  const stored = await page.evaluate(() => ({
    localStorage: localStorage.length,
    sessionStorage: sessionStorage.length,
    cookie: document.cookie,
  }));
  if (stored.localStorage || stored.sessionStorage || stored.cookie) {
    throw new Error(`the page stored something: ${JSON.stringify(stored)}`);
  }
  const open = new Set(["SignUp", "Login"]);
  const wrong = gatewayCalls.filter((c) => c.bearer !== !open.has(c.rpc));
  if (wrong.length) throw new Error(`calls with the wrong authorization: ${JSON.stringify(wrong)}`);
  const rpcs = [...new Set(gatewayCalls.map((c) => c.rpc))];
  console.log(`GATEWAY_CALLS ${gatewayCalls.length} (${rpcs.join(", ")})`);
});

await step("screenshot", TIMEOUTS.screenshot, async () => {
  const path = join(shotDir, "inbox.png");
  await page.screenshot({ path, fullPage: true, timeout: TIMEOUTS.screenshot });
  console.log(`SCREENSHOT ${path}`);
});

await cleanup();
console.log("BROWSER_OK");
process.exit(0);
