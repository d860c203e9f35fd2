// The ICN web app: a member's view of their co-op, from their own node.
// Plain JavaScript, no build step. Everything a peer wrote (names, memos,
// proposal texts) goes into the page as text, never as HTML.

const API = "/api/v1";
const state = { me: null, members: [], names: new Map(), balance: null, historyCursor: null };

// ---------- small helpers ----------

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Whether the member is in the middle of something a re-render would
// throw away: typing, or a form they opened on demand (`data-keep`).
function busyHere() {
  const active = document.activeElement;
  const typing = active && ["INPUT", "TEXTAREA", "SELECT"].includes(active.tagName) && active.type !== "range";
  return typing || document.querySelector("form[data-keep]") !== null;
}

// Set while a live refresh re-renders: it must not land on a member who
// started something while it was loading.
let refreshing = false;

function show(...nodes) {
  if (refreshing && busyHere()) return;
  const main = document.getElementById("main");
  main.replaceChildren(...nodes.filter((node) => node !== null && node !== undefined));
}

function toast(message, kind = "") {
  const node = h("div", { class: `toast ${kind}` }, message);
  document.getElementById("toasts").append(node);
  setTimeout(() => node.remove(), kind === "error" ? 8000 : 4000);
}

function nameOf(did) {
  if (!did) return "";
  if (did === "commons") return "the commons";
  const name = state.names.get(did);
  return name || `${did.slice(0, 16)}…`;
}

function when(ms) {
  const date = new Date(ms);
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  return sameDay
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleDateString([], { day: "numeric", month: "short", year: date.getFullYear() === today.getFullYear() ? undefined : "numeric" });
}

// Minutes as members read them: 90 → "1h 30m".
function hours(minutes) {
  const sign = minutes < 0 ? "−" : "";
  const total = Math.abs(minutes);
  const h_ = Math.floor(total / 60);
  const m = total % 60;
  if (h_ === 0) return `${sign}${m}m`;
  return m === 0 ? `${sign}${h_}h` : `${sign}${h_}h ${m}m`;
}

function amountText(value, currency) {
  return currency === "hours" ? hours(value) : `${value} ${currency}`;
}

function empty(title, text, ...extra) {
  return h("div", { class: "empty" }, h("strong", {}, title), text, ...extra);
}

function busy(form, on) {
  for (const control of form.querySelectorAll("button, input, select, textarea")) {
    control.disabled = on || Boolean(control.closest("[hidden]"));
  }
}

// ---------- the browser's own key (WebCrypto Ed25519, not extractable) ----------

function keyStore() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("icn", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("keys");
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

async function storedKey() {
  const db = await keyStore();
  return new Promise((resolve) => {
    const get = db.transaction("keys").objectStore("keys").get("device");
    get.onsuccess = () => resolve(get.result || null);
    get.onerror = () => resolve(null);
  });
}

async function saveKey(pair) {
  const db = await keyStore();
  return new Promise((resolve, reject) => {
    const tx = db.transaction("keys", "readwrite");
    tx.objectStore("keys").put(pair, "device");
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
}

const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

function base58(bytes) {
  const digits = [];
  for (const byte of bytes) {
    let carry = byte;
    for (let i = 0; i < digits.length; i++) {
      carry += digits[i] << 8;
      digits[i] = carry % 58;
      carry = (carry / 58) | 0;
    }
    while (carry) { digits.push(carry % 58); carry = (carry / 58) | 0; }
  }
  let text = "";
  for (const byte of bytes) { if (byte !== 0) break; text += "1"; }
  for (let i = digits.length - 1; i >= 0; i--) text += ALPHABET[digits[i]];
  return text;
}

function unbase58(text) {
  const bytes = [];
  for (const char of text) {
    let carry = ALPHABET.indexOf(char);
    if (carry < 0) throw new Error("not base58");
    for (let i = 0; i < bytes.length; i++) {
      carry += bytes[i] * 58;
      bytes[i] = carry & 0xff;
      carry >>= 8;
    }
    while (carry) { bytes.push(carry & 0xff); carry >>= 8; }
  }
  for (const char of text) { if (char !== "1") break; bytes.push(0); }
  return new Uint8Array(bytes.reverse());
}

async function browserKey() {
  let pair = await storedKey().catch(() => null);
  if (pair) return pair;
  try {
    pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    await saveKey(pair);
    return pair;
  } catch {
    return null; // No Ed25519 here: the browser signs in by link only.
  }
}

async function publicKeyText(pair) {
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return base58(raw);
}

// ---------- talking to the node ----------

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `the node answered ${status}`);
    this.status = status;
    this.code = body?.code;
    this.hint = body?.hint;
  }
}

function token() {
  return localStorage.getItem("icn.token");
}

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Reads fall back to what this device last saw when the node cannot be reached.
async function read(path) {
  try {
    const data = await request("GET", path);
    localStorage.setItem(`icn.cache.${path}`, JSON.stringify(data));
    document.getElementById("offline").hidden = true;
    return data;
  } catch (error) {
    if (error instanceof TypeError) {
      const cached = localStorage.getItem(`icn.cache.${path}`);
      if (cached) {
        document.getElementById("offline").hidden = false;
        return JSON.parse(cached);
      }
    }
    throw error;
  }
}

// A call that signs in again once, with this browser's key, if the token ran out.
async function request(method, path, body) {
  try {
    return await call(method, path, body);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && (await signInWithKey())) {
      return call(method, path, body);
    }
    throw error;
  }
}

function keepToken(answer) {
  localStorage.setItem("icn.token", answer.token);
  localStorage.setItem("icn.did", answer.did);
  localStorage.setItem("icn.expires", String(Date.now() + answer.expires_in_s * 1000));
}

async function signInWithLink(code) {
  const pair = await browserKey();
  const body = { code, label: browserLabel() };
  if (pair) body.key = await publicKeyText(pair);
  keepToken(await call("POST", "/auth/link", body));
}

async function signInWithKey() {
  const did = localStorage.getItem("icn.did");
  const pair = await storedKey().catch(() => null);
  if (!did || !pair) return false;
  try {
    const { challenge } = await call("POST", "/auth/challenge", { did });
    const message = new Uint8Array([...new TextEncoder().encode("icn-auth-v1:"), ...unbase58(challenge)]);
    const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, message));
    keepToken(await call("POST", "/auth/verify", { did, challenge, signature: base58(signature) }));
    return true;
  } catch {
    return false;
  }
}

function browserLabel() {
  const agent = navigator.userAgent;
  const browser = /Firefox\//.test(agent) ? "Firefox" : /Edg\//.test(agent) ? "Edge" : /Chrom/.test(agent) ? "Chrome" : /Safari\//.test(agent) ? "Safari" : "A browser";
  const device = /Android/.test(agent) ? "Android" : /iPhone|iPad/.test(agent) ? "iOS" : /Mac OS/.test(agent) ? "Mac" : /Windows/.test(agent) ? "Windows" : "Linux";
  return `${browser} on ${device}`;
}

