// The playground: a small client of the public /api/v1 API. Every text from the server is shown
// with textContent, never parsed as HTML. The optional parts of the page that this service has are
// modules of their own, listed by the server at /playground/modules (see loadModules).

const API = "/api/v1";
const state = {
  tools: false,
  documents: false,
  conversation: null, // id of the open conversation, or null for a scratch chat
  history: [], // the chat so far, as sent to the model
  controller: null,
};
const $ = (id) => document.getElementById(id);

// What an optional module may replace: install(page) returns any of these.
const hooks = {
  // authorize(headers): adds the caller's credentials to a request's headers.
  authorize() {},
  // refused(error, path, retried): a request was refused with `error` (an ApiError); resolves to
  // true to send it once more.
  async refused() {
    return false;
  },
  // entering(): the workspace opens; returns the line that says who is using it.
  entering() {
    return "No sign-in on this service: usage counts per client address.";
  },
  // begin(): the page is ready; shows what comes first.
  begin() {
    enter();
  },
};

// -- talking to the API ---------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, envelope, retryAfter) {
    super(envelope?.message || `The service answered ${status}.`);
    this.status = status;
    this.code = envelope?.code ?? null;
    this.details = envelope?.details ?? null;
    this.retryAfter = retryAfter;
  }
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${s} s`;
}

// One readable sentence (or a few) for any failure: the envelope's message, the fields a 422
// names, and when to try again.
function describe(error) {
  if (error instanceof ApiError) {
    let text = error.message;
    const problems = error.details?.errors;
    if (Array.isArray(problems) && problems.length) {
      const listed = problems.slice(0, 3).map((p) => {
        const where = (p.loc ?? []).join(".");
        return where ? `${where}: ${p.msg}` : p.msg;
      });
      text += ` ${listed.join("; ")}.`;
    }
    if (error.retryAfter != null) {
      text += ` Try again in ${duration(error.retryAfter)} (Retry-After: ${error.retryAfter} s).`;
    }
    return error.code ? `${text} [${error.code}]` : text;
  }
  if (error instanceof TypeError) return "The service could not be reached.";
  return error.message || String(error);
}

async function request(method, path, body, { signal, retried = false } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  hooks.authorize(headers);
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (response.ok) return response;
  const envelope = await response.json().catch(() => null);
  const retryAfter = response.headers.get("Retry-After");
  const error = new ApiError(response.status, envelope, retryAfter === null ? null : Number(retryAfter));
  if (await hooks.refused(error, path, retried)) {
    return request(method, path, body, { signal, retried: true });
  }
  throw error;
}

async function getData(path) {
  const response = await request("GET", path);
  return (await response.json()).data;
}

// Server-sent events from a fetch response, as { event, data } objects as they arrive.
async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
      end = buffer.indexOf("\n\n");
    }
  }
}

// -- page pieces ----------------------------------------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showNotice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

// One message of the chat: its text, and what may come with a reply (tool steps, citations,
// structured output, warnings, errors).
function addMessage(role, text) {
  const item = element("li", `message ${role}`);
  item.append(element("span", "role", role === "user" ? "You" : "Assistant"));
  const body = element("div", "text", text);
  item.append(body);
  $("messages").append(item);
  followLatest();
  let steps = null;
  const stepItems = new Map();
  return {
    item,
    setText(value) {
      body.textContent = value;
      followLatest();
    },
    step(id, label) {
      if (!steps) {
        steps = element("ol", "steps");
        steps.setAttribute("aria-label", "Tool steps");
        item.insertBefore(steps, body);
      }
      const entry = element("li", "step", label);
      stepItems.set(id, entry);
      steps.append(entry);
    },
    stepResult(id, label, failed) {
      const entry = stepItems.get(id) ?? element("li", "step");
      entry.append(element("div", failed ? "step-result failed" : "step-result", label));
    },
    citations(list) {
      const block = element("ul", "citations");
      block.setAttribute("aria-label", "Sources");
      for (const c of list) {
        block.append(element("li", "", `${c.title} (part ${c.chunk_index + 1}, score ${Number(c.score).toFixed(2)})`));
      }
      item.append(block);
    },
    parsed(value) {
      const block = element("pre", "parsed", JSON.stringify(value, null, 2));
      block.setAttribute("aria-label", "Parsed reply");
      item.append(block);
    },
    warnings(list) {
      for (const w of list ?? []) item.append(element("p", "warning", `Warning: ${w.message}`));
    },
    meta(data) {
      const usage = data.usage ? `${data.usage.total_tokens} tokens` : "";
      const parts = [data.model, usage, data.finish_reason && `finish: ${data.finish_reason}`];
      item.append(element("p", "meta", parts.filter(Boolean).join(" · ")));
    },
    fail(text) {
      item.classList.add("failed");
      const note = element("p", "error", text);
      note.setAttribute("role", "alert");
      item.append(note);
    },
  };
}

// Keep the newest message in view while a reply grows.
function followLatest() {
  const list = $("messages");
  list.scrollTop = list.scrollHeight;
}

function renderHistory() {
  $("messages").replaceChildren();
  for (const m of state.history) addMessage(m.role, m.content);
}

function busy(on) {
  $("send").disabled = on;
  $("stop").hidden = !on;
}

// -- chat -----------------------------------------------------------------------------------------

function selectedTools() {
  return [...document.querySelectorAll("#tool-list input:checked")].map((box) => box.value);
}

async function streamReply(content, reply, signal) {
  const tools = selectedTools();
  const conversation = state.conversation;
  const body = conversation
    ? { content, stream: true }
    : { messages: [...state.history, { role: "user", content }] };
  if (tools.length) body.tools = tools;
  const path = conversation ? `/ai/conversations/${conversation}/messages` : "/ai/stream";
  const response = await request("POST", path, body, { signal });
  let text = "";
  for await (const { event, data } of events(response)) {
    if (event === "delta") {
      text += data.content;
      reply.setText(text);
    } else if (event === "tool_call") {
      reply.step(data.id, `${data.tool}(${JSON.stringify(data.arguments ?? {})})`);
    } else if (event === "tool_result") {
      const failed = Boolean(data.error);
      reply.stepResult(data.id, failed ? `Error: ${data.error}` : JSON.stringify(data.result), failed);
    } else if (event === "citations") {
      reply.citations(data.citations ?? []);
    } else if (event === "done") {
      reply.meta(data);
      reply.warnings(data.warnings);
    } else if (event === "error") {
      throw new ApiError(200, data, null);
    }
  }
  return text;
}

async function structuredReply(content, schema, reply, signal) {
  const messages = [...state.history, { role: "user", content }];
  const response = await request("POST", "/ai/complete", { messages, response_schema: schema }, { signal });
  const envelope = await response.json();
  reply.setText(envelope.data.content);
  reply.parsed(envelope.data.parsed);
  reply.meta(envelope.data);
  reply.warnings(envelope.warnings);
  return envelope.data.content;
}

async function send(event) {
  event.preventDefault();
  const content = $("prompt").value.trim();
  if (!content || state.controller) return;
  const schemaText = $("schema").value.trim();
  let schema = null;
  if (schemaText) {
    try {
      schema = JSON.parse(schemaText);
    } catch (error) {
      showNotice(`The JSON Schema is not valid JSON: ${error.message}`);
      $("schema").focus();
      return;
    }
  }
  showNotice("");
  addMessage("user", content);
  $("prompt").value = "";
  const reply = addMessage("assistant", "");
  reply.item.setAttribute("aria-busy", "true");
  state.controller = new AbortController();
  busy(true);
  try {
    const text = schema
      ? await structuredReply(content, schema, reply, state.controller.signal)
      : await streamReply(content, reply, state.controller.signal);
    if (!(schema && state.conversation)) {
      state.history.push({ role: "user", content }, { role: "assistant", content: text });
    }
  } catch (error) {
    reply.fail(error.name === "AbortError" ? "Stopped." : describe(error));
  } finally {
    reply.item.removeAttribute("aria-busy");
    followLatest();
    state.controller = null;
    busy(false);
    refreshUsage();
    if (state.conversation) refreshConversations();
  }
}

function newChat() {
  state.conversation = null;
  state.history = [];
  $("chat-scope").textContent = "(scratch: not saved)";
  renderHistory();
  refreshConversations();
  $("prompt").focus();
}

// -- usage, conversations, tools, documents -------------------------------------------------------

const number = new Intl.NumberFormat("en");

async function refreshUsage() {
  try {
    const usage = await getData("/ai/usage");
    const meter = $("usage-meter");
    meter.max = usage.budget || Math.max(usage.today_tokens, 1);
    meter.value = usage.today_tokens;
    // Green while well under the budget, then amber, red once it is used up.
    meter.optimum = 0;
    meter.low = meter.max * 0.8;
    meter.high = meter.max * 0.999;
    $("usage-text").textContent = usage.budget
      ? `${number.format(usage.today_tokens)} of ${number.format(usage.budget)} tokens used today, ` +
        `${number.format(usage.remaining)} left.`
      : `${number.format(usage.today_tokens)} tokens used today (no daily budget).`;
  } catch (error) {
    $("usage-text").textContent = describe(error);
  }
}

async function refreshConversations() {
  const list = $("conversations");
  try {
    const { items } = await getData("/ai/conversations");
    const current = items.find((c) => c.id === state.conversation);
    if (current) $("chat-scope").textContent = `(${current.title})`; // named after its first message
    list.replaceChildren(
      ...items.map((c) => {
        const button = element("button", "link", c.title);
        button.type = "button";
        button.setAttribute("aria-pressed", String(c.id === state.conversation));
        button.addEventListener("click", () => openConversation(c.id));
        const item = element("li");
        item.append(button);
        return item;
      }),
    );
    if (!items.length) list.append(element("li", "muted", "None yet."));
  } catch (error) {
    list.replaceChildren(element("li", "error", describe(error)));
  }
}

async function openConversation(id) {
  try {
    const conversation = await getData(`/ai/conversations/${id}`);
    state.conversation = conversation.id;
    state.history = conversation.messages
      .filter((m) => m.role !== "system")
      .map((m) => ({ role: m.role, content: m.content }));
    $("chat-scope").textContent = `(${conversation.title})`;
    renderHistory();
    refreshConversations();
    $("prompt").focus();
  } catch (error) {
    showNotice(describe(error));
  }
}

async function newConversation() {
  try {
    const response = await request("POST", "/ai/conversations", {});
    await openConversation((await response.json()).data.id);
  } catch (error) {
    showNotice(describe(error));
  }
}

// The tools picker appears once the service has tools (a 404 means it has none yet).
async function loadTools() {
  const fieldset = $("tools");
  fieldset.hidden = true;
  if (!state.tools) return;
  try {
    const tools = await getData("/ai/tools");
    $("tool-list").replaceChildren(
      ...tools.map((tool) => {
        const label = element("label", "check");
        const box = element("input");
        box.type = "checkbox";
        box.value = tool.name;
        label.append(box, ` ${tool.name}`);
        label.title = tool.description ?? "";
        return label;
      }),
    );
    fieldset.hidden = tools.length === 0;
  } catch {
    // no tools here: the picker stays hidden
  }
}

async function loadDocuments() {
  $("documents").hidden = !state.documents;
  if (!state.documents) return;
  try {
    const { items } = await getData("/documents");
    $("document-list").replaceChildren(...items.map((d) => element("li", "", `${d.title} (${d.status})`)));
    if (!items.length) $("document-list").append(element("li", "muted", "None yet."));
  } catch (error) {
    $("document-list").replaceChildren(element("li", "error", describe(error)));
  }
}


function enter() {
  showNotice("");
  $("who").textContent = hooks.entering();
  $("workspace").hidden = false;
  newChat();
  refreshUsage();
  loadTools();
  loadDocuments();
}

// -- start ----------------------------------------------------------------------------------------

// The optional parts this service has (signing in, when it has users): each module the server
// lists exports install(page), which builds its part of the page and returns the hooks it replaces.
async function loadModules() {
  const response = await fetch("/playground/modules");
  if (!response.ok) throw new Error(`status ${response.status}`);
  const page = { API, $, element, request, describe, showNotice, enter };
  for (const url of (await response.json()).modules) {
    const module = await import(url);
    Object.assign(hooks, module.install(page));
  }
}

async function start() {
  try {
    await loadModules();
  } catch (error) {
    showNotice(`Could not load the page's modules: ${describe(error)}`);
    return;
  }
  $("chat-form").addEventListener("submit", send);
  $("stop").addEventListener("click", () => state.controller?.abort());
  $("new-chat").addEventListener("click", newChat);
  $("new-conversation").addEventListener("click", newConversation);
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      $("chat-form").requestSubmit();
    }
  });
  // The API description says which optional parts this service has.
  let paths = null;
  try {
    const response = await fetch("/openapi.json");
    if (!response.ok) throw new Error(`status ${response.status}`);
    const spec = await response.json();
    paths = spec.paths ?? {};
    if (spec.info?.title) {
      $("service-name").textContent = spec.info.title;
      document.title = `${spec.info.title} playground`;
    }
  } catch {
    // guessed below
  }
  state.tools = paths === null || `${API}/ai/tools` in paths; // unknown: ask, a 404 hides it
  state.documents = paths !== null && `${API}/documents` in paths;
  hooks.begin();
  if (paths === null) showNotice("Could not read /openapi.json: some panels may be missing.");
  document.body.dataset.ready = "true";
}

start();
