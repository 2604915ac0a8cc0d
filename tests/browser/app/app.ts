// A minimal browser client of the public API (scifer.gateway.v1 AccountApi, WorkspaceApi and
// InboxApi) over gRPC-web (binary), used by run.mjs. It does what a user does:
//   1. sign-up form: SignUp, then Logout (the first session is revoked at once), then the login form;
//   2. login form: Login; the session token is kept in this module's memory only (no localStorage,
//      sessionStorage or cookie) and sent as `authorization: Bearer <token>` on every later call;
//   3. ListWorkspaces with the caller's role in each ("Refresh" lists them again);
//   4. "Open" on a workspace: ListConversations and WatchInbox in it;
//   5. permission checks: ListConversations in a workspace the user is not a member of, and
//      AddMember (admins only) in the open workspace; each renders "<Code name> (<number>): message".
//
// Page URL query:
//   gateway    the gateway's base URL, e.g. http://127.0.0.1:8080 (another origin than the page)
//   forbidden  the workspace id the first permission check asks for (default: bad.workspace)
//
// State for tests is exposed as data-* attributes: #signup-state and #login-state
// [data-state=pending|done|error], #workspaces[data-state=loaded|error] with
// li[data-workspace-id][data-role], #conversations[data-state=loaded|error],
// #watch[data-state=open|error|ended], #forbidden-result and #admin-result
// [data-state=error|allowed][data-code][data-code-name].

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { InboxApi } from "../gen/scifer/gateway/v1/gateway_pb.js";
import { AccountApi, Role, WorkspaceApi, type Workspace } from "../gen/scifer/gateway/v1/identity_pb.js";
import { ChannelKind } from "../gen/scifer/events/v1/meta_pb.js";
import type { Conversation } from "../gen/scifer/inbox/v1/inbox_pb.js";