// Keep the token fresh while the page is open.
setInterval(async () => {
  const expires = Number(localStorage.getItem("icn.expires") || 0);
  if (token() && expires - Date.now() < 20 * 60 * 1000) {
    try { keepToken(await call("POST", "/auth/refresh")); } catch { /* the next call signs in again */ }
  }
}, 60 * 1000);

// ---------- shared data ----------

async function loadMembers() {
  const { members, vouches_needed } = await read("/members");
  state.members = members;
  state.vouchesNeeded = vouches_needed;
  state.names = new Map(members.map((member) => [member.did, member.name || `${member.did.slice(0, 16)}…`]));
  return members;
}

// How far an applicant is from admission, in plain words.
function stillNeeded(member) {
  const missing = (state.vouchesNeeded ?? 2) - member.vouched_by.length;
  if (missing <= 0) return "enough vouches: being admitted";
  return missing === 1 ? "needs 1 more vouch" : `needs ${missing} more vouches`;
}

async function loadBalance() {
  const balance = await read(`/ledger/balance/${encodeURIComponent(state.me.did)}`);
  state.balance = balance;
  const pill = document.getElementById("balance-pill");
  const account = balance.accounts.find((a) => a.currency === "hours") || balance.accounts[0];
  if (account) {
    pill.textContent = amountText(account.balance, account.currency);
    pill.hidden = false;
  }
  return balance;
}

function activeMembers() {
  return state.members.filter((member) => member.status === "active");
}

let fieldCount = 0;

function memberSelect(name, label, { exceptMe = true } = {}) {
  const id = `field-${name}-${++fieldCount}`;
  const options = activeMembers()
    .filter((member) => !exceptMe || member.did !== state.me.did)
    .map((member) => h("option", { value: member.did }, member.name || member.did));
  return h("div", { class: "field" }, h("label", { for: id }, label),
    h("select", { id, name, required: true }, h("option", { value: "" }, "Choose a member…"), options));
}

function field(name, label, attrs = {}, hint = "") {
  const id = `field-${name}-${++fieldCount}`;
  const input = attrs.multiline
    ? h("textarea", { id, name, ...attrs, multiline: null })
    : h("input", { id, name, type: "text", ...attrs });
  const hintId = `${id}-hint`;
  if (hint) input.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" }, h("label", { for: id }, label), hint ? h("span", { class: "hint", id: hintId }, hint) : null, input);
}

function formData(form) {
  return Object.fromEntries(new FormData(form).entries());
}

// Submits a form's action and says how it went.
function onSubmit(action, done) {
  return async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const problem = form.querySelector(".error-text");
    if (problem) problem.remove();
    // Read before disabling: disabled controls are left out of FormData.
    const data = formData(form);
    busy(form, true);
    try {
      await action(data, form);
      form.reset();
      if (done) await done();
    } catch (error) {
      form.append(h("p", { class: "error-text", role: "alert" }, error.message, error.hint ? ` — ${error.hint}` : ""));
    } finally {
      busy(form, false);
    }
  };
}

// ---------- views ----------

function entryRow(entry, disputable = false) {
  const incoming = entry.amount > 0;
  const row = h("li", { class: "entry" },
    h("div", { class: "entry-main" },
      h("div", { class: "title" }, incoming ? `From ${nameOf(entry.counterparty)}` : `To ${nameOf(entry.counterparty)}`),
      h("div", { class: "muted small" }, [entry.memo, when(entry.time_ms), entry.kind !== "payment" ? entry.kind : ""].filter(Boolean).join(" · "))),
    h("div", { class: `amount ${incoming ? "positive" : "negative"}` }, `${incoming ? "+" : ""}${amountText(entry.amount, entry.currency)}`));
  if (disputable && !incoming && entry.kind === "payment") {
    const open = h("button", { class: "secondary small-button", onclick: () => {
      open.hidden = true;
      // A form opened on demand is work in progress: live refreshes leave
      // the page alone until it is sent (see `listen`).
      const form = disputeForm(entry);
      form.dataset.keep = "";
      row.append(form);
      form.querySelector("input, textarea, select")?.focus();
    } }, "Dispute");
    row.append(open);
  }
  return row;
}

// A payment you made that went wrong: a member who is neither of you
// mediates; their outcome is a new entry, never a deletion.
function disputeForm(entry) {
  const mediators = activeMembers().filter((m) => m.did !== state.me.did && m.did !== entry.counterparty);
  if (!mediators.length) {
    return h("p", { class: "muted small dispute" }, "A dispute needs a mediator who is neither of you; the co-op has no one else yet.");
  }
  const mediator = h("select", { name: "mediator", id: `mediator-${entry.id}`, required: true },
    mediators.map((m) => h("option", { value: m.did }, m.name || m.did)));
  return h("form", { class: "dispute", "aria-label": "Dispute this payment", onsubmit: onSubmit(async (data) => {
    await request_("POST", "/ledger/disputes", { entry: entry.id, reason: data.reason, mediator: data.mediator });
    toast(`Dispute opened; ${nameOf(data.mediator)} will mediate.`);
  }, () => route()) },
    field("reason", "What went wrong", { required: true, maxlength: 500, placeholder: "The work was not done" }),
    h("div", { class: "field" }, h("label", { for: `mediator-${entry.id}` }, "Mediator"), mediator),
    h("button", { type: "submit" }, "Open dispute"));
}

function needsMyVote(proposal) {
  return proposal.status === "open" && proposal.electorate.includes(state.me.did) && !proposal.voted.includes(state.me.did);
}

