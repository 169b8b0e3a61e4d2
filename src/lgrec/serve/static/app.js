// lgrec web page: vanilla JS, no build step. All text is inserted with textContent (no HTML
// injection from item titles); the API key stays in this tab's memory (sessionStorage).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { user: null, recs: [] };

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const key = $("apikey").value.trim();
  if (key) headers["X-API-Key"] = key;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    let detail = data && data.detail !== undefined ? data.detail : res.statusText;
    if (Array.isArray(detail)) detail = detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
    throw new Error(`${res.status} ${data && data.error ? data.error : ""}: ${detail}`);
  }
  return data;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function button(label, cls, onClick) {
  const b = el("button", cls, label);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

function renderItems(list, items, { withActions }) {
  list.replaceChildren();
  for (const it of items) {
    const li = el("li");
    li.dataset.itemId = it.item_id;
    li.append(el("span", "title", it.title), " ");
    const cats = (it.categories || []).join(", ");
    li.append(el("span", "meta", `${it.item_id} · score ${it.score.toFixed(3)}${cats ? " · " + cats : ""}`));
    if (it.reason) li.append(el("div", "reason", it.reason));
    if (withActions) {
      const actions = el("div");
      actions.append(button("like", "like", () => like(it)));
      actions.append(button("similar", "secondary similar", () => showSimilar(it)));
      li.append(actions);
    }
    list.append(li);
  }
}

async function loadProfile() {
  const p = await api(`/users/${encodeURIComponent(state.user)}?limit=15`);
  const parts = [`${p.n_history} items in history`];
  if (p.online_events) parts.push(`${p.online_events} online events`);
  if (p.new) parts.push("created online");
  $("profile-text").textContent = (p.text ? `“${p.text}” — ` : "") + parts.join(" · ");
  const hist = $("history");
  hist.replaceChildren();
  for (const h of p.history.slice().reverse()) {
    const li = el("li");
    li.append(el("span", "title", h.title), " ", el("span", "meta", h.item_id));
    hist.append(li);
  }
}

async function loadRecs() {
  const params = new URLSearchParams({ user: state.user, k: "10", explain: "true" });
  const q = $("query").value.trim();
  if (q) params.set("query", q);
  const r = await api(`/recommend?${params}`);
  state.recs = r.items;
  renderItems($("reclist"), r.items, { withActions: true });
}

async function selectUser() {
  const u = $("user").value.trim();
  if (!u) { setStatus("Type or pick a user id.", true); return; }
  state.user = u;
  try {
    await loadProfile();
    await loadRecs();
    setStatus(`Recommendations for ${u}.`);
  } catch (e) { setStatus(e.message, true); }
}

async function like(item) {
  try {
    await api("/feedback", {
      method: "POST",
      body: { user: state.user, item: item.item_id, event: "like", idempotency_key: newKey() },
    });
    await loadProfile();
    await loadRecs();
    setStatus(`You liked “${item.title}”: recommendations updated.`);
  } catch (e) { setStatus(e.message, true); }
}

async function showSimilar(item) {
  try {
    const r = await api(`/similar?${new URLSearchParams({ item: item.item_id, k: "8" })}`);
    $("similar-of").textContent = `to “${item.title}”`;
    renderItems($("simlist"), r.items, { withActions: false });
  } catch (e) { setStatus(e.message, true); }
}

async function createUser() {
  const id = $("new-id").value.trim();
  const text = $("new-text").value.trim();
  const liked = $("new-liked").value.split(",").map((s) => s.trim()).filter(Boolean);
  const body = { user_id: id, liked_items: liked };
  if (text) body.text = text;
  try {
    await api("/users", { method: "POST", body });
    $("user").value = id;
    await selectUser();
    setStatus(`Created user ${id}.`);
  } catch (e) { setStatus(e.message, true); }
}

async function init() {
  $("apikey").value = sessionStorage.getItem("lgrec-key") || "";
  $("apikey").addEventListener("change", () => sessionStorage.setItem("lgrec-key", $("apikey").value));
  $("load").addEventListener("click", selectUser);
  $("recommend").addEventListener("click", selectUser);
  $("create").addEventListener("click", createUser);
  $("user").addEventListener("keydown", (e) => { if (e.key === "Enter") selectUser(); });
  $("query").addEventListener("keydown", (e) => { if (e.key === "Enter") selectUser(); });
  try {
    const h = await api("/health");
    $("health").textContent = `${h.model} · ${h.n_users} users · ${h.n_items} items` +
      (h.text ? " · text on" : "");
    const list = await api("/users?limit=200");
    const dl = $("userlist");
    for (const u of list.users) { const o = document.createElement("option"); o.value = u; dl.append(o); }
    document.body.dataset.ready = "1";
  } catch (e) { setStatus(e.message, true); }
}

document.addEventListener("DOMContentLoaded", init);
