"use strict";
// Operator console: sign in, live alert queue (server-sent events over fetch, so the
// bearer token travels in a header), per-minute counts and camera health.

const I18N = {
  vi: { title: "Trung tâm điều hành thông minh", signin: "Đăng nhập", username: "Tên đăng nhập",
        password: "Mật khẩu", logout: "Đăng xuất", alerts: "Cảnh báo", flow: "Lưu lượng mỗi phút",
        inHome: "Vào · trong tỉnh", inOut: "Vào · ngoại tỉnh", outAll: "Ra", cameras: "Tình trạng camera",
        camera: "Camera", checkpoint: "Chốt", state: "Trạng thái", lastSeen: "Lần cuối",
        ack: "Xác nhận", escalate: "Chuyển cấp trên", resolve: "Đã xử lý", live: "Trực tiếp",
        offline: "Mất kết nối", online: "Hoạt động", down: "Mất tín hiệu", unknown: "Chưa rõ",
        note: "Ghi chú", wrong: "Sai tên đăng nhập hoặc mật khẩu",
        watchlist_hit: "Phương tiện trong danh sách theo dõi", camera_offline: "Camera mất tín hiệu",
        camera_online: "Camera hoạt động trở lại", flow_anomaly: "Lưu lượng bất thường",
        new: "mới", acknowledged: "đã xác nhận", escalated: "đã chuyển", resolved: "đã xử lý",
        accepted: "chấp nhận", rejected: "bác bỏ", critical: "khẩn", warning: "cảnh báo", info: "tin",
        match: "Khớp", score: "điểm", reason: "Lý do" },
  en: { title: "Intelligent Operations Centre", signin: "Sign in", username: "Username",
        password: "Password", logout: "Sign out", alerts: "Alerts", flow: "Vehicles per minute",
        inHome: "In · home province", inOut: "In · out of province", outAll: "Out", cameras: "Camera health",
        camera: "Camera", checkpoint: "Checkpoint", state: "State", lastSeen: "Last seen",
        ack: "Acknowledge", escalate: "Escalate", resolve: "Resolve", live: "Live",
        offline: "Disconnected", online: "Online", down: "Offline", unknown: "Unknown",
        note: "Note", wrong: "Wrong username or password",
        watchlist_hit: "Watchlist vehicle", camera_offline: "Camera offline",
        camera_online: "Camera back online", flow_anomaly: "Unusual traffic flow",
        new: "new", acknowledged: "acknowledged", escalated: "escalated", resolved: "resolved",
        accepted: "accepted", rejected: "rejected", critical: "critical", warning: "warning", info: "info",
        match: "Match", score: "score", reason: "Reason" },
};
let lang = localStorage.getItem("ioc.lang") || "vi";
const t = (key) => (I18N[lang][key] ?? key);
const $ = (sel, root = document) => root.querySelector(sel);
const state = { token: sessionStorage.getItem("ioc.token"), alerts: new Map(), stream: null };

function applyLanguage() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $("#lang").textContent = lang === "vi" ? "EN" : "VI";
  document.querySelectorAll(".note").forEach((el) => { el.placeholder = t("note"); });
  renderAlerts();
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}), Authorization: `Bearer ${state.token}` };
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) { signOut(); throw new Error("signed out"); }
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response;
}

async function signIn(event) {
  event.preventDefault();
  const body = new URLSearchParams(new FormData(event.target));
  const response = await fetch("/api/auth/token", { method: "POST", body });
  if (!response.ok) { $("#login-error").textContent = t("wrong"); return; }
  const token = await response.json();
  state.token = token.access_token;
  sessionStorage.setItem("ioc.token", state.token);
  start();
}

function signOut() {
  sessionStorage.removeItem("ioc.token");
  state.token = null;
  if (state.stream) state.stream.abort();
  $("#console").hidden = true; $("#logout").hidden = true; $("#login-panel").hidden = false;
}

async function start() {
  const me = await (await api("/api/auth/me")).json();
  $("#who").textContent = `${me.username} · ${me.role}`;
  $("#login-panel").hidden = true; $("#console").hidden = false; $("#logout").hidden = false;
  const list = await (await api("/api/alerts?limit=50")).json();
  list.data.reverse().forEach((a) => upsertAlert(a, false));
  listen();
  refreshBoards();
  setInterval(refreshBoards, 15000);
}

// --- live alerts -------------------------------------------------------------

function fromEvent(alert) {  // the Kafka event uses alert_kind; the REST API says kind
  return { ...alert, kind: alert.kind === "alert" ? alert.alert_kind : alert.kind };
}