async function homeView() {
  const [balance, history, proposals, inbox, recovery] = await Promise.all([
    loadBalance(),
    read(`/ledger/history?limit=5`),
    read("/governance/proposals"),
    read("/ledger/inbox"),
    read("/recovery"),
  ]);
  // What needs a person about recovery comes first: a recovery of you (not
  // this device's own), a freeze, or a member you guard who is waiting for
  // your approval.
  recovery.of_you = recovery.of_you.filter((item) => item.request !== recovery.this_device_request);
  const recoveryAlert = recovery.of_you.length || recovery.frozen_by || recovery.you_guard.some((item) => !item.approved_by_you)
    ? h("section", { class: "card alert", role: "alert" },
      h("h2", {}, recovery.of_you.length || recovery.frozen_by ? "Your identity needs you" : "A member needs your approval"),
      h("p", {}, recovery.of_you.length
        ? "Someone is recovering YOUR identity to a new device. If it is not you, cancel it on the Members page."
        : recovery.frozen_by
          ? `Your identity is frozen by ${recovery.frozen_by.name || recovery.frozen_by.did}.`
          : `${recovery.you_guard.filter((item) => !item.approved_by_you).map((item) => item.member.name || item.member.did).join(", ")} asked to recover their identity on a new device. Call them before you approve.`),
      h("button", { onclick: () => (location.hash = "#/members") }, "Open Recovery"))
    : null;
  const account = balance.accounts.find((a) => a.currency === "hours") || balance.accounts[0];
  const waiting = proposals.proposals.filter(needsMyVote);
  const asked = inbox.requests.filter((request) => request.payer === state.me.did && request.status === "open");
  const waitingDevice = recovery.this_device_request
    ? h("section", { class: "card alert", role: "alert" },
      h("h2", {}, "Waiting for your guardians"),
      h("p", {}, "This computer asks to take over your identity. Send this request to your guardians; each approves it on their Members page (Recovery) after calling you:"),
      h("p", {}, h("code", { class: "wrap" }, recovery.this_device_request)),
      h("p", { class: "small muted" }, recovery.this_device_cancelled ? "It was cancelled from one of your devices: this computer can never take over with it." : "Once enough of them approve and the waiting time passes, your balance, membership and votes are all here."))
    : null;
  show(
    h("h1", {}, `Hello${state.me.name ? `, ${state.me.name}` : ""}`),
    waitingDevice,
    recoveryAlert,
    h("section", { class: "card", "aria-labelledby": "balance-title" },
      h("h2", { id: "balance-title" }, "Your balance"),
      account
        ? h("div", { class: "balance" },
          h("span", { class: `big ${account.balance < 0 ? "negative" : ""}`, "data-testid": "balance" }, amountText(account.balance, account.currency)),
          h("span", { class: "muted" }, `can go down to ${amountText(account.floor, account.currency)}`))
        : h("p", { class: "muted" }, "No account yet."),
      account && account.near_floor ? h("p", { class: "error-text" }, "You are near your credit floor.") : null,
      h("div", { class: "row" },
        h("button", { onclick: () => (location.hash = "#/hours") }, "Log hours or pay"))),
    h("section", { class: "card", "aria-labelledby": "vote-title" },
      h("h2", { id: "vote-title" }, "Waiting for your vote"),
      waiting.length
        ? h("ul", { class: "list" }, waiting.map(proposalRow))
        : empty("Nothing to vote on", "New proposals show up here.")),
    asked.length
      ? h("section", { class: "card", "aria-labelledby": "asked-title" },
        h("h2", { id: "asked-title" }, "Asked to pay"),
        h("ul", { class: "list" }, asked.map(requestRow)))
      : null,
    h("section", { class: "card", "aria-labelledby": "recent-title" },
      h("h2", { id: "recent-title" }, "Recent activity"),
      history.entries.length
        ? h("ul", { class: "list" }, history.entries.slice().reverse().map((entry) => entryRow(entry)))
        : empty("No hours yet", "When you log hours for someone, or they for you, it shows here.")),
  );
}

function requestRow(request) {
  const answer = (choice) => async (event) => {
    event.target.disabled = true;
    try {
      await request_("POST", "/ledger/requests/answer", { request: request.id, answer: choice, reason: "" });
      toast(choice === "accept" ? "Paid." : "Declined.");
      await route();
    } catch (error) {
      toast(error.message, "error");
      event.target.disabled = false;
    }
  };
  return h("li", {},
    h("div", { class: "entry-main" },
      h("div", { class: "title" }, `${nameOf(request.payee)} asks ${amountText(request.amount, request.currency)}`),
      h("div", { class: "muted small" }, [request.memo, when(request.time_ms)].filter(Boolean).join(" · "))),
    h("div", { class: "row" },
      h("button", { onclick: answer("accept") }, "Pay"),
      h("button", { class: "secondary", onclick: answer("decline") }, "Decline")));
}

// Writes go through `request` too; named apart for readability at call sites.
const request_ = request;

