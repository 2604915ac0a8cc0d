// A minimal browser client of scifer.gateway.v1.InboxApi over gRPC-web (binary), used by run.mjs.
//
// Page URL query:
//   gateway    the gateway's base URL, e.g. http://127.0.0.1:8080 (another origin than the page)
//   workspace  the workspace to show
//   forbidden  the workspace id the "permission check" button asks for (default: bad.workspace)
// A session token, when there is one, is read from sessionStorage["scifer.session"] and sent as
// `authorization: Bearer <token>` (never put it in the URL).
//
// State for tests is exposed as data-* attributes: #conversations[data-state=loaded|error],
// #watch[data-state=open|error|ended], #forbidden-result[data-state=error][data-code][data-code-name].

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { InboxApi } from "../gen/scifer/gateway/v1/gateway_pb.js";
import { ChannelKind } from "../gen/scifer/events/v1/meta_pb.js";
import type { Conversation } from "../gen/scifer/inbox/v1/inbox_pb.js";

const params = new URLSearchParams(location.search);
const gateway = params.get("gateway") ?? "";
const workspace = params.get("workspace") ?? "";
const forbidden = params.get("forbidden") ?? "bad.workspace";

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from the page`);
  return found as T;
}

const session: Interceptor = (next) => async (req) => {
  const token = sessionStorage.getItem("scifer.session");
  if (token) req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

const transport = createGrpcWebTransport({
  baseUrl: gateway,
  useBinaryFormat: true, // tonic-web speaks application/grpc-web+proto only
  interceptors: [session],
});
const client = createClient(InboxApi, transport);

/** "InvalidArgument (3): workspace_id may contain only ..." */
function describe(error: unknown): { code: Code; name: string; message: string } {
  const e = ConnectError.from(error);
  return { code: e.code, name: Code[e.code], message: e.rawMessage };
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

async function listConversations(): Promise<void> {
  const list = el<HTMLUListElement>("conversations");
  const state = el("conversations-state");
  try {
    const response = await client.listConversations(
      { workspaceId: workspace, query: { pageSize: 50 } },
      { timeoutMs: 10_000 },
    );
    list.replaceChildren(...response.conversations.map(renderConversation));
    state.textContent = `${response.conversations.length} loaded`;
    list.dataset.state = "loaded";
  } catch (error) {
    const d = describe(error);
    state.textContent = `${d.name} (${d.code}): ${d.message}`;
    list.dataset.state = "error";
  }
}

async function watchInbox(): Promise<void> {
  const status = el("watch");
  const live = el<HTMLUListElement>("live");
  try {
    const stream = client.watchInbox(
      { workspaceId: workspace },
      {
        // Headers arrive once the gateway has subscribed: from then on nothing is missed.
        onHeader: () => {
          status.textContent = "open";
          status.dataset.state = "open";
        },
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
    status.textContent = "ended";
    status.dataset.state = "ended";
  } catch (error) {
    const d = describe(error);
    status.textContent = `${d.name} (${d.code}): ${d.message}`;
    status.dataset.state = "error";
  }
}

async function tryForbidden(): Promise<void> {
  const result = el("forbidden-result");
  result.dataset.state = "pending";
  result.textContent = "…";
  try {
    await client.listConversations({ workspaceId: forbidden, query: { pageSize: 1 } }, { timeoutMs: 10_000 });
    result.textContent = "allowed (unexpected)";
    result.dataset.state = "allowed";
  } catch (error) {
    const d = describe(error);
    result.textContent = `${d.name} (${d.code}): ${d.message}`;
    result.dataset.code = String(d.code);
    result.dataset.codeName = d.name;
    result.dataset.state = "error";
  }
}

el("workspace").textContent = workspace;
el("gateway").textContent = gateway;
el("origin").textContent = location.origin;
el("try-forbidden").addEventListener("click", () => void tryForbidden());
void listConversations();
void watchInbox();