async function listen() {
  const controller = new AbortController();
  state.stream = controller;
  while (!controller.signal.aborted) {
    try {
      const response = await api("/api/alerts/stream", { signal: controller.signal });
      setLive(true);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const chunk = buffer.slice(0, end); buffer = buffer.slice(end + 2);
          const data = chunk.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (data) upsertAlert(fromEvent(JSON.parse(data)), true);
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function setLive(on) {
  const el = $("#live");
  el.className = `live ${on ? "on" : "off"}`;
  el.dataset.i18n = on ? "live" : "offline";
  el.textContent = t(el.dataset.i18n);
}

function upsertAlert(alert, fresh) {
  const known = state.alerts.get(alert.alert_id);
  state.alerts.set(alert.alert_id, { ...known, ...alert, fresh: fresh && !known });
  renderAlerts();
}

function renderAlerts() {
  const list = $("#alerts");
  if (!list) return;
  const alerts = [...state.alerts.values()].sort((a, b) => (a.raised_at < b.raised_at ? 1 : -1));
  list.replaceChildren(...alerts.map(renderCard));
  $("#alert-count").textContent = alerts.filter((a) => a.status === "new").length;
}

function renderCard(alert) {
  const card = $("#alert-card").content.firstElementChild.cloneNode(true);
  const ev = alert.evidence || {};
  card.dataset.alertId = alert.alert_id;
  card.classList.add(alert.severity);
  if (alert.fresh) { card.classList.add("fresh"); alert.fresh = false; }
  $(".plate", card).textContent = ev.display || alert.subject;
  $(".severity", card).textContent = t(alert.severity);
  $(".status", card).textContent = t(alert.status);
  $(".status", card).dataset.status = alert.status;
  $(".what", card).textContent = `${t(alert.kind)} · ${alert.checkpoint_id || ""} · ${time(alert.captured_at || alert.raised_at)}`;
  if (ev.pattern) {
    $(".match", card).textContent =
      `${t("match")}: ${ev.pattern} (${ev.match_kind}, ${t("score")} ${ev.score}) · ${t("reason")}: ${ev.reason}`;
  } else if (ev.anomaly) {
    $(".match", card).textContent = `${ev.anomaly}: ${ev.observed} / ${ev.expected} (${ev.direction})`;
  }
  $(".route", card).replaceChildren(...(ev.route || []).map((s) => {
    const li = document.createElement("li");
    li.textContent = `${time(s.captured_at)} · ${s.checkpoint_id} · ${s.direction} · ${s.text}`;
    return li;
  }));
  document.querySelectorAll("[data-i18n]", card);
  card.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $(".note", card).placeholder = t("note");
  card.querySelectorAll("button[data-status]").forEach((button) => {
    button.addEventListener("click", () => changeStatus(alert.alert_id, button.dataset.status, $(".note", card).value));
  });
  if (alert.read_id && alert.kind === "watchlist_hit") loadCrop($(".crop", card), alert);
  else $(".crop", card).remove();
  return card;
}

const crops = new Map();
async function loadCrop(img, alert) {
  img.src = "";
  if (!crops.has(alert.read_id)) {
    crops.set(alert.read_id, api(`/api/reads/${alert.read_id}/crop.jpg?at=${encodeURIComponent(alert.captured_at)}`)
      .then((r) => r.blob()).then((b) => URL.createObjectURL(b)).catch(() => ""));
  }
  img.src = await crops.get(alert.read_id);
}

async function changeStatus(alertId, status, note) {
  const response = await api(`/api/alerts/${alertId}/status`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ status, note: note || null }),
  });
  upsertAlert(await response.json(), false);
}

const time = (iso) => (iso ? new Date(iso).toLocaleTimeString(lang === "vi" ? "vi-VN" : "en-GB") : "");

// --- boards ------------------------------------------------------------------

async function refreshBoards() {
  if (!state.token) return;
  try {
    drawChart(await (await api("/api/counts/minute?minutes=60")).json());
    renderCameras(await (await api("/api/cameras")).json());
  } catch (error) { /* next refresh retries */ }
}

function drawChart(rows) {
  const canvas = $("#chart"), ctx = canvas.getContext("2d");
  const series = { inHome: new Map(), inOut: new Map(), outAll: new Map() };
  for (const r of rows) {
    const key = r.direction === "out" ? "outAll" : r.origin === "out_of_province" ? "inOut" : "inHome";
    const at = Date.parse(r.bucket);
    series[key].set(at, (series[key].get(at) || 0) + r.vehicles);
  }
  const now = Date.now(), start = now - 60 * 60000;
  const max = Math.max(5, ...Object.values(series).flatMap((m) => [...m.values()]));
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = "#24324f"; ctx.fillStyle = "#8fa0bf"; ctx.font = "13px sans-serif";
  for (let i = 0; i <= 4; i++) {
    const y = 10 + (canvas.height - 30) * (i / 4);
    ctx.beginPath(); ctx.moveTo(30, y); ctx.lineTo(canvas.width, y); ctx.stroke();
    ctx.fillText(String(Math.round(max * (1 - i / 4))), 2, y + 4);
  }
  const colours = { inHome: "#3fa7ff", inOut: "#ffb020", outAll: "#2ecc71" };
  for (const [key, points] of Object.entries(series)) {
    ctx.strokeStyle = colours[key]; ctx.lineWidth = 2; ctx.beginPath();
    [...points.entries()].sort((a, b) => a[0] - b[0]).forEach(([at, v], i) => {
      const x = 30 + (canvas.width - 30) * ((at - start) / (now - start));
      const y = 10 + (canvas.height - 30) * (1 - v / max);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}

function renderCameras(cameras) {
  const body = $("#cameras tbody");
  body.replaceChildren(...cameras.map((c) => {
    const tr = document.createElement("tr");
    const stateKey = c.online === null ? "unknown" : c.online ? "online" : "down";
    for (const [text, cls] of [[c.camera_id], [c.checkpoint_id], [t(stateKey), c.online ? "online" : "offline"], [time(c.last_seen)]]) {
      const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.append(td);
    }
    return tr;
  }));
}

$("#login").addEventListener("submit", signIn);
$("#logout").addEventListener("click", signOut);
$("#lang").addEventListener("click", () => { lang = lang === "vi" ? "en" : "vi"; localStorage.setItem("ioc.lang", lang); applyLanguage(); });
applyLanguage();
if (state.token) start().catch(signOut);