async function hoursView() {
  await loadMembers();
  const others = activeMembers().filter((member) => member.did !== state.me.did);
  const list = h("ul", { class: "list", id: "history" });
  const search = h("input", { type: "search", id: "history-search", placeholder: "Search by name or memo", "aria-label": "Search history" });
  const more = h("button", { class: "secondary", hidden: true }, "Show older");
  let entries = [];
  const render = () => {
    const needle = search.value.trim().toLowerCase();
    const shown = entries.filter((entry) => !needle || `${nameOf(entry.counterparty)} ${entry.memo}`.toLowerCase().includes(needle));
    list.replaceChildren(...(shown.length ? shown.map((entry) => entryRow(entry, true)) : [h("li", {}, empty(entries.length ? "No match" : "No hours yet", entries.length ? "Try another word." : "Log hours above; they show here."))]));
  };
  const loadPage = async (cursor) => {
    const page = await read(`/ledger/history?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    entries = entries.concat(page.entries.slice().reverse());
    more.hidden = !page.next_cursor;
    state.historyCursor = page.next_cursor || null;
    render();
  };
  search.addEventListener("input", render);
  more.addEventListener("click", () => loadPage(state.historyCursor));
  const exportCsv = async () => {
    const response = await fetch(`${API}/ledger/export?format=csv`, { headers: { Authorization: `Bearer ${token()}` } });
    if (!response.ok) return toast("Could not export; try again.", "error");
    const link = h("a", { href: URL.createObjectURL(await response.blob()), download: "icn-hours.csv" });
    document.body.append(link);
    link.click();
    link.remove();
  };
  const payForm = h("form", { "aria-labelledby": "pay-title", onsubmit: onSubmit(async (data) => {
    await request_("POST", "/ledger/transfer", { to: data.to, amount: data.amount, memo: data.memo });
    toast(`Sent ${data.amount} to ${nameOf(data.to)}.`);
  }, async () => { await loadBalance(); await route(); }) },
    memberSelect("to", "To"),
    field("amount", "Hours", { required: true, placeholder: "1h30m", inputmode: "text", autocomplete: "off" }, "Like 2h, 1h30m, 45m or 2.5h"),
    field("memo", "What for", { placeholder: "Website fixes", maxlength: 500 }),
    h("button", { type: "submit" }, "Send hours"));
  const askForm = h("form", { "aria-labelledby": "ask-title", onsubmit: onSubmit(async (data) => {
    await request_("POST", "/ledger/requests", { payer: data.payer, amount: data.amount, memo: data.memo });
    toast(`Asked ${nameOf(data.payer)} for ${data.amount}.`);
  }) },
    memberSelect("payer", "From"),
    field("amount", "Hours", { required: true, placeholder: "2h", autocomplete: "off" }),
    field("memo", "What for", { placeholder: "Bread for the meeting", maxlength: 500 }),
    h("button", { type: "submit", class: "secondary" }, "Ask to be paid"));
  show(
    h("h1", {}, "Hours"),
    others.length
      ? h("div", { class: "grid two" },
        h("section", { class: "card" }, h("h2", { id: "pay-title" }, "Log hours for someone"), payForm),
        h("section", { class: "card" }, h("h2", { id: "ask-title" }, "Ask to be paid"), askForm))
      : h("section", { class: "card" }, empty("No one to pay yet", "Invite members first: on your computer, run icnctl coop invite.")),
    h("section", { class: "card", "aria-labelledby": "history-title" },
      h("div", { class: "row spread" }, h("h2", { id: "history-title" }, "History"), h("button", { class: "secondary", onclick: exportCsv }, "Export CSV")),
      search, list, more),
  );
  await loadPage(null);
}

// What a proposal does if it passes, in plain words (names, amounts).
function actionText(action) {
  if (!action || action === "decision") return "";
  const [kind, detail] = typeof action === "string" ? [action, {}] : Object.entries(action)[0];
  switch (kind) {
    case "budget":
      return `Pays ${amountText(detail.amount, detail.currency)} from the commons to ${nameOf(detail.to)}`;
    case "add_member": return `Adds ${detail.name || nameOf(detail.did)} as a member`;
    case "remove_member": return `Removes ${nameOf(detail.did)}`;
    case "freeze": return `Freezes ${nameOf(detail.did)}`;
    case "unfreeze": return `Lifts the freeze on ${nameOf(detail.did)}`;
    case "set_params": return `Changes ${Object.entries(detail.params || {}).map(([key, value]) => `${key} to ${value}`).join(", ")}`;
    case "set_roles": return `Gives ${nameOf(detail.did)} the roles ${(detail.roles || []).join(", ") || "none"}`;
    case "charter": return `Rewrites the charter's ${detail.section} section`;
    case "reverse": return `Reverses payment ${String(detail.entry).slice(0, 8)}`;
    case "create_circle": return `Creates the circle ${detail.name}`;
    default: return kind.replaceAll("_", " ");
  }
}

function proposalRow(proposal) {
  return h("li", {},
    h("a", { class: "rowlink entry-main", href: `#/proposals/${proposal.id}` },
      h("div", { class: "title" }, proposal.title),
      actionText(proposal.action) ? h("div", { class: "small", "data-testid": "action" }, actionText(proposal.action)) : null,
      h("div", { class: "muted small" }, `${proposal.template} · by ${nameOf(proposal.proposer)} · ${proposal.status === "open" ? `closes ${when(proposal.closes_at_ms)}` : when(proposal.closed_ms || proposal.opened_ms)}`)),
    h("span", { class: `badge ${proposal.status}` }, proposal.status.replace("_", " ")));
}

async function proposalsView() {
  const [{ proposals }, { templates }] = await Promise.all([read("/governance/proposals"), read("/governance/templates"), loadMembers()]);
  const open = proposals.filter((p) => p.status === "open" || p.status === "draft");
  const closed = proposals.filter((p) => !(p.status === "open" || p.status === "draft"));
  const template = h("select", { id: "field-template", name: "template", required: true },
    templates.map((t) => h("option", { value: t.name }, `${t.name} — ${t.description}`)));
  const kind = h("select", { id: "field-kind", name: "kind" },
    h("option", { value: "decision" }, "A decision (no automatic effect)"),
    h("option", { value: "budget" }, "Pay hours from the commons"));
  const budgetFields = h("div", { class: "grid", hidden: true },
    memberSelect("budget_to", "Pay whom", { exceptMe: false }),
    field("budget_amount", "How much", { placeholder: "10h" }));
  const showBudget = () => {
    budgetFields.hidden = kind.value !== "budget";
    for (const control of budgetFields.querySelectorAll("select, input")) control.disabled = budgetFields.hidden;
  };
  kind.addEventListener("change", showBudget);
  showBudget();
  const form = h("form", { onsubmit: onSubmit(async (data) => {
    const action = data.kind === "budget"
      ? { type: "budget", to: data.budget_to, amount: data.budget_amount, memo: data.title }
      : { type: "decision" };
    const body = { title: data.title, text: data.text, template: data.template, action };
    if (data.duration) body.duration = data.duration;
    await request_("POST", "/governance/proposals", body);
    toast("Proposal opened: members can vote now.");
  }, () => route()) },
    field("title", "Title", { required: true, maxlength: 200, placeholder: "Buy a shared printer" }),
    field("text", "Details", { multiline: true, maxlength: 4000 }),
    h("div", { class: "field" }, h("label", { for: "field-template" }, "How we decide"), template),
    h("div", { class: "field" }, h("label", { for: "field-kind" }, "If it passes"), kind),
    budgetFields,
    field("duration", "Voting time", { placeholder: "7d" }, "Leave empty for the template's; like 2d, 24h or 30m"),
    h("button", { type: "submit" }, "Open for votes"));
  show(
    h("h1", {}, "Decisions"),
    h("section", { class: "card" }, h("h2", {}, "Open"),
      open.length ? h("ul", { class: "list" }, open.map(proposalRow)) : empty("Nothing open", "Start a proposal below; everyone is asked to vote.")),
    h("details", { class: "card" }, h("summary", {}, h("strong", {}, "New proposal")), form),
    h("section", { class: "card" }, h("h2", {}, "Decided"),
      closed.length ? h("ul", { class: "list" }, closed.map(proposalRow)) : empty("No decisions yet", "Closed proposals and their outcomes are kept here.")),
  );
}

function tallyBar(tally) {
  if (!tally) return h("p", { class: "muted" }, "Results are hidden until the vote closes.");
  const total = Math.max(1, tally.electorate || tally.voted || 1);
  const part = (name) => h("span", { class: name, style: null, "data-width": tally[name] || 0 });
  const bar = h("div", { class: "bar", role: "img", "aria-label": `yes ${tally.yes}, no ${tally.no}, abstain ${tally.abstain}, block ${tally.block || 0}` },
    ["yes", "no", "abstain", "block"].map(part));
  // Widths set through the DOM (the page's policy forbids inline style attributes).
  for (const span of bar.children) span.style.width = `${(100 * Number(span.dataset.width)) / total}%`;
  return h("div", {}, bar,
    h("p", { class: "small", "data-testid": "tally" }, `Yes ${tally.yes} · No ${tally.no} · Abstain ${tally.abstain}${tally.block ? ` · Block ${tally.block}` : ""} — ${tally.voted} of ${tally.electorate} voted`));
}

async function proposalView(id) {
  await loadMembers();
  const proposal = await read(`/governance/proposals/${encodeURIComponent(id)}`);
  const mine = (proposal.votes || []).find((vote) => vote.voter === state.me.did);
  const canVote = proposal.status === "open" && proposal.electorate.includes(state.me.did);
  const reason = h("input", { id: "vote-reason", name: "reason", type: "text", maxlength: 500, placeholder: "Why (needed to block)" });
  const vote = (choice) => async (event) => {
    event.target.disabled = true;
    try {
      await request_("POST", "/governance/vote", { proposal: proposal.id, choice, reason: reason.value });
      toast(`Voted ${choice}.`);
      await route();
    } catch (error) {
      toast(error.message, "error");
      event.target.disabled = false;
    }
  };
  const choice = (value, label) => h("button", { class: "secondary", "aria-pressed": mine && mine.choice === value ? "true" : "false", onclick: vote(value) }, label);
  show(
    h("p", {}, h("a", { href: "#/proposals" }, "← All decisions")),
    h("h1", {}, proposal.title),
    h("section", { class: "card" },
      h("p", {}, h("span", { class: `badge ${proposal.status}`, "data-testid": "status" }, proposal.status.replace("_", " ")), " ",
        h("span", { class: "muted small" }, `${proposal.template} · by ${nameOf(proposal.proposer)} · ${proposal.status === "open" ? `closes ${new Date(proposal.closes_at_ms).toLocaleString()}` : ""}`)),
      actionText(proposal.action) ? h("p", { "data-testid": "action" }, h("strong", {}, "If it passes: "), actionText(proposal.action)) : null,
      proposal.text ? h("p", {}, proposal.text) : null,
      proposal.outcome ? h("p", {}, h("strong", {}, "Outcome: "), proposal.outcome) : null,
      tallyBar(proposal.tally)),
    canVote
      ? h("section", { class: "card", "aria-labelledby": "vote-title" },
        h("h2", { id: "vote-title" }, mine ? `Your vote: ${mine.choice} (you can change it until the close)` : "Your vote"),
        h("div", { class: "choices" }, choice("yes", "Yes"), choice("no", "No"), choice("abstain", "Abstain"), choice("block", "Block")),
        h("div", { class: "field" }, h("label", { for: "vote-reason" }, "Reason"), reason))
      : null,
    proposal.votes && proposal.votes.length
      ? h("section", { class: "card" }, h("h2", {}, "Votes"),
        h("ul", { class: "list" }, proposal.votes.map((v) => h("li", {}, h("span", {}, nameOf(v.voter)), h("span", { class: "badge" }, v.choice)))))
      : null,
  );
}

async function membersView() {
  const [members, edges, recovery] = await Promise.all([loadMembers(), read("/trust/edges"), read("/recovery")]);
  const trusted = new Map(edges.outgoing.map((edge) => [edge.to, edge]));
  const applicants = members.filter((m) => m.status === "applicant");
  const current = members.filter((m) => m.status === "active" || m.status === "suspended");
  const trustForm = (member) => {
    const stated = trusted.get(member.did)?.stated?.general;
    const input = h("input", { type: "range", min: 0, max: 100, step: 5, value: Math.round((stated ?? 0.5) * 100), "aria-label": `Your trust in ${member.name || "this member"}` });
    const shown = h("output", { class: "small muted" }, `${input.value}%`);
    input.addEventListener("input", () => { shown.textContent = `${input.value}%`; });
    return h("form", { class: "trust", onsubmit: onSubmit(async () => {
      await request_("POST", "/trust", { to: member.did, score: Number(input.value) / 100 });
      toast(`Trust in ${nameOf(member.did)} saved.`);
    }, () => route()) }, input, shown, h("button", { type: "submit", class: "secondary" }, stated === undefined ? "Trust" : "Update"));
  };
  show(
    h("h1", {}, "Members"),
    applicants.length
      ? h("section", { class: "card" }, h("h2", {}, "Asking to join"),
        h("ul", { class: "list" }, applicants.map((member) => h("li", {},
          h("div", { class: "entry-main" }, h("div", { class: "title" }, member.name || member.did), h("div", { class: "muted small" }, member.application_note || "", ` · ${stillNeeded(member)}`)),
          member.vouched_by.includes(state.me.did)
            ? h("span", { class: "badge" }, "vouched")
            : h("button", { onclick: async (event) => {
              event.target.disabled = true;
              try { await request_("POST", "/members/vouch", { applicant: member.did }); toast(`You vouched for ${member.name}.`); await route(); } catch (error) { toast(error.message, "error"); event.target.disabled = false; }
            } }, "Vouch")))))
      : null,
    h("section", { class: "card" }, h("h2", {}, `${current.length} member${current.length === 1 ? "" : "s"}`),
      h("ul", { class: "list" }, current.map((member) => h("li", {},
        h("div", { class: "entry-main" },
          h("div", { class: "title" }, member.name || member.did, member.did === state.me.did ? " (you)" : ""),
          h("div", { class: "muted small" }, [member.tier, member.status !== "active" ? member.status : "", member.roles.join(", "), member.skills.join(", ")].filter(Boolean).join(" · "))),
        member.did === state.me.did ? null : trustForm(member))))),
    inviteCard(),
    recoveryCard(recovery),
  );
}

// Bringing someone in: the invitation they paste on their set-up page (or
// give to `icnctl coop join`), and a proposal to add a member by vote.
function inviteCard() {
  const shown = h("div", {});
  const showInvitation = async (event) => {
    event.target.disabled = true;
    try {
      const { ticket } = await read("/invitation");
      const box = h("textarea", { readonly: true, rows: 3, "aria-label": "Invitation", "data-testid": "invitation" });
      box.value = ticket;
      shown.replaceChildren(box,
        h("p", { class: "small muted" }, "Send it to them. They paste it on their node's set-up page (or run icnctl coop join with it and their name); members then vouch for them."),
        h("button", { class: "secondary", onclick: async () => {
          try { await navigator.clipboard.writeText(ticket); toast("Invitation copied."); } catch { box.select(); }
        } }, "Copy"));
    } catch (error) {
      toast(error.message, "error");
      event.target.disabled = false;
    }
  };
  const propose = h("form", { onsubmit: onSubmit(async (data) => {
    await request_("POST", "/governance/proposals", {
      title: `Add ${data.name} as a member`,
      text: "",
      template: "simple-majority",
      action: { type: "add_member", member: data.member, name: data.name },
    });
    toast(`Proposed adding ${data.name}; members vote on the Decisions page.`);
  }) },
    field("member", "Their DID", { required: true, placeholder: "did:icn:…", autocomplete: "off" }, "They see it on their node (icnctl id show)"),
    field("name", "Their name", { required: true, autocomplete: "off" }),
    h("button", { type: "submit", class: "secondary" }, "Propose adding them"));
  return h("section", { class: "card" }, h("h2", {}, "Invite someone"),
    h("button", { onclick: showInvitation }, "Show an invitation"), shown,
    h("details", {}, h("summary", {}, "Or propose adding a member by vote"), propose));
}

// Social recovery: your guardians, a recovery of you you may cancel, and
// those of members you guard, to approve once you have called them.
function recoveryCard(recovery) {
  recovery.of_you = recovery.of_you.filter((item) => item.request !== recovery.this_device_request);
  const requestAction = (path, request, label, done) => h("button", { class: path.endsWith("cancel") ? "danger" : "", onclick: async (event) => {
    event.target.disabled = true;
    try { await request_("POST", path, { request }); toast(done); await route(); } catch (error) { toast(error.message, "error"); event.target.disabled = false; }
  } }, label);
  const pending = (item, mine) => h("li", {},
    h("div", { class: "entry-main" },
      h("div", { class: "title" }, mine ? "Someone is recovering YOUR identity to a new device" : `${item.member.name || item.member.did} is recovering to a new device`),
      h("div", { class: "muted small" }, `${item.approved_by.length} of ${item.needed} approvals`, item.ready_at_ms ? ` · takes over ${when(item.ready_at_ms)}` : "")),
    mine
      ? requestAction("/recovery/cancel", item.request, "Not me: cancel", "Cancelled: that device can never take over your identity.")
      : item.approved_by_you
        ? h("span", { class: "badge" }, "approved")
        : requestAction("/recovery/approve", item.request, "Approve", `You approved ${item.member.name || "their"} recovery.`));
  const others = activeMembers().filter((member) => member.did !== state.me.did);
  const chosen = new Set(recovery.guardians.map((guardian) => guardian.did));
  const guardiansForm = h("form", { onsubmit: onSubmit(async (data, form) => {
    const guardians = [...form.querySelectorAll("input[name=guardian]:checked")].map((box) => box.value);
    await request_("POST", "/recovery/guardians", { guardians, threshold: Number(data.threshold), delay_hours: Number(data.delay_hours) });
    toast("Guardians saved.");
  }, () => route()) },
    h("fieldset", {}, h("legend", {}, "Guardians"), others.map((member) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "guardian", value: member.did, checked: chosen.has(member.did) || null }), " ", member.name || member.did))),
    field("threshold", "Approvals needed", { type: "number", min: 1, max: 9, required: true, value: recovery.threshold || 2 }),
    field("delay_hours", "Hours before a new device takes over", { type: "number", min: 0, max: 720, step: "any", required: true, value: recovery.delay_hours }, "Any of your devices can cancel during this time"),
    h("button", { type: "submit", class: "secondary" }, "Save guardians"));
  const approveForm = h("form", { onsubmit: onSubmit(async (data) => {
    await request_("POST", "/recovery/approve", { request: data.request.trim() });
    toast("Recovery approved.");
  }, () => route()) },
    field("request", "A member's recovery request", { required: true, autocomplete: "off", spellcheck: "false" }, "The icnrq1… text their new device shows. Call them first to be sure it is them."),
    h("button", { type: "submit", class: "secondary" }, "Approve"));
  return h("section", { class: "card", id: "recovery" }, h("h2", {}, "Recovery"),
    recovery.frozen_by ? h("p", { class: "error-text", role: "alert" }, `Your identity is frozen by ${recovery.frozen_by.name || recovery.frozen_by.did}: ask them to unfreeze it.`) : null,
    recovery.of_you.length || recovery.you_guard.length
      ? h("ul", { class: "list" }, recovery.of_you.map((item) => pending(item, true)), recovery.you_guard.map((item) => pending(item, false)))
      : null,
    h("p", { class: "small" }, recovery.guardians.length
      ? `If you lose every device, ${recovery.threshold} of ${recovery.guardians.map((g) => g.name || g.did).join(", ")} can give your identity to a new one, ${recovery.delay_hours} hours after they approve.`
      : "You have no guardians yet: your node names the members who vouched for you once there are two."),
    guardiansForm,
    recovery.guarding.length ? h("p", { class: "small muted" }, `You are a guardian of ${recovery.guarding.map((g) => g.name || g.did).join(", ")}.`) : null,
    recovery.guarding.length
      ? h("ul", { class: "list", "aria-label": "Members you guard" }, recovery.guarding.map((member) => {
        const frozen = recovery.guarding_frozen.includes(member.did);
        const name = member.name || member.did;
        return h("li", {},
          h("div", { class: "entry-main" }, h("div", { class: "title" }, name),
            h("div", { class: "muted small" }, frozen ? "Frozen: nothing they sign counts." : "If their device is stolen, freeze them: nothing it signs counts until a guardian unfreezes them or they recover.")),
          h("button", { class: frozen ? "secondary" : "danger", onclick: async (event) => {
            event.target.disabled = true;
            try {
              await request_("POST", frozen ? "/recovery/unfreeze" : "/recovery/freeze", { member: member.did });
              toast(frozen ? `${name} is unfrozen.` : `${name} is frozen.`);
              await route();
            } catch (error) { toast(error.message, "error"); event.target.disabled = false; }
          } }, frozen ? `Unfreeze ${name}` : `Freeze ${name}`));
      }))
      : null,
    recovery.guarding.length ? approveForm : null);
}

