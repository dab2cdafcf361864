"use strict";
// IOC operator console: sign in, a live alert queue (server-sent events read with
// fetch, so the bearer token travels in a header, never in a URL; after a drop it
// resumes from the last event id, as EventSource would), acknowledge /
// escalate / resolve with a note, per-minute checkpoint flow, camera health.
// Everything the page shows is set with textContent: alert data is never HTML.

(() => {
  const LABELS = window.IOC_LABELS;
  const HANDLER_ROLES = new Set(["operator", "supervisor"]);
  const MAX_ALERTS = 200;
  const OPEN = new Set(["new", "acknowledged", "escalated"]);
  const REFRESH_MS = 30000;

  const state = {
    lang: localStorage.getItem("ioc.lang") || "vi",
    token: sessionStorage.getItem("ioc.token"),
    user: JSON.parse(sessionStorage.getItem("ioc.user") || "null"),
    alerts: new Map(),
    filter: "open",
    crops: new Map(),
    counts: null,
    cameras: null,
    streamAbort: null,
    lastEventId: null,  // stream position: sent as Last-Event-ID when reconnecting
    retryMs: 1000,  // the server's retry: hint
    streamSeq: 0,  // counts alert states applied from the stream (and from our own changes)
    streamed: new Map(),  // alert_id -> streamSeq of its newest such state
    timers: [],
  };

  const $ = (selector, root = document) => root.querySelector(selector);
  const t = (key, values = {}) => {
    let text = LABELS[state.lang][key] ?? LABELS.en[key] ?? key;
    for (const [name, value] of Object.entries(values)) text = text.replace(`{${name}}`, value);
    return text;
  };
  const locale = () => (state.lang === "vi" ? "vi-VN" : "en-GB");
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  };

  // ---------- API ----------
  class SignedOut extends Error {}

  async function api(path, options = {}) {
    const headers = { ...(options.headers || {}), Authorization: `Bearer ${state.token}` };
    const response = await fetch(path, { ...options, headers });
    if (response.status === 401) {
      signOut();
      throw new SignedOut("signed out");
    }
    return response;
  }

  async function apiJson(path, options) {
    const response = await api(path, options);
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
      const error = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  // ---------- time ----------
  function ago(iso) {
    if (!iso) return t("never");
    const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    if (seconds < 10) return t("justNow");
    const span = seconds < 60 ? t("seconds", { n: Math.round(seconds) })
      : seconds < 3600 ? t("minutes", { n: Math.floor(seconds / 60) })
        : seconds < 86400 ? t("hours", { n: Math.floor(seconds / 3600) })
          : t("days", { n: Math.floor(seconds / 86400) });
    return t("ago", { t: span });
  }
  const clock = (iso) => new Intl.DateTimeFormat(locale(), {
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).format(new Date(iso));

  // ---------- language ----------
  function applyLanguage() {
    document.documentElement.lang = state.lang;
    document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((node) => {
      node.placeholder = t(node.dataset.i18nPlaceholder);
    });
    $("#lang").textContent = state.lang === "vi" ? "EN" : "VI";
    $("#lang").title = state.lang === "vi" ? "English" : "Tiếng Việt";
    document.title = `IOC · ${t("title")}`;
    tick();
    renderWho();
    renderAlerts();
    renderCounts();
    renderCameras();
    renderLive(state.liveUp);
  }

  // ---------- sign in / out ----------
  async function signIn(event) {
    event.preventDefault();
    const form = event.target;
    const error = $("#login-error");
    error.textContent = "";
    const response = await fetch("/api/auth/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: form.username.value.trim(), password: form.password.value }),
    });
    if (!response.ok) {
      error.textContent = t(response.status === 429 ? "throttled" : "wrongLogin");
      return;
    }
    const body = await response.json();
    state.token = body.access_token;
    state.user = { username: body.username, role: body.role };
    sessionStorage.setItem("ioc.token", state.token);
    sessionStorage.setItem("ioc.user", JSON.stringify(state.user));
    form.password.value = "";
    start();
  }

  function signOut() {
    state.token = null;
    state.user = null;
    sessionStorage.removeItem("ioc.token");
    sessionStorage.removeItem("ioc.user");
    if (state.streamAbort) state.streamAbort.abort();
    state.timers.forEach(clearInterval);
    state.timers = [];
    state.alerts.clear();
    state.streamed.clear();
    state.lastEventId = null;
    state.crops.forEach((url) => URL.revokeObjectURL(url));
    state.crops.clear();
    $("#console-view").hidden = true;
    $("#signout").hidden = true;
    $("#login-view").hidden = false;
    renderWho();
    renderLive(false);
  }

  function renderWho() {
    const who = $("#who");
    who.textContent = state.user ? `${state.user.username} · ${t(`role_${state.user.role}`)}` : "";
  }

  function renderLive(up) {
    state.liveUp = up;
    const live = $("#live");
    live.textContent = t(up ? "live" : "disconnected");
    live.classList.toggle("on", Boolean(up));
    live.classList.toggle("off", !up);
  }

  // ---------- alerts ----------
  function canHandle() {
    return state.user && HANDLER_ROLES.has(state.user.role);
  }

  function remember(alert) {
    state.alerts.set(alert.alert_id, alert);
    if (state.alerts.size > MAX_ALERTS) {
      const oldest = [...state.alerts.values()].sort((a, b) => a.raised_at.localeCompare(b.raised_at))[0];
      state.alerts.delete(oldest.alert_id);
      state.streamed.delete(oldest.alert_id);
    }
  }

  async function loadAlerts() {
    // a state the stream delivered after this request left is newer than the list's
    const mark = state.streamSeq;
    const page = await apiJson("/api/alerts?limit=100");
    page.data.forEach((alert) => { if ((state.streamed.get(alert.alert_id) || 0) <= mark) remember(alert); });
    renderAlerts();
  }

  async function cropUrl(path) {
    if (state.crops.has(path)) return state.crops.get(path);
    const response = await api(path);
    if (!response.ok) return null;
    const url = URL.createObjectURL(await response.blob());
    state.crops.set(path, url);
    return url;
  }

  function cropNode(alert) {
    const box = el("div", "crop");
    if (alert.kind !== "watchlist_hit") {
      box.classList.add("icon");
      box.append(el("span", "glyph", alert.kind.startsWith("camera") ? "◉" : "≋"));
      return box;
    }
    const img = el("img");
    img.alt = alert.evidence.display || alert.subject;
    box.append(img);
    if (alert.crop_url) {
      cropUrl(alert.crop_url).then((url) => { if (url) img.src = url; else box.classList.add("missing"); })
        .catch(() => box.classList.add("missing"));
    } else {
      box.classList.add("missing");
    }
    return box;
  }

  function detailNodes(alert) {
    const e = alert.evidence || {};
    const nodes = [];
    if (alert.kind === "watchlist_hit") {
      const entry = el("div", "entry");
      entry.append(el("span", `prio p${e.priority ?? 3}`, `P${e.priority ?? "?"}`),
        el("span", "reason", e.reason || ""), el("span", "pattern", e.pattern || ""));
      nodes.push(entry);
      const match = el("div", "match");
      const score = typeof e.score === "number" ? ` · ${t("score")} ${(e.score * 100).toFixed(0)}%` : "";
      match.append(el("span", "label", `${t("match")}: `), el("span", "kind", `${t(e.match_kind || "exact")}${score}`));
      if (e.matched_text && e.matched_text !== e.pattern) match.append(el("span", "matched", ` (${e.matched_text})`));
      if (e.past_read) match.append(el("span", "past", ` · ${t("pastRead")}`));
      nodes.push(match);
      const route = Array.isArray(e.route) ? e.route : [];
      if (route.length) {
        const list = el("ol", "route");
        list.setAttribute("aria-label", t("route"));
        route.slice(-6).forEach((stop) => {
          const item = el("li");
          item.append(el("b", null, stop.checkpoint_id || "?"),
            el("span", null, ` ${stop.captured_at ? clock(stop.captured_at) : ""} ${stop.direction ? t(stop.direction) : ""}`));
          list.append(item);
        });
        nodes.push(list);
      }
    } else if (alert.kind === "flow_anomaly") {
      nodes.push(el("div", "entry", t("observed", { o: e.observed ?? "?", e: e.expected ?? "?" })));
    } else {
      nodes.push(el("div", "entry", t("lastSeenAt", { t: e.last_seen ? clock(e.last_seen) : t("never") })));
    }
    return nodes;
  }

  function actionsNode(alert) {
    const box = el("div", "actions");
    if (!canHandle() || alert.status === "resolved") return box;
    const note = el("input", "note");
    note.type = "text";
    note.maxLength = 1000;
    note.placeholder = t("note");
    note.setAttribute("aria-label", t("note"));
    box.append(note);
    for (const [status, label] of [["acknowledged", "doAcknowledge"], ["escalated", "doEscalate"],
      ["resolved", "doResolve"]]) {
      const button = el("button", `act act-${status}`, t(label));
      button.type = "button";
      button.dataset.action = status;
      if (status === alert.status && status !== "escalated") button.disabled = true;
      button.addEventListener("click", () => changeStatus(alert.alert_id, status, note, button));
      box.append(button);
    }
    return box;
  }

  function alertNode(alert) {
    const item = el("li", `alert sev-${alert.severity} status-${alert.status}`);
    item.dataset.alertId = alert.alert_id;
    item.dataset.status = alert.status;
    const body = el("div", "body");
    const head = el("div", "head");
    const subject = alert.kind === "watchlist_hit"
      ? el("span", "plate", alert.evidence.display || alert.subject) : el("span", "subject", alert.subject);
    head.append(subject, el("span", "kind", t(alert.kind)),
      el("span", `badge status ${alert.status}`, t(alert.status)));
    const when = el("time", "age", ago(alert.raised_at));
    when.dateTime = alert.raised_at;
    when.title = new Date(alert.raised_at).toLocaleString(locale());
    head.append(when);
    const where = el("div", "where");
    const place = [alert.checkpoint_id, alert.camera_id, alert.evidence?.direction && t(alert.evidence.direction)]
      .filter(Boolean).join(" · ");
    where.append(el("span", `sev ${alert.severity}`, t(alert.severity)), el("span", null, place));
    body.append(head, where, ...detailNodes(alert), actionsNode(alert));
    item.append(cropNode(alert), body);
    return item;
  }

  function visibleAlerts() {
    return [...state.alerts.values()]
      .filter((a) => state.filter === "all" || OPEN.has(a.status))
      .sort((a, b) => b.raised_at.localeCompare(a.raised_at));
  }

  function renderAlerts() {
    const list = $("#alerts");
    if (!list) return;
    // keep notes being typed across re-renders
    const typing = new Map([...list.querySelectorAll("li.alert")].map((li) => [li.dataset.alertId, $(".note", li)?.value || ""]));
    const alerts = visibleAlerts();
    list.replaceChildren(...alerts.map((alert) => {
      const node = alertNode(alert);
      const note = $(".note", node);
      if (note && typing.get(alert.alert_id)) note.value = typing.get(alert.alert_id);
      return node;
    }));
    $("#no-alerts").hidden = alerts.length > 0;
    const open = [...state.alerts.values()].filter((a) => OPEN.has(a.status)).length;
    $("#open-count").textContent = String(open);
    document.querySelectorAll(".tabs button").forEach((b) => b.classList.toggle("active", b.dataset.filter === state.filter));
  }

  function received(alert, fresh) {
    // one card per alert id: a replayed or repeated state updates it in place
    const known = state.alerts.get(alert.alert_id);
    state.streamed.set(alert.alert_id, ++state.streamSeq);
    const merged = { ...known, ...alert };
    // a replayed or extended incident never takes an operator's status back to "new"
    if (known && alert.status === "new" && known.status !== "new") merged.status = known.status;
    remember(merged);
    renderAlerts();
    if (fresh && !known) {
      const node = document.querySelector(`li.alert[data-alert-id="${alert.alert_id}"]`);
      if (node) node.classList.add("arrived");
    }
  }

  async function changeStatus(alertId, status, noteInput, button) {
    button.disabled = true;
    try {
      const updated = await apiJson(`/api/alerts/${alertId}/status`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ status, note: noteInput.value.trim() || null }),
      });
      noteInput.value = "";
      received(updated, false);
    } catch (error) {
      if (!(error instanceof SignedOut)) toast(t("actionFailed", { e: error.message }));
      button.disabled = false;
    }
  }

  function toast(message) {
    const box = $("#toast");
    box.textContent = message;
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  // ---------- live stream (SSE over fetch) ----------
  async function stream() {
    let failures = 0;
    while (state.token) {
      const abort = new AbortController();
      state.streamAbort = abort;
      try {
        const headers = { Accept: "text/event-stream" };
        // the server replays what came after this id, or sends "reset" if it is too old
        if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
        const response = await api("/api/alerts/stream", { signal: abort.signal, headers });
        if (!response.ok) throw new Error(String(response.status));
        renderLive(true);
        failures = 0;
        if (!state.lastEventId) loadAlerts().catch(() => {});  // first stream: the list up to now
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            handleEvent(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (error) {
        if (error instanceof SignedOut || abort.signal.aborted) return;
      }
      renderLive(false);
      failures += 1;
      const delay = Math.min(state.retryMs * 2 ** Math.max(0, failures - 2), 10000);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  function handleEvent(block) {
    let event = "message";
    let id = null;
    const data = [];
    for (const line of block.split("\n")) {
      const colon = line.indexOf(":");
      if (colon === 0) continue;  // a comment (keep-alive)
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id" && !value.includes("\0")) id = value;
      else if (field === "retry" && /^\d+$/.test(value)) state.retryMs = Number(value);
    }
    if (id !== null) state.lastEventId = id;  // a complete block: its id counts
    if (event === "reset") {
      loadAlerts().catch(() => {});  // the gap was too long to replay: take the list again
      return;
    }
    if (event !== "alert" || !data.length) return;
    try {
      received(JSON.parse(data.join("\n")), true);
    } catch { /* ignore a malformed event */ }
  }

  // ---------- counts ----------
  async function loadCounts() {
    const checkpoint = $("#checkpoint").value;
    const query = new URLSearchParams({ minutes: "60" });
    if (checkpoint) query.set("checkpoint_id", checkpoint);
    try {
      state.counts = await apiJson(`/api/counts?${query}`);
    } catch (error) {
      if (error.status === 403) $("#flow-panel").hidden = true;
      return;
    }
    renderCounts();
  }

  function renderCounts() {
    if (!state.counts || !state.chart) return;
    const data = state.counts.data;
    state.chart.update(data, { in: t("vehiclesIn"), out: t("vehiclesOut") }, locale());
    const sums = { in_home: 0, in_other: 0, out_home: 0, out_other: 0 };
    data.forEach((b) => Object.keys(sums).forEach((k) => { sums[k] += b[k]; }));
    const legend = $("#legend");
    legend.replaceChildren(...[["in_home", "inHome"], ["in_other", "inOther"], ["out_home", "outHome"],
      ["out_other", "outOther"]].map(([key, label]) => {
      const item = el("li");
      item.append(el("span", `swatch ${key}`), el("span", "name", t(label)), el("b", "total", sums[key].toLocaleString(locale())));
      return item;
    }));
  }

  // ---------- cameras ----------
  async function loadCameras() {
    try {
      state.cameras = await apiJson("/api/cameras");
    } catch (error) {
      if (error.status === 403) $("#camera-panel").hidden = true;
      return;
    }
    const select = $("#checkpoint");
    const checkpoints = [...new Set(state.cameras.map((c) => c.checkpoint_id))].sort();
    const current = select.value;
    const all = el("option", null, t("allCheckpoints"));
    all.value = "";
    all.dataset.i18n = "allCheckpoints";
    select.replaceChildren(all, ...checkpoints.map((cp) => { const o = el("option", null, cp); o.value = cp; return o; }));
    select.value = checkpoints.includes(current) ? current : "";
    renderCameras();
  }

  function renderCameras() {
    if (!state.cameras) return;
    const rows = state.cameras.map((camera) => {
      const row = el("tr", `cam ${camera.status}`);
      const stateCell = el("td", "state");
      stateCell.append(el("span", `dot ${camera.status}`), el("span", null, t(camera.status)));
      const quality = el("td", "quality");
      if (camera.mean_confidence !== null && camera.mean_confidence !== undefined) {
        const bar = el("span", "bar");
        const fill = el("span", "fill");
        fill.style.width = `${Math.round(camera.mean_confidence * 100)}%`;
        fill.classList.toggle("weak", camera.mean_confidence < 0.75);
        bar.append(fill);
        quality.append(bar, el("span", "pct", `${Math.round(camera.mean_confidence * 100)}%`));
      } else {
        quality.append(el("span", "pct muted", "—"));
      }
      row.append(el("td", "id", camera.camera_id), el("td", null, camera.checkpoint_id), stateCell,
        el("td", "seen", ago(camera.last_seen)), el("td", "num", String(camera.reads_15m)), quality,
        el("td", "look", t(`look_${camera.look_closer ?? "default"}`)));
      return row;
    });
    $("#cameras tbody").replaceChildren(...rows);
    const online = state.cameras.filter((c) => c.status === "online").length;
    const summary = $("#camera-summary");
    summary.textContent = t("camerasOnline", { n: online, total: state.cameras.length });
    summary.classList.toggle("bad", online < state.cameras.length);
  }

  // ---------- start ----------
  function start() {
    $("#login-view").hidden = true;
    $("#console-view").hidden = false;
    $("#signout").hidden = false;
    $("#console-view").classList.toggle("read-only", !canHandle());
    renderWho();
    if (!state.chart) state.chart = new window.FlowChart($("#flow-chart"));
    loadAlerts().catch(() => {});
    loadCameras().then(loadCounts).catch(() => {});
    stream();
    state.timers.push(setInterval(() => { loadCounts().catch(() => {}); loadCameras().catch(() => {}); }, REFRESH_MS));
    state.timers.push(setInterval(() => { loadAlerts().catch(() => {}); }, REFRESH_MS * 2));
    state.timers.push(setInterval(() => {
      document.querySelectorAll("time.age").forEach((node) => { node.textContent = ago(node.dateTime); });
      renderCameras();
    }, 15000));
  }

  function tick() {
    $("#clock").textContent = new Intl.DateTimeFormat(locale(), {
      weekday: "short", day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).format(new Date());
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#login").addEventListener("submit", (event) => { signIn(event).catch(() => { $("#login-error").textContent = t("wrongLogin"); }); });
    $("#signout").addEventListener("click", signOut);
    $("#lang").addEventListener("click", () => {
      state.lang = state.lang === "vi" ? "en" : "vi";
      localStorage.setItem("ioc.lang", state.lang);
      applyLanguage();
      if (state.cameras) loadCameras().catch(() => {});
    });
    $("#checkpoint").addEventListener("change", () => { loadCounts().catch(() => {}); });
    document.querySelectorAll(".tabs button").forEach((button) => button.addEventListener("click", () => {
      state.filter = button.dataset.filter;
      renderAlerts();
    }));
    tick();
    setInterval(tick, 1000);
    applyLanguage();
    if (state.token && state.user) start();
  });
})();