const params = new URLSearchParams(location.search);
const gateway = params.get("gateway") ?? "";
const forbidden = params.get("forbidden") ?? "bad.workspace";
const TIMEOUT_MS = 10_000;

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from the page`);
  return found as T;
}

/** The session: in memory only, gone with the page. */
let sessionToken: string | null = null;

const session: Interceptor = (next) => async (req) => {
  if (sessionToken) req.header.set("authorization", `Bearer ${sessionToken}`);
  return next(req);
};

const transport = createGrpcWebTransport({
  baseUrl: gateway,
  useBinaryFormat: true, // tonic-web speaks application/grpc-web+proto only
  interceptors: [session],
});
const accounts = createClient(AccountApi, transport);
const workspaces = createClient(WorkspaceApi, transport);
const inbox = createClient(InboxApi, transport);

/** A refusal as the user sees it: "NotFound (5): ...". */
function describe(error: unknown): { code: Code; name: string; text: string } {
  const e = ConnectError.from(error);
  const name = Code[e.code] ?? `code ${e.code}`;
  return { code: e.code, name, text: `${name} (${e.code}): ${e.rawMessage}` };
}

function show(section: "signup" | "login" | "account"): void {
  for (const id of ["signup", "login", "account"]) el(id).hidden = id !== section;
}

function setState(node: HTMLElement, state: string, text: string): void {
  node.textContent = text;
  node.dataset.state = state;
}

// --- sign up, log out, log in ---------------------------------------------------------------

async function signUp(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const state = el("signup-state");
  const email = el<HTMLInputElement>("signup-email").value;
  setState(state, "pending", "signing up…");
  try {
    const created = await accounts.signUp(
      {
        email,
        password: el<HTMLInputElement>("signup-password").value,
        name: el<HTMLInputElement>("signup-name").value,
      },
      { timeoutMs: TIMEOUT_MS },
    );
    // Sign-up opens a session; this page logs it out and asks for a login, as a real app could
    // after e-mail verification. Logout revokes the token the call carries.
    sessionToken = created.sessionToken;
    await accounts.logout({}, { timeoutMs: TIMEOUT_MS });
    sessionToken = null;
    el<HTMLFormElement>("signup-form").reset();
    setState(state, "done", `account created for ${created.account?.email ?? email}`);
    el<HTMLInputElement>("login-email").value = "";
    el("login-note").textContent = `Account ${created.account?.email ?? email} created. Log in to continue.`;
    show("login");
  } catch (error) {
    sessionToken = null;
    setState(state, "error", describe(error).text);
  }
}

async function logIn(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const state = el("login-state");
  setState(state, "pending", "logging in…");
  try {
    const opened = await accounts.login(
      {
        email: el<HTMLInputElement>("login-email").value,
        password: el<HTMLInputElement>("login-password").value,
      },
      { timeoutMs: TIMEOUT_MS },
    );
    sessionToken = opened.sessionToken;
    el<HTMLFormElement>("login-form").reset();
    setState(state, "done", "signed in");
    el("account-email").textContent = opened.account?.email ?? "";
    el("account-name").textContent = opened.account?.name ?? "";
    show("account");
    await listWorkspaces();
  } catch (error) {
    setState(state, "error", describe(error).text);
  }
}

// --- workspaces -----------------------------------------------------------------------------

function roleName(role: Role): string {
  return (Role[role] ?? `role ${role}`).toLowerCase();
}

function renderWorkspace(w: Workspace): HTMLLIElement {
  const li = document.createElement("li");
  li.dataset.workspaceId = w.workspaceId;
  li.dataset.role = roleName(w.role);
  const name = document.createElement("span");
  name.className = "contact";
  name.textContent = w.name || w.workspaceId;
  const role = document.createElement("span");
  role.className = "role";
  role.textContent = roleName(w.role);
  const open = document.createElement("button");
  open.type = "button";
  open.className = "open";
  open.textContent = "Open";
  open.style.marginLeft = ".75rem";
  open.addEventListener("click", () => openWorkspace(w.workspaceId));
  li.append(name, role, open);
  return li;
}

async function listWorkspaces(): Promise<void> {
  const list = el<HTMLUListElement>("workspaces");
  const state = el("workspaces-state");
  list.dataset.state = "loading";
  try {
    const response = await workspaces.listWorkspaces({}, { timeoutMs: TIMEOUT_MS });
    list.replaceChildren(...response.workspaces.map(renderWorkspace));
    state.textContent =
      response.workspaces.length === 0 ? "none yet: ask an admin to add you" : `${response.workspaces.length} loaded`;
    list.dataset.state = "loaded";
  } catch (error) {
    state.textContent = describe(error).text;
    list.dataset.state = "error";
  }
}

// --- one workspace's inbox ------------------------------------------------------------------

let openWorkspaceId = "";
let watching: AbortController | null = null;

function openWorkspace(workspaceId: string): void {
  openWorkspaceId = workspaceId;
  watching?.abort();
  watching = new AbortController();
  el("workspace").textContent = workspaceId;
  el("live").replaceChildren();
  for (const id of ["forbidden-result", "admin-result"]) setState(el(id), "idle", "");
  setState(el("watch"), "connecting", "connecting");
  el("conversations").dataset.state = "loading";
  el("inbox").hidden = false;
  void listConversations(workspaceId);
  void watchInbox(workspaceId, watching.signal);
}

function channelName(kind: ChannelKind): string {
  return ChannelKind[kind] ?? `channel kind ${kind}`;
}

function renderConversation(c: Conversation): HTMLLIElement {
  const li = document.createElement("li");
  li.dataset.conversationId = c.id;
  const contact = document.createElement("span");
  contact.className = "contact";
  contact.textContent = c.contact?.displayName || c.contact?.externalId || "(unknown contact)";
  const channel = document.createElement("span");
  channel.className = "channel";
  channel.textContent = `${channelName(c.channelKind)} · ${c.channelId}`;
  const preview = document.createElement("span");
  preview.className = "preview";
  preview.textContent = c.lastMessagePreview;
  li.append(contact, channel, preview);
  return li;
}

async function listConversations(workspaceId: string): Promise<void> {
  const list = el<HTMLUListElement>("conversations");
  const state = el("conversations-state");
  try {
    const response = await inbox.listConversations(
      { workspaceId, query: { pageSize: 50 } },
      { timeoutMs: TIMEOUT_MS },
    );
    list.replaceChildren(...response.conversations.map(renderConversation));
    state.textContent = `${response.conversations.length} loaded`;
    list.dataset.state = "loaded";
  } catch (error) {
    state.textContent = describe(error).text;
    list.dataset.state = "error";
  }
}

async function watchInbox(workspaceId: string, signal: AbortSignal): Promise<void> {
  const status = el("watch");
  const live = el<HTMLUListElement>("live");
  try {
    const stream = inbox.watchInbox(
      { workspaceId },
      {
        signal,
        // Headers arrive once the gateway has subscribed: from then on nothing is missed.
        onHeader: () => setState(status, "open", "open"),
      },
    );
    for await (const event of stream) {
      if (event.kind.case !== "messageCreated") continue;
      const message = event.kind.value.message;
      const li = document.createElement("li");
      li.dataset.messageId = message?.id ?? "";
      li.textContent = message?.text ?? "";
      live.append(li);
    }
    setState(status, "ended", "ended");
  } catch (error) {
    if (signal.aborted) return; // another workspace was opened
    setState(status, "error", describe(error).text);
  }
}

// --- permission checks ----------------------------------------------------------------------

async function check(resultId: string, call: () => Promise<unknown>): Promise<void> {
  const result = el(resultId);
  delete result.dataset.code;
  delete result.dataset.codeName;
  setState(result, "pending", "…");
  try {
    await call();
    setState(result, "allowed", "allowed (unexpected)");
  } catch (error) {
    const d = describe(error);
    result.dataset.code = String(d.code);
    result.dataset.codeName = d.name;
    setState(result, "error", d.text);
  }
}

el("gateway").textContent = gateway;
el("origin").textContent = location.origin;
el<HTMLFormElement>("signup-form").addEventListener("submit", (e) => void signUp(e));
el<HTMLFormElement>("login-form").addEventListener("submit", (e) => void logIn(e));
el("refresh-workspaces").addEventListener("click", () => void listWorkspaces());
el("try-forbidden").addEventListener("click", () =>
  void check("forbidden-result", () =>
    inbox.listConversations({ workspaceId: forbidden, query: { pageSize: 1 } }, { timeoutMs: TIMEOUT_MS }),
  ),
);
el("try-admin").addEventListener("click", () =>
  void check("admin-result", () =>
    workspaces.addMember(
      { workspaceId: openWorkspaceId, email: "someone-else@example.test", role: Role.VIEWER },
      { timeoutMs: TIMEOUT_MS },
    ),
  ),
);
show("signup");