async function settingsView() {
  await loadMembers();
  const me = state.members.find((member) => member.did === state.me.did);
  const form = h("form", { onsubmit: onSubmit(async (data) => {
    await request_("POST", "/members/profile", { name: data.name, skills: data.skills.split(",").map((s) => s.trim()).filter(Boolean) });
    toast("Profile saved.");
  }, () => start()) },
    field("name", "Your name", { required: true, maxlength: 100, value: me?.name || "" }),
    field("skills", "Skills", { value: (me?.skills || []).join(", "), placeholder: "baking, accounts" }, "Separated by commas"),
    h("button", { type: "submit" }, "Save"));
  show(
    h("h1", {}, "Settings"),
    h("section", { class: "card" }, h("h2", {}, "Profile"), form),
    h("section", { class: "card" }, h("h2", {}, "This node"),
      h("p", { class: "small" }, "Your identity: ", h("code", {}, state.me.did)),
      h("p", { class: "small muted" }, state.me.can_sign ? "This node holds your keys: you can pay, propose and vote here." : "This node reads for you but cannot sign for you; use your own node to pay or vote."),
      h("p", { class: "small muted" }, "Lost a laptop? Your guardians can give your identity to a new device (Members → Recovery); a paper key (icnctl id paper-key) also still signs for you.")),
    h("section", { class: "card" }, h("h2", {}, "Sign out"),
      h("p", { class: "small muted" }, "Signs this browser out. To sign in again, run icnctl web open on your computer."),
      h("button", { class: "danger", onclick: () => { localStorage.clear(); indexedDB.deleteDatabase("icn"); location.hash = ""; location.reload(); } }, "Sign out of this browser")),
  );
}

// First start: this node has no identity yet. The passphrase goes to this
// node only (the page talks to the node that served it). A member who
// already has an identity restores it here instead.
function setupView(setup) {
  document.getElementById("tabs").hidden = true;
  document.getElementById("balance-pill").hidden = true;
  if (setup.backup) return restoreView(setup);
  const code = setup.code_required ? () => field("code", "Set-up code", { required: true, autocomplete: "off" }, "The code icnd printed in its terminal when it started") : () => null;
  const form = h("form", { "aria-label": "Create your identity", onsubmit: onSubmit(async (data) => {
    if (data.passphrase !== data.repeat) throw new Error("The two passphrases are not the same.");
    const pair = await browserKey();
    const body = { passphrase: data.passphrase, label: browserLabel() };
    if (pair) body.key = await publicKeyText(pair);
    if (data.code) body.code = data.code.trim();
    keepToken(await call("POST", "/setup/identity", body));
    sessionStorage.setItem("icn.name", data.name.trim());
  }, () => start()) },
    field("name", "Your name", { required: true, maxlength: 100, autocomplete: "name" }, "How members will see you"),
    field("passphrase", "Choose a passphrase", { type: "password", required: true, autocomplete: "new-password" }, "Three or four words nobody would guess. It protects your key on this computer and signs you in; it is never sent anywhere else."),
    field("repeat", "Repeat it", { type: "password", required: true, autocomplete: "new-password" }),
    code(),
    h("button", { type: "submit" }, "Create my identity"));
  const upload = h("form", { "aria-label": "Restore from a backup file", onsubmit: onSubmit(async (data) => {
    if (!(data.file instanceof File) || !data.file.size) throw new Error("Choose the backup file (icn-backup-….icnbak).");
    const headers = { "Content-Type": "application/octet-stream", Accept: "application/json" };
    if (data.code) headers["ICN-Setup-Code"] = data.code.trim();
    const response = await fetch(`${API}/setup/backup`, { method: "PUT", headers, body: data.file });
    const answer = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, answer);
  }, () => start()) },
    field("file", "Backup file", { type: "file", required: true, accept: ".icnbak" }, "An icn-backup-….icnbak file: from your node's backups folder, a USB stick, or wherever you kept a copy"),
    code(),
    h("button", { type: "submit", class: "secondary" }, "Open the backup"));
  const device = h("form", { "aria-label": "Sign for me on this computer", onsubmit: onSubmit(async (data) => {
    if (data.passphrase !== data.repeat) throw new Error("The two passphrases are not the same.");
    const pair = await browserKey();
    const body = { passphrase: data.passphrase, label: browserLabel(), ticket: data.ticket.trim(), member: data.member.trim() };
    if (data.paper_key.trim()) body.paper_key = data.paper_key.trim();
    if (pair) body.key = await publicKeyText(pair);
    if (data.code) body.code = data.code.trim();
    keepToken(await call("POST", "/setup/device", body));
  }, () => start()) },
    field("ticket", "A member's invitation", { required: true, autocomplete: "off", spellcheck: "false" }, "The icn1… text a member sends you (Members → Invite someone on their page): their node gives this one the co-op"),
    field("member", "Your identity", { required: true, autocomplete: "off", spellcheck: "false", placeholder: "did:icn:…" }, "Settings on any of your devices shows it; so does icnctl coop invite --recover \"Your Name\" on a guardian's computer"),
    field("paper_key", "Paper key or device code (if you have one)", { autocomplete: "off", spellcheck: "false" }, "The words, separated by spaces. Leave empty to ask your guardians."),
    field("passphrase", "A passphrase for this computer", { type: "password", required: true, autocomplete: "new-password" }),
    field("repeat", "Repeat it", { type: "password", required: true, autocomplete: "new-password" }),
    code(),
    h("button", { type: "submit", class: "secondary" }, "Sign for me here"));
  show(h("h1", {}, "Welcome"),
    h("section", { class: "card" },
      h("p", {}, "This computer will keep your co-op's records with the other members' computers. First, who you are."),
      form),
    h("h2", {}, "Already a member?"),
    h("section", { class: "card" },
      h("p", {}, "Bring your identity and your co-op's records back from a backup file."),
      upload,
    ),
    h("section", { class: "card" },
      h("h2", {}, "No backup?"),
      h("p", {}, "With a paper key (or a code from your other device) this computer signs for you once it has caught up. Without one, your guardians approve it: call them."),
      device));
}

// A backup file has arrived: unlock it with the passphrase it was made with.
function restoreView(setup) {
  const backup = setup.backup;
  const form = h("form", { "aria-label": "Unlock the backup", onsubmit: onSubmit(async (data) => {
    const pair = await browserKey();
    const body = { passphrase: data.passphrase, label: browserLabel(), standalone: data.standalone === "on" };
    if (pair) body.key = await publicKeyText(pair);
    if (data.code) body.code = data.code.trim();
    keepToken(await call("POST", "/setup/restore", body));
    toast(body.standalone ? "Restored. Your node signs at once." : "Restored. Your node signs again once it has caught up with the other members' nodes.");
  }, () => start()) },
    field("passphrase", "The backup's passphrase", { type: "password", required: true, autocomplete: "current-password" }, "The passphrase you signed in with when the backup was made"),
    setup.code_required ? field("code", "Set-up code", { required: true, autocomplete: "off" }, "The code icnd printed in its terminal when it started") : null,
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "standalone" }), " No other member's node is running: sign at once"),
    h("p", { class: "small muted" }, "Leave this unticked if other members have nodes: yours then waits until it has caught up with most of them, so nothing your lost computer signed after the backup collides with what you sign now."),
    h("button", { type: "submit" }, "Restore"));
  const other = h("button", { class: "secondary", onclick: async (event) => {
    event.target.disabled = true;
    // A new file replaces this one; until then the choice stays here.
    setup.backup = null;
    setupView(setup);
  } }, "Choose another file");
  show(h("h1", {}, "Restore your node"),
    h("section", { class: "card" },
      h("p", {}, "A backup of ", h("code", {}, backup.did), ` (${Math.max(1, Math.round(backup.bytes / 1024))} KB).`),
      form, other));
}

// A node without a co-op: join one with the invitation a member sent
// (`#join=<invitation>` in the link fills it in), or found one.
function joinView() {
  const invitation = sessionStorage.getItem("icn.join") || "";
  const myName = sessionStorage.getItem("icn.name") || "";
  const choice = (name, legend, options) => h("fieldset", {}, h("legend", {}, legend),
    options.map(([value, text], index) => h("label", { class: "check" },
      h("input", { type: "radio", name, value, checked: index === 0 || null }), " ", text)));
  const found = h("form", { "aria-label": "Found a co-op", onsubmit: onSubmit(async (data) => {
    await request_("POST", "/setup/coop", {
      name: data.coop.trim(), your_name: data.your_name.trim(),
      floor_hours: Number(data.floor), ceiling_hours: Number(data.ceiling),
      admission: data.admission, charter: data.charter,
    });
    toast(`${data.coop.trim()} is founded. Invite members from the Members page.`);
  }, () => start()) },
    field("coop", "The co-op's name", { required: true, maxlength: 100 }),
    field("your_name", "Your name", { required: true, maxlength: 100, value: myName }, "How members will see you"),
    h("p", { class: "small muted" }, "Members trade hours. A member can go below zero, down to a limit, and is flagged (never blocked) when far above zero."),
    field("floor", "Hours a member may owe at most", { type: "number", min: 0, max: 10000, step: 1, required: true, value: 40 }),
    field("ceiling", "Flag a member above this many hours", { type: "number", min: 0, max: 10000, step: 1, required: true, value: 80 }),
    choice("admission", "How do new members get in?", [["vouches", "Two members vouch for them"], ["proposal", "Only by a vote of the co-op"]]),
    choice("charter", "Changing the charter needs", [["two_thirds", "Two thirds of the votes"], ["three_quarters", "Three quarters"], ["everyone", "Everyone (consensus)"]]),
    h("p", { class: "small muted" }, "Everyday decisions use a template chosen per proposal (simple majority, consent, budget approval…)."),
    h("button", { type: "submit" }, "Found the co-op"));
  const form = h("form", { "aria-label": "Join with an invitation", onsubmit: onSubmit(async (data) => {
    await request_("POST", "/coop/join", { ticket: data.ticket.trim(), name: data.name.trim(), note: data.note });
    sessionStorage.removeItem("icn.join");
    toast("Your application is on its way. Members vouch for you next.");
  }, () => start()) },
    field("ticket", "Invitation", { required: true, value: invitation, autocomplete: "off", spellcheck: "false" }, "The icn1… text a member sent you"),
    field("name", "Your name", { required: true, maxlength: 100, value: myName }, "How members will see you"),
    field("note", "A word about you", { maxlength: 500, placeholder: "I fix bikes" }),
    h("button", { type: "submit" }, "Ask to join"));
  show(h("h1", {}, "Join your co-op"),
    h("section", { class: "card" },
      h("p", {}, "Paste the invitation a member sent you. Their node must be running; two members then vouch for you, and your node takes part from then on."),
      form),
    h("h2", {}, "Or found a new co-op"),
    h("section", { class: "card" },
      h("p", {}, "You will be its first member; invite the others from the Members page."),
      found));
}

function signedOutView(message) {
  document.getElementById("tabs").hidden = true;
  document.getElementById("balance-pill").hidden = true;
  const form = h("form", { onsubmit: onSubmit(async (data) => {
    const pair = await browserKey();
    const body = { passphrase: data.passphrase, label: browserLabel() };
    if (pair) body.key = await publicKeyText(pair);
    keepToken(await call("POST", "/auth/passphrase", body));
  }, () => start()) },
    field("passphrase", "Your passphrase", { type: "password", required: true, autocomplete: "current-password" }, "The one you chose when you set up ICN on this computer"),
    h("button", { type: "submit" }, "Sign in"));
  show(
    h("h1", {}, "Sign in"),
    h("section", { class: "card" },
      message ? h("p", { class: "error-text", role: "alert" }, message) : null,
      form,
      h("p", { class: "muted small" }, "This browser then stays signed in by itself. Or, on the computer where your node runs, type ", h("code", {}, "icnctl web open"), " and open the link it prints.")),
  );
}

// ---------- routing and live updates ----------

const views = [
  [/^#\/?$/, "home", homeView],
  [/^#\/hours$/, "hours", hoursView],
  [/^#\/proposals$/, "proposals", proposalsView],
  [/^#\/proposals\/([\w-]+)$/, "proposals", proposalView],
  [/^#\/members$/, "members", membersView],
  [/^#\/settings$/, "settings", settingsView],
];

async function route() {
  const hash = location.hash || "#/";
  for (const [pattern, tab, view] of views) {
    const match = hash.match(pattern);
    if (!match) continue;
    for (const link of document.querySelectorAll("#tabs a")) {
      if (link.dataset.tab === tab) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    try {
      await view(...match.slice(1));
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return signedOutView("Your sign-in has ended.");
      show(h("section", { class: "card" }, h("p", { class: "error-text", role: "alert" }, error.message), error.hint ? h("p", { class: "muted" }, error.hint) : null,
        h("button", { class: "secondary", onclick: route }, "Try again")));
    }
    return;
  }
  location.hash = "#/";
}

let events = null;
let refreshTimer = null;

function listen() {
  if (events) events.close();
  events = new EventSource(`${API}/events?token=${encodeURIComponent(token())}`);
  const refresh = () => {
    clearTimeout(refreshTimer);
    // Several events often arrive together: one refresh for them all.
    refreshTimer = setTimeout(async () => {
      // Re-rendering would throw away what the member is typing, or a form
      // they opened: refresh only the header's balance then.
      if (busyHere()) {
        loadBalance().catch(() => {});
        return;
      }
      refreshing = true;
      try { await route(); } finally { refreshing = false; }
    }, 250);
  };
  for (const kind of ["ledger.transfer", "ledger.request", "ledger.answer", "gov.propose", "gov.open", "gov.vote", "gov.close", "member.apply", "member.vouch", "member.admit", "member.profile", "trust.edge", "identity.guardians", "identity.recovery_approve", "identity.recovery_cancel", "identity.recover", "identity.freeze", "identity.unfreeze", "lagged"]) {
    events.addEventListener(kind, refresh);
  }
  // A stream that dropped and came back may have missed events: catch up
  // once it is open again (not on the first open: the page was just drawn).
  let opened = false;
  events.onopen = () => {
    if (opened) refresh();
    opened = true;
  };
  events.onerror = () => {
    // EventSource retries by itself; a token that ran out needs a new stream.
    if (events.readyState === EventSource.CLOSED) setTimeout(async () => { if (await signInWithKey()) listen(); }, 5000);
  };
}

async function start() {
  const join = location.hash.match(/^#join=(icn1[1-9A-HJ-NP-Za-km-z]+)$/);
  if (join) {
    sessionStorage.setItem("icn.join", join[1]);
    history.replaceState(null, "", "/");
  }
  const login = location.hash.match(/^#login=([1-9A-HJ-NP-Za-km-z]+)$/);
  if (login) {
    history.replaceState(null, "", "/");
    try {
      await signInWithLink(login[1]);
    } catch (error) {
      return signedOutView(error.message);
    }
  }
  const setup = await call("GET", "/setup").catch(() => null);
  if (setup && !setup.identity) return setupView(setup);
  if (!token() && !(await signInWithKey())) return signedOutView();
  try {
    state.me = await read("/me");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      localStorage.removeItem("icn.token");
      if (await signInWithKey()) return start();
      return signedOutView("Your sign-in has ended.");
    }
    return show(h("section", { class: "card" }, h("p", { class: "error-text" }, error.message)));
  }
  if (!state.me.coop) return joinView();
  document.getElementById("coop-name").textContent = state.me.coop.name;
  document.title = `${state.me.coop.name} — ICN`;
  document.getElementById("tabs").hidden = false;
  await loadMembers().catch(() => {});
  listen();
  await route();
}

window.addEventListener("hashchange", () => { if (state.me) route(); });
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});
start();
