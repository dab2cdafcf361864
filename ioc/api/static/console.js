"use strict";
// IOC operator console: sign in, a live alert queue (server-sent events read with
// fetch, so the bearer token travels in a header, never in a URL; after a drop it
// resumes from the last event id, as EventSource would), acknowledge /
// escalate / resolve with a note, per-minute checkpoint flow, camera health.
// Everything the page shows is set with textContent: alert data is never HTML.
// The queue's cards are updated in place, keyed by alert id: a card, its buttons and
// the note being typed in it stay the same elements for as long as the card is shown.

(() => {
  const LABELS = window.IOC_LABELS;
  const HANDLER_ROLES = new Set(["operator", "supervisor"]);
  // who may read alerts (ioc/api/deps.py ALERT_READERS): the others' stream is refused at once
  const READER_ROLES = new Set(["officer", "operator", "supervisor"]);
  // open on the server until resolved or rejected ("accepted": an officer confirmed the hit)
  const OPEN = new Set(["new", "acknowledged", "escalated", "accepted"]);
  const ACTIONS = [["acknowledged", "doAcknowledge"], ["escalated", "doEscalate"], ["resolved", "doResolve"]];
  // the only changes the server takes from these statuses (any other: all of ACTIONS). An officer's
  // decision stands: an accepted hit can only be resolved; a rejected one is closed, as a resolved one
  const ONLY = { resolved: [], rejected: [], accepted: ["resolved"] };
  const MAX_CLOSED = 200;  // closed alerts kept for the "all" tab; open ones are never dropped
  const RECENT = 100;  // newest alerts of any status loaded for the "all" tab
  const PAGE_SIZE = 200;  // the API's largest page
  const MAX_OPEN_PAGES = 50;
  const REFRESH_MS = 30000;
  // no byte for this long: reconnect. Until the stream answers 40 s; then three of the
  // keep-alives the server says it sends (X-Keep-Alive-Seconds, 15 s), at least 6 s
  const STALL_MS = 40000;
  const STALL_KEEPALIVES = 3;
  // reconnection delays: the server's retry: hint (1 s) doubled from the third failure, at most
  // 10 s, or a 503's Retry-After (at most a minute). Each is lengthened by up to half of itself at
  // random: after an API restart every wall in the room reconnected in the same instant
  const RECONNECT_MAX_MS = 10000;
  const RETRY_AFTER_MAX_MS = 60000;
  const RECONNECT_SPREAD = 0.5;
  const SESSION_WARNING_MS = 10 * 60 * 1000;
  // A wall's shift (12 hours) outlasts a token (8): the page renews it (POST /api/auth/renew) a
  // quarter of its life before it ends, at most 15 minutes before. A try that fails (the network,
  // the server) is made again every quarter of that, at most every 30 s, until the token ends; the
  // "session ends" banner asks for a new sign-in only after RENEW_TRIES of them, once the server
  // refuses (401: the session is over), or once a renewed token ends with the session
  const RENEW_SHARE = 0.25;
  const RENEW_LEAD_MAX_MS = 15 * 60 * 1000;
  const RENEW_RETRY_MAX_MS = 30 * 1000;
  const RENEW_TRIES = 3;
  // a sign-in or a renewal not answered by then is given up (a stalled mobile connection)
  const AUTH_TIMEOUT_MS = 20 * 1000;
  // a token this close to its end (as this PC's clock has it, from when it came) is not sent: the
  // server, whose clock started earlier, refuses it, and the browser logs each refusal as an error
  const TOKEN_END_MARGIN_MS = 1000;
  const REVISIONS_KEPT = 10000;
  // a wall watched from across the room misses the small "disconnected" pill: a banner says it
  // once a reconnection has had time to succeed
  const STREAM_DOWN_WARNING_MS = 15 * 1000;
  const CROP_CACHE = 300;  // crop images kept (blob URLs), least recently used dropped first
  const CROP_RETRY_MS = 2 * 60 * 1000;  // a crop that failed is not asked for again before this
  const RENDER_HIDDEN_MS = 250;  // no frame is drawn in a hidden tab: the queue is redrawn after this there
  const AIM_MS = 2000;  // a pointer moved this recently over a card is aiming at it
  const PRESS_MAX_MS = 5000;  // the longest a press on the list holds its updates back
  // a click on a card that a redraw slid under the resting pointer this recently was aimed at the card
  // that went (a double-click's second click, or one planned before the card moved: about the time
  // it takes to see the move); it does nothing. A click aimed at the card now there comes later
  const SLID_MS = 700;
  // a new critical alert (a wanted vehicle's hit) plays a short two-tone chime: an operator looking at
  // another screen missed it when it only appeared. Made with Web Audio (nothing to download); a
  // burst (an entry matching a day of past reads) chimes once, not once per alert
  const CHIME_MIN_GAP_MS = 2000;
  const CHIME_TONES_HZ = [880, 660];
  const CHIME_TONE_S = 0.18;
  const CHIME_VOLUME = 0.25;
  const DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh";
  const CLOCK = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
  const SHORT_CLOCK = { hour: "2-digit", minute: "2-digit" };
  const FULL_TIME = { year: "numeric", month: "2-digit", day: "2-digit", ...CLOCK };
  const TOP_CLOCK = { weekday: "short", day: "2-digit", month: "2-digit", ...CLOCK };

  const state = {
    lang: localStorage.getItem("ioc.lang") || "vi",
    sound: localStorage.getItem("ioc.sound") !== "off",
    // one AudioContext for the page. Browsers let it play only once made or resumed in a user
    // gesture: until then (a reloaded page, signed in, not clicked yet) the toggle says so
    audio: null,
    chimedAt: -Infinity,  // performance.now() of the last chime
    enablingSound: false,  // the gesture under way is the one that lets the page make sound
    token: sessionStorage.getItem("ioc.token"),
    // username, role, timezone, expiresAt; lifeMs: the life of the sign-in's token (a renewed one
    // given less ends with the session: final)
    user: JSON.parse(sessionStorage.getItem("ioc.user") || "null"),
    renewal: newRenewal(),
    // the token before the last renewal, until it ends: signing out ends it too
    retired: JSON.parse(sessionStorage.getItem("ioc.retired") || "null"),  // { token, expiresAt }
    generation: 0,  // bumped by every start and sign-out: older loops and requests stop at their next await
    signingIn: false,
    // null, "ending" (expires soon) or "expired" (kept over a reload of the page)
    session: sessionStorage.getItem("ioc.expired") ? "expired" : null,
    alerts: new Map(),  // alert_id -> alert
    cards: new Map(),  // alert_id -> its card's elements, for the alerts shown
    notes: new Map(),  // alert_id -> the note typed for it
    pending: new Map(),  // alert_id -> the status being sent for it
    arrived: new Set(),  // alert ids new on the stream, whose card flashes when created
    listed: false,  // the list has been loaded since this sign-in (or this page's start)
    filter: "open",
    crops: new Map(),  // crop path -> { promise, url, failedAt }, least recently used first
    formats: new Map(),
    counts: null,
    cameras: null,
    chart: null,
    liveUp: false,
    downSince: null,  // when the live stream was last up or first tried (ms), while it is down
    streamAbort: null,
    lastEventId: null,  // stream position: sent as Last-Event-ID when reconnecting
    retryMs: 1000,  // the server's retry: hint
    streamSeq: 0,  // counts alert states applied from the stream (and from our own changes)
    streamed: new Map(),  // alert_id -> streamSeq of its newest such state
    // alert_id -> the highest revision seen, kept after its card is dropped (an older state arriving
    // later must not bring a closed alert back); the oldest entries go beyond REVISIONS_KEPT
    revisions: new Map(),
    marks: [],  // the streamSeq each list reload and status change in flight started at
    // x, y: where the pointer was last seen over the list (null once it left); slid: the card a
    // redraw last moved under it, at slidAt (performance.now())
    pointer: { pressedAt: 0, aim: null, aimedAt: 0, x: null, y: null, slid: null, slidAt: -Infinity },
    handedFocus: null,  // the element the page last moved the focus to (its card went), at handedAt
    handedAt: -Infinity,
    renderWaiting: null,  // a timer while a press on the list holds updates back
    renderSoon: null,  // the redraw asked for, at the next frame
    timers: [],
  };

  function newRenewal() {
    return { busy: false, failures: 0, refused: false, retryAt: 0 };
  }

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
  // writes only what changed: an unchanged node keeps its selection, focus and hover
  const setText = (node, text) => { if (node.textContent !== text) node.textContent = text; };
  const setClass = (node, name) => { if (node.className !== name) node.className = name; };
  const current = (gen) => gen === state.generation;

  // ---------- API ----------
  class SignedOut extends Error {}

  async function api(path, options = {}) {
    const token = state.token;
    const expiresAt = state.user?.expiresAt;
    if (token && expiresAt && expiresAt - Date.now() < TOKEN_END_MARGIN_MS) {  // the session is over
      signOut("expired");
      throw new SignedOut("signed out");
    }
    const headers = { ...(options.headers || {}), Authorization: `Bearer ${token}` };
    const response = await fetch(path, { ...options, headers });
    if (response.status === 401) {
      if (token && token === state.token) signOut("expired");
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

  // ---------- time (always in the deployment's zone, whatever the PC's) ----------
  function usableZone(zone) {
    try {
      new Intl.DateTimeFormat("en", { timeZone: zone });
      return zone;
    } catch {
      return DEFAULT_TIMEZONE;  // a zone this browser does not know
    }
  }

  const timeZone = () => state.user?.timezone || localStorage.getItem("ioc.timezone") || DEFAULT_TIMEZONE;

  function dateFormat(options) {
    const key = `${locale()}|${timeZone()}|${JSON.stringify(options)}`;
    if (!state.formats.has(key)) {
      state.formats.set(key, new Intl.DateTimeFormat(locale(), { ...options, timeZone: timeZone() }));
    }
    return state.formats.get(key);
  }

  const clock = (iso) => dateFormat(CLOCK).format(new Date(iso));

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
    renderSession();
    renderAlerts();
    renderCounts();
    renderCameras();
    renderLive(state.liveUp);
    renderSound();
  }

  // ---------- sound ----------
  const soundRunning = () => state.audio?.state === "running";

  // at every click or key press (capture: before the target's own handlers) until the page may play
  function unlockSound() {
    state.enablingSound = state.sound && !soundRunning();
    if (soundRunning() || !window.AudioContext) return;
    if (!state.audio) {
      state.audio = new AudioContext();
      state.audio.addEventListener("statechange", renderSound);
    }
    state.audio.resume().catch(() => {}).finally(renderSound);
  }

  function renderSound() {
    const button = $("#sound");
    const blocked = state.sound && !soundRunning();
    button.setAttribute("aria-pressed", String(state.sound));
    button.classList.toggle("blocked", blocked);
    setText(button, t(blocked ? "soundBlocked" : "sound"));
    button.title = t(blocked ? "soundBlocked" : state.sound ? "soundMute" : "soundUnmute");
  }

  function chime() {
    if (!state.sound || !soundRunning()) return;
    const now = performance.now();
    if (now - state.chimedAt < CHIME_MIN_GAP_MS) return;
    state.chimedAt = now;
    const audio = state.audio;
    CHIME_TONES_HZ.forEach((hz, i) => {
      const start = audio.currentTime + i * CHIME_TONE_S;
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = hz;
      gain.gain.setValueAtTime(CHIME_VOLUME, start);
      gain.gain.exponentialRampToValueAtTime(0.001, start + CHIME_TONE_S);  // fades out: no click
      tone.connect(gain).connect(audio.destination);
      tone.start(start);
      tone.stop(start + CHIME_TONE_S);
    });
  }

  // ---------- sign in / out ----------
  async function signIn(event) {
    event.preventDefault();
    if (state.signingIn) return;  // a double submit signs in once
    const form = event.target;
    setSigningIn(form, true);
    try {
      await requestToken(form);
    } finally {
      setSigningIn(form, false);
    }
  }

  function setSigningIn(form, busy) {
    state.signingIn = busy;
    $("button[type=submit]", form).disabled = busy;
    form.setAttribute("aria-busy", String(busy));
  }

  async function requestToken(form) {
    const error = $("#login-error");
    error.textContent = "";
    let response;
    let body;
    try {
      response = await fetchWithin("/api/auth/token", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username: form.username.value.trim(), password: form.password.value }),
      });
      if (response.ok) body = await response.json();
    } catch (failure) {
      // no answer: the network (offline, a dead mobile connection), or none in AUTH_TIMEOUT_MS
      error.textContent = t(failure?.name === "AbortError" ? "signInTimeout" : "signInNetwork");
      return;
    }
    if (!response.ok) {
      error.textContent = signInRefused(response.status);
      return;
    }
    if (!READER_ROLES.has(body.role)) {  // an auditor or an admin: the API has their own pages' data
      error.textContent = t("notForRole");
      form.password.value = "";
      return;
    }
    keepToken(body, body.expires_in * 1000);
    state.renewal = newRenewal();
    form.password.value = "";
    state.session = null;
    sessionStorage.removeItem("ioc.expired");
    start();
  }

  // only a 401 means the password (or the username) is wrong: a server or a proxy failing must not
  // send the operator to retype it
  function signInRefused(status) {
    if (status === 401) return t("wrongLogin");
    if (status === 429) return t("throttled");
    return t("signInFailed", { status });
  }

  // a request not answered within ms is given up (rejected: an AbortError)
  async function fetchWithin(path, options, ms = AUTH_TIMEOUT_MS) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), ms);
    try {
      return await fetch(path, { ...options, signal: abort.signal });
    } finally {
      clearTimeout(timer);
    }
  }

  // a token from a sign-in or a renewal: what every request, the stream's reconnections and the
  // crops' fetches send from now on (each reads state.token as it leaves), kept over a reload
  function keepToken(body, lifeMs) {
    const timezone = usableZone(body.timezone || DEFAULT_TIMEZONE);
    const lifetime = body.expires_in * 1000;
    state.token = body.access_token;
    state.user = { username: body.username, role: body.role, timezone,
      expiresAt: Date.now() + lifetime, lifeMs, final: lifetime < lifeMs };
    sessionStorage.setItem("ioc.token", state.token);
    sessionStorage.setItem("ioc.user", JSON.stringify(state.user));
    localStorage.setItem("ioc.timezone", timezone);  // the signed-out clock keeps the zone too
  }

  // how long before the token ends it is renewed
  const renewLead = () => Math.min(RENEW_LEAD_MAX_MS, (state.user.lifeMs || Infinity) * RENEW_SHARE);

  function renewSoon() {
    const renewal = state.renewal;
    if (state.user.final || renewal.busy || renewal.refused || Date.now() < renewal.retryAt) return;
    renewal.busy = true;
    renewToken(state.generation, state.token, renewal).finally(() => { renewal.busy = false; });
  }

  async function renewToken(gen, token, renewal) {
    const ours = () => current(gen) && token === state.token;  // not signed out or in meanwhile
    let body = null;
    try {
      const response = await fetchWithin("/api/auth/renew", { method: "POST",
        headers: { Authorization: `Bearer ${token}` } });
      // 401: the session is over (or the token no longer holds: the next request signs out)
      renewal.refused = response.status === 401;
      if (response.ok) body = await response.json();
    } catch { /* the network, or no answer in time: tried again */ }
    if (!ours()) return;
    if (body?.access_token) {
      retire(token, state.user.expiresAt);
      keepToken(body, state.user.lifeMs || body.expires_in * 1000);
      renewal.failures = 0;
    } else if (!renewal.refused) {
      renewal.failures += 1;
      renewal.retryAt = Date.now() + Math.min(RENEW_RETRY_MAX_MS, renewLead() * RENEW_SHARE);
    }
    checkSession();
  }

  // the renewed token still holds until it ends: a copy of it must not outlive a sign-out
  function retire(token, expiresAt) {
    state.retired = { token, expiresAt };
    sessionStorage.setItem("ioc.retired", JSON.stringify(state.retired));
  }

  // ends the loops, requests and timers of the current session (they check the generation)
  function stopActivity() {
    state.generation += 1;
    if (state.streamAbort) state.streamAbort.abort();
    state.streamAbort = null;
    state.timers.forEach(clearInterval);
    state.timers = [];
  }

  // reason "expired": the token expired or was refused; the page says so, loudly
  function signOut(reason = null) {
    if (!state.token) return;
    if (reason !== "expired") {
      // the server refuses the token from now on: forgotten here only, a copy of it (a restored
      // tab on a shared PC, a proxy's log) would hold for hours. keepalive: it goes out even as
      // the page is closed; a failure changes nothing here
      const tokens = [state.token];
      if (state.retired && state.retired.expiresAt > Date.now()) tokens.push(state.retired.token);
      tokens.forEach((token) => fetch("/api/auth/sign-out", { method: "POST", keepalive: true,
        headers: { Authorization: `Bearer ${token}` } }).catch(() => {}));
    }
    stopActivity();
    state.token = null;
    state.user = null;
    state.retired = null;
    state.renewal = newRenewal();
    sessionStorage.removeItem("ioc.token");
    sessionStorage.removeItem("ioc.user");
    sessionStorage.removeItem("ioc.retired");
    forgetAlerts();
    forgetPanels();
    state.session = reason === "expired" ? "expired" : null;
    if (state.session) sessionStorage.setItem("ioc.expired", "1");
    else sessionStorage.removeItem("ioc.expired");
    $("#console-view").hidden = true;
    $("#signout").hidden = true;
    $("#login-view").hidden = false;
    renderSession();
    renderWho();
    renderLive(false);
  }

  // nothing of this user stays on the screen for the next one: the flow and camera panels are
  // emptied (while still shown, so the chart is drawn empty), and start() shows them again
  function forgetPanels() {
    state.counts = null;
    state.cameras = null;
    if (state.chart) state.chart.update([], { in: t("vehiclesIn"), out: t("vehiclesOut") }, locale(), timeZone());
    $("#legend").replaceChildren();
    $("#cameras tbody").replaceChildren();
    const summary = $("#camera-summary");
    summary.textContent = "";
    summary.classList.remove("bad");
    setCheckpoints([]);
    $("#toast").hidden = true;
  }

  function checkSession() {
    const expiresAt = state.user?.expiresAt;
    if (!state.token || !expiresAt) return;
    const left = expiresAt - Date.now();
    if (left <= 0) {
      signOut("expired");
      return;
    }
    if (left <= renewLead()) renewSoon();
    state.session = sessionEnding(left) ? "ending" : null;
    renderSession();
    renderStreamDown();
  }

  // the banner asks for a new sign-in only once the page cannot renew the token itself
  function sessionEnding(left) {
    const renewal = state.renewal;
    if (renewal.refused || renewal.failures >= RENEW_TRIES) return true;
    return Boolean(state.user.final) && left <= SESSION_WARNING_MS;
  }

  function renderSession() {
    const banner = $("#session-banner");
    banner.hidden = !state.session;
    setClass(banner, `session-banner ${state.session || ""}`.trim());
    if (state.session === "expired") {
      setText(banner, t("sessionExpired"));
    } else if (state.session === "ending") {
      const left = state.user.expiresAt - Date.now();
      setText(banner, t("sessionEnding", {
        t: dateFormat(SHORT_CLOCK).format(new Date(state.user.expiresAt)),
        n: Math.max(1, Math.ceil(left / 60000)),
      }));
    }
  }

  function renderWho() {
    const who = $("#who");
    who.textContent = state.user ? `${state.user.username} · ${t(`role_${state.user.role}`)}` : "";
  }

  function renderLive(up) {
    state.liveUp = up;
    state.downSince = up || !state.token ? null : (state.downSince ?? Date.now());
    const live = $("#live");
    live.textContent = t(up ? "live" : "disconnected");
    live.classList.toggle("on", Boolean(up));
    live.classList.toggle("off", !up);
    renderStreamDown();
  }

  function renderStreamDown() {
    const banner = $("#stream-banner");
    const down = state.downSince !== null && Date.now() - state.downSince >= STREAM_DOWN_WARNING_MS;
    banner.hidden = !down;
    if (down) setText(banner, t("streamDown", { t: dateFormat(SHORT_CLOCK).format(new Date(state.downSince)) }));
  }

  // ---------- alerts: what the page holds ----------
  function canHandle() {
    return state.user && HANDLER_ROLES.has(state.user.role);
  }

  const isOpen = (alert) => OPEN.has(alert.status);
  const subjectText = (alert) => (alert.kind === "watchlist_hit"
    ? alert.evidence?.display || alert.subject : alert.subject);

  function forget(alertId) {
    const alert = state.alerts.get(alertId);
    state.alerts.delete(alertId);
    forgetStreamed(alertId);
    state.notes.delete(alertId);
    if (alert?.crop_url) releaseCrop(alert.crop_url);
  }

  // A list reload or a status change in flight takes a mark (the stream's count as it leaves) and
  // skips what the stream changed after it: its answer is older. An alert dropped meanwhile (an old
  // one resolved and evicted at once) keeps its stream count until every such request is back,
  // or the answer would bring it back as it was, open.
  function takeMark() {
    state.marks.push(state.streamSeq);
    return state.streamSeq;
  }

  function dropMark(mark) {
    state.marks.splice(state.marks.indexOf(mark), 1);
    for (const alertId of state.streamed.keys()) {
      if (!state.alerts.has(alertId)) forgetStreamed(alertId);
    }
  }

  const streamedSince = (alertId, mark) => (state.streamed.get(alertId) || 0) > mark;
  // the server moves an alert's revision on with every change; states may arrive out of order (a
  // worker's and an operator's change of one alert published the other way round): the lower is older
  // (a state published by a release before revisions has none: it is not compared)
  const olderThanHeld = (alert) => {
    const held = state.revisions.get(alert.alert_id);
    return Number.isInteger(alert.revision) && Number.isInteger(held) && alert.revision < held;
  };

  function noteRevision(alert) {
    if (!Number.isInteger(alert.revision)) return;
    const held = state.revisions.get(alert.alert_id);
    if (held !== undefined && held >= alert.revision) return;
    state.revisions.delete(alert.alert_id);  // re-inserted: the newest last, the oldest dropped first
    state.revisions.set(alert.alert_id, alert.revision);
    if (state.revisions.size > REVISIONS_KEPT) state.revisions.delete(state.revisions.keys().next().value);
  }

  function forgetStreamed(alertId) {
    if (!streamedSince(alertId, Math.min(...state.marks))) state.streamed.delete(alertId);
  }

  function forgetAlerts() {
    state.alerts.clear();
    state.cards.clear();
    state.notes.clear();
    state.pending.clear();
    state.arrived.clear();
    state.streamed.clear();
    state.revisions.clear();
    state.lastEventId = null;
    state.crops.forEach((entry) => { if (entry.url) URL.revokeObjectURL(entry.url); });
    state.crops.clear();
    $("#alerts").replaceChildren();
    setText($("#open-count"), "0");
  }

  // only closed alerts are dropped, the oldest first
  function evictClosed() {
    const closed = [...state.alerts.values()].filter((alert) => !isOpen(alert));
    if (closed.length <= MAX_CLOSED) return;
    closed.sort((a, b) => a.raised_at.localeCompare(b.raised_at))
      .slice(0, closed.length - MAX_CLOSED)
      .forEach((alert) => forget(alert.alert_id));
  }

  // every open alert, page by page; complete: false when there were more than the pages read
  async function openAlerts(gen) {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    OPEN.forEach((status) => query.append("status", status));
    const alerts = [];
    for (let page = 0; page < MAX_OPEN_PAGES; page += 1) {
      const body = await apiJson(`/api/alerts?${query}`);
      if (!current(gen)) return { alerts: [], complete: false };
      alerts.push(...body.data);
      if (!body.next_cursor) return { alerts, complete: true };
      query.set("cursor", body.next_cursor);
    }
    return { alerts, complete: false };
  }

  async function loadAlerts() {
    const mark = takeMark();  // a state the stream delivered after these requests left is newer than theirs
    try {
      await reloadAlerts(mark);
    } finally {
      dropMark(mark);
    }
  }

  async function reloadAlerts(mark) {
    const gen = state.generation;
    const unchanged = (alert) => !streamedSince(alert.alert_id, mark);
    const recent = await apiJson(`/api/alerts?limit=${RECENT}`);
    if (!current(gen)) return;
    const open = await openAlerts(gen);
    if (!current(gen)) return;
    // An alert a later reload finds, never held by this page (the stream was down past its replay,
    // or said "reset"), is announced as the stream would have: its card flashes, and a new critical
    // one chimes (once for them all). Not those of the first load after a sign-in or a page load:
    // the operator who just signed in is looking at that queue, and a chime at every sign-in (there
    // is nearly always an open critical alert) would teach the room to ignore it
    const announce = state.listed;
    let critical = false;
    for (const alert of [...recent.data, ...open.alerts]) {
      if (unchanged(alert) && !olderThanHeld(alert)) {
        if (announce && isOpen(alert) && unseen(alert)) {
          state.arrived.add(alert.alert_id);
          critical = critical || isNewCritical(alert);
        }
        state.alerts.set(alert.alert_id, alert);
        noteRevision(alert);
      }
    }
    state.listed = true;
    if (critical) chime();
    if (open.complete) {
      // shown as open here, no longer open on the server: closed while this page was not listening
      const openIds = new Set(open.alerts.map((alert) => alert.alert_id));
      [...state.alerts.values()].filter((a) => isOpen(a) && !openIds.has(a.alert_id) && unchanged(a))
        .forEach((alert) => forget(alert.alert_id));
    }
    renderSoon();
  }

  // never shown by this page (a revision is remembered after its card goes)
  const unseen = (alert) => !state.alerts.has(alert.alert_id) && !state.revisions.has(alert.alert_id);
  const isNewCritical = (alert) => alert.severity === "critical" && alert.status === "new";

  function received(alert, fresh) {
    if (olderThanHeld(alert)) return;  // published after a newer state of the alert
    // one card per alert id: a replayed or repeated state updates it in place
    const known = state.alerts.get(alert.alert_id);
    state.streamed.set(alert.alert_id, ++state.streamSeq);
    const merged = { ...known, ...alert };
    // a replayed or extended incident never takes an operator's status back to "new"
    if (known && alert.status === "new" && known.status !== "new") merged.status = known.status;
    if (fresh && !known) {
      state.arrived.add(alert.alert_id);
      // not a replayed state of an alert shown before (its revision is remembered after its card goes)
      const shownBefore = state.revisions.has(alert.alert_id);
      if (isNewCritical(alert) && !shownBefore) chime();
    }
    state.alerts.set(alert.alert_id, merged);
    noteRevision(alert);
    renderSoon();
  }

  async function changeStatus(alertId, status) {
    if (state.pending.has(alertId)) return;  // one change at a time per alert
    const gen = state.generation;
    const note = (state.notes.get(alertId) || "").trim();
    state.pending.set(alertId, status);
    renderAlerts();
    // the server answers once it has published the change: by then the stream may have delivered
    // it, and a newer state after it (an officer's decision), which this answer must not undo
    const mark = takeMark();
    let updated = null;
    let failure = null;
    try {
      updated = await apiJson(`/api/alerts/${alertId}/status`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ status, note: note || null }),
      });
    } catch (error) {
      failure = error;
    }
    const overtaken = streamedSince(alertId, mark);  // asked before the mark goes
    dropMark(mark);
    if (!current(gen)) return;
    state.pending.delete(alertId);
    if (failure) {
      if (!(failure instanceof SignedOut)) toast(t("actionFailed", { e: failure.message }));
      renderAlerts();
      return;
    }
    state.notes.delete(alertId);  // sent with this change: never again with the next
    if (overtaken || olderThanHeld(updated)) renderAlerts();
    else received(updated, false);
  }

  function toast(message) {
    const box = $("#toast");
    box.textContent = message;
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  // ---------- crop images: one request per crop, a bounded cache of blob URLs ----------
  // (one that failed, other than by a 404, is asked for again after CROP_RETRY_MS while it is shown)
  function cropUrl(path) {
    const cached = state.crops.get(path);
    if (cached && !(cached.failedAt && Date.now() - cached.failedAt > CROP_RETRY_MS)) {
      state.crops.delete(path);  // most recently used: to the end
      state.crops.set(path, cached);
      return cached.promise;
    }
    if (cached) dropCrop(path);
    const entry = { url: null, failedAt: null };
    entry.promise = fetchCrop(path, entry);
    state.crops.set(path, entry);
    while (state.crops.size > CROP_CACHE) dropCrop(state.crops.keys().next().value);
    return entry.promise;
  }

  async function fetchCrop(path, entry) {
    try {
      const response = await api(path);
      entry.missing = response.status === 404;  // none with this alert: asking again finds none either
      if (!response.ok) throw new Error(String(response.status));
      const blob = await response.blob();
      if (state.crops.get(path) !== entry) return null;  // dropped meanwhile: no URL to leak
      entry.url = URL.createObjectURL(blob);
      return entry.url;
    } catch {
      entry.failedAt = Date.now();
      return null;
    }
  }

  // a crop that failed (the server or the network) is asked for again while its card is shown
  function retryCrops() {
    for (const card of state.cards.values()) {
      const entry = card.cropPath ? state.crops.get(card.cropPath) : null;
      if (entry?.failedAt && !entry.missing && Date.now() - entry.failedAt > CROP_RETRY_MS) {
        showCrop(card, card.cropPath);
      }
    }
  }

  function dropCrop(path) {
    const entry = state.crops.get(path);
    state.crops.delete(path);
    if (entry?.url) URL.revokeObjectURL(entry.url);
  }

  // an alert left the page: its crop goes too, unless another alert still shows it
  function releaseCrop(path) {
    if (![...state.alerts.values()].some((alert) => alert.crop_url === path)) dropCrop(path);
  }

  // ---------- alert cards ----------
  function cropBox(alert) {
    const box = el("div", "crop");
    if (alert.kind === "watchlist_hit") {
      box.append(el("img"));
    } else {
      box.classList.add("icon");
      box.append(el("span", "glyph", alert.kind.startsWith("camera") ? "◉" : "≋"));
    }
    return box;
  }

  function updateCrop(card, alert) {
    const img = $("img", card.crop);
    if (!img) return;
    img.alt = subjectText(alert);
    const path = alert.crop_url || null;
    if (card.cropPath === path) return;
    card.cropPath = path;
    card.details.querySelectorAll(".route button[aria-pressed=true]")
      .forEach((b) => b.setAttribute("aria-pressed", "false"));  // a stop's crop was shown
    card.crop.classList.toggle("missing", !path);
    if (!path) {
      img.removeAttribute("src");
      return;
    }
    showCrop(card, path);
  }

  function showCrop(card, path) {
    cropUrl(path).then((url) => {
      if (card.cropPath !== path) return;
      if (url) $("img", card.crop).src = url;
      card.crop.classList.toggle("missing", !url);
    });
  }

  // a route stop's own crop (the incident's copy) in the card's picture; the same stop again, or any
  // new state of the alert, brings the alert's own crop back
  function showStopCrop(alertId, readId, button) {
    const card = state.cards.get(alertId);
    const alert = state.alerts.get(alertId);
    if (!card || !alert) return;
    const again = button.getAttribute("aria-pressed") === "true";
    card.details.querySelectorAll(".route button").forEach((b) => b.setAttribute("aria-pressed", "false"));
    const path = again ? alert.crop_url || null : `/api/alerts/${alertId}/sightings/${readId}/crop.jpg`;
    if (!again) button.setAttribute("aria-pressed", "true");
    card.cropPath = path;
    card.crop.classList.toggle("missing", !path);
    if (path) showCrop(card, path);
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
          // a stop's picture is fetched (and audited) only when someone asks for it
          const button = el("button", "stop");
          button.type = "button";
          button.title = t("showStopCrop");
          button.setAttribute("aria-pressed", "false");
          button.append(el("b", null, stop.checkpoint_id || "?"),
            el("span", null, ` ${stop.captured_at ? clock(stop.captured_at) : ""} ${stop.direction ? t(stop.direction) : ""}`));
          if (stop.read_id) button.addEventListener("click", () => showStopCrop(alert.alert_id, stop.read_id, button));
          else button.disabled = true;
          item.append(button);
          list.append(item);
        });
        nodes.push(list);
      }
    } else if (alert.kind === "flow_anomaly") {
      // what "expected" is: the usual for this time of day (or weekday), or the last two hours
      const basis = { same_weekday: "usualWeekday", time_of_day: "usualTimeOfDay", trailing: "lastTwoHours" }[e.baseline];
      const observed = t("observed", { o: e.observed ?? "?", e: e.expected ?? "?" });
      nodes.push(el("div", "entry", basis ? `${observed} (${t(basis)})` : observed));
    } else {
      nodes.push(el("div", "entry", t("lastSeenAt", { t: e.last_seen ? clock(e.last_seen) : t("never") })));
    }
    return nodes;
  }

  function updateDetails(card, alert) {
    const key = JSON.stringify([state.lang, timeZone(), alert.kind, alert.evidence]);
    if (card.detailsKey === key) return;
    card.detailsKey = key;
    card.details.replaceChildren(...detailNodes(alert));
  }

  function actionsBox(alertId) {
    const box = el("div", "actions");
    const note = el("input", "note");
    note.type = "text";
    note.maxLength = 1000;
    note.addEventListener("input", () => { state.notes.set(alertId, note.value); });
    box.append(note);
    const buttons = ACTIONS.map(([status, label]) => {
      const button = el("button", `act act-${status}`);
      button.type = "button";
      button.dataset.action = status;
      button.dataset.label = label;
      button.addEventListener("click", (event) => {
        if (button.getAttribute("aria-disabled") !== "true" && deliberate(event)) changeStatus(alertId, status);
      });
      box.append(button);
      return button;
    });
    return { box, note, buttons };
  }

  // A mouse's or finger's click on an action is the operator's only when it is the first of its
  // series (event.detail 1: the second of a double-click acted on the card that the first one's
  // answer slid under the pointer, or escalated twice) and its card did not just slide under the
  // pointer. A key press (Enter, Space: detail 0) is, unless the page has just moved the focus to it
  function deliberate(event) {
    const now = performance.now();
    // a key pressed twice (or held) on Resolve: the second press meets the next card's Resolve,
    // which the page gave the focus to as the first one's card went
    if (event.detail === 0) {
      return !(event.currentTarget === state.handedFocus && now - state.handedAt < SLID_MS);
    }
    if (event.detail > 1) return false;
    const item = event.currentTarget.closest("li.alert");
    return !(item === state.pointer.slid && now - state.pointer.slidAt < SLID_MS);
  }

  function updateActions(actions, alert) {
    const pending = state.pending.get(alert.alert_id);
    const subject = subjectText(alert);
    const only = ONLY[alert.status];
    actions.box.hidden = only !== undefined && only.length === 0;
    const { note } = actions;
    const text = state.notes.get(alert.alert_id) || "";
    if (note.value !== text) note.value = text;
    note.readOnly = Boolean(pending);  // what is being sent stays as sent
    note.placeholder = t("note");
    note.setAttribute("aria-label", t("noteFor", { subject }));
    for (const button of actions.buttons) {
      const action = t(button.dataset.label);
      setText(button, action);
      button.setAttribute("aria-label", t("actionFor", { action, subject }));
      button.setAttribute("aria-busy", String(pending === button.dataset.action));
      button.hidden = only !== undefined && !only.includes(button.dataset.action);
      // aria-disabled, not disabled: a disabled button loses the keyboard's focus to the page's body
      const off = Boolean(pending) || (button.dataset.action === alert.status && alert.status !== "escalated");
      button.setAttribute("aria-disabled", String(off));
    }
  }

  function createCard(alert) {
    const card = {
      item: el("li"),
      crop: cropBox(alert),
      subject: el("span", alert.kind === "watchlist_hit" ? "plate" : "subject"),
      kind: el("span", "kind"),
      badge: el("span"),
      when: el("time", "age"),
      severity: el("span"),
      place: el("span"),
      details: el("div", "details"),
      actions: canHandle() ? actionsBox(alert.alert_id) : null,
      arrived: state.arrived.has(alert.alert_id),
    };
    card.item.dataset.alertId = alert.alert_id;
    const head = el("div", "head");
    head.append(card.subject, card.kind, card.badge, card.when);
    const where = el("div", "where");
    where.append(card.severity, card.place);
    const body = el("div", "body");
    body.append(head, where, card.details);
    if (card.actions) body.append(card.actions.box);
    card.item.append(card.crop, body);
    return card;
  }

  function updateCard(card, alert) {
    // a card shows its alert in the page's language and zone (its age is kept by the periodic
    // timer): with none of these changed there is nothing to do, and a redraw touches only the
    // cards that changed
    const shown = [alert, state.lang, timeZone(), state.pending.get(alert.alert_id), state.notes.get(alert.alert_id)];
    if (card.shown?.every((value, i) => value === shown[i])) return;
    card.shown = shown;
    setClass(card.item, `alert sev-${alert.severity} status-${alert.status}${card.arrived ? " arrived" : ""}`);
    if (card.item.dataset.status !== alert.status) card.item.dataset.status = alert.status;
    setText(card.subject, subjectText(alert));
    setText(card.kind, t(alert.kind));
    setClass(card.badge, `badge status ${alert.status}`);
    setText(card.badge, t(alert.status));
    if (card.when.dateTime !== alert.raised_at) card.when.dateTime = alert.raised_at;
    setText(card.when, ago(alert.raised_at));
    const raised = dateFormat(FULL_TIME).format(new Date(alert.raised_at));
    if (card.when.title !== raised) card.when.title = raised;
    setClass(card.severity, `sev ${alert.severity}`);
    setText(card.severity, t(alert.severity));
    setText(card.place, [alert.checkpoint_id, alert.camera_id, alert.evidence?.direction && t(alert.evidence.direction)]
      .filter(Boolean).join(" · "));
    updateDetails(card, alert);
    updateCrop(card, alert);
    if (card.actions) updateActions(card.actions, alert);
  }

  function cardFor(alert) {
    let card = state.cards.get(alert.alert_id);
    if (!card) {
      card = createCard(alert);
      state.cards.set(alert.alert_id, card);
    }
    updateCard(card, alert);
    return card;
  }

  // the list in the given order, moving only cards out of place; cards not given are removed
  function placeCards(list, cards) {
    const shown = new Set(cards.map((card) => card.item));
    for (const [alertId, card] of state.cards) {
      if (!shown.has(card.item)) {
        card.item.remove();
        state.cards.delete(alertId);
      }
    }
    let next = list.firstElementChild;
    for (const card of cards) {
      if (card.item === next) next = next.nextElementSibling;
      else list.insertBefore(card.item, next);
    }
  }

  // a moved card loses the focus of the note typed in it: give it back, caret included. A card that
  // went (resolved, in the open tab) hands it to the next card (the one before when it was the
  // last), on its same action, or to the list when none is left: not to the page's body, from
  // where the keyboard starts over at the top of the page
  function keepFocus(list, change) {
    const active = document.activeElement;
    const inList = active && list.contains(active);
    const caret = inList && active.tagName === "INPUT" ? [active.selectionStart, active.selectionEnd] : null;
    const item = inList ? active.closest("li.alert") : null;
    const after = [];
    for (let next = item?.nextElementSibling; next; next = next.nextElementSibling) after.push(next);
    const before = [];
    for (let prev = item?.previousElementSibling; prev; prev = prev.previousElementSibling) before.push(prev);
    change();
    if (!inList || document.activeElement === active) return;
    if (active.isConnected) {
      active.focus({ preventScroll: true });
      if (caret) active.setSelectionRange(...caret);
      return;
    }
    const heir = [...after, ...before].find((node) => node.isConnected);
    focusInCard(heir, active.dataset.action) || list.focus({ preventScroll: true });
  }

  function focusInCard(item, action) {
    if (!item) return false;
    const buttons = [...item.querySelectorAll(".actions:not([hidden]) button.act:not([hidden])")];
    const target = buttons.find((b) => b.dataset.action === action) || buttons[0] || $("input.note", item);
    if (!target || target.closest("[hidden]")) return false;
    target.focus();
    state.handedFocus = target;
    state.handedAt = performance.now();
    return true;
  }

  // the card the pointer is aiming at stays where it is when cards come or go above it
  function keepAimedCard(list, change) {
    const aimed = Date.now() - state.pointer.aimedAt < AIM_MS ? state.cards.get(state.pointer.aim) : null;
    const before = aimed?.item.isConnected ? aimed.item.getBoundingClientRect().top : null;
    change();
    if (before !== null && aimed.item.isConnected) {
      list.scrollTop += aimed.item.getBoundingClientRect().top - before;
    }
  }

  function visibleAlerts() {
    return [...state.alerts.values()]
      .filter((a) => state.filter === "all" || isOpen(a))
      .sort((a, b) => b.raised_at.localeCompare(a.raised_at));
  }

  // The stream's and the list's changes are drawn together, once a frame: a burst of hundreds of
  // alerts drawn one by one froze the page for seconds, and a page that reads its stream that slowly
  // is dropped by the server. No frame comes in a hidden tab (a wall's browser minimised or
  // behind another tab): there a timer draws them.
  function renderSoon() {
    if (state.renderSoon) return;
    const render = () => { if (state.renderSoon === render) renderAlerts(); };
    state.renderSoon = render;
    requestAnimationFrame(render);
    setTimeout(render, RENDER_HIDDEN_MS);
  }

  function renderAlerts() {
    const list = $("#alerts");
    if (!list) return;
    state.renderSoon = null;
    // between a press and its release the pressed button must stay where it is
    if (Date.now() - state.pointer.pressedAt < PRESS_MAX_MS) {
      if (!state.renderWaiting) state.renderWaiting = setTimeout(renderAlerts, PRESS_MAX_MS);
      return;
    }
    clearTimeout(state.renderWaiting);
    state.renderWaiting = null;
    const under = cardUnderPointer();
    evictClosed();
    const alerts = visibleAlerts();
    const cards = alerts.map(cardFor);
    state.arrived.clear();
    keepFocus(list, () => keepAimedCard(list, () => placeCards(list, cards)));
    noteSlide(under);
    $("#no-alerts").hidden = alerts.length > 0;
    setText($("#open-count"), String([...state.alerts.values()].filter(isOpen).length));
    document.querySelectorAll(".tabs button").forEach((b) => b.classList.toggle("active", b.dataset.filter === state.filter));
  }

  // the card under the pointer resting over the list (null when it is not there)
  function cardUnderPointer() {
    const { x, y } = state.pointer;
    if (x === null) return null;
    return document.elementFromPoint(x, y)?.closest("li.alert") || null;
  }

  // a redraw put another card under the pointer (the one there went, or moved): a click on it now
  // was aimed at the one before (see deliberate)
  function noteSlide(before) {
    const after = cardUnderPointer();
    if (after && after !== before) {
      state.pointer.slid = after;
      state.pointer.slidAt = performance.now();
    }
  }

  function watchPointer(list) {
    const aim = (event) => {
      const item = event.target.closest?.("li.alert");
      state.pointer.aim = item ? item.dataset.alertId : null;
      state.pointer.aimedAt = Date.now();
      state.pointer.x = event.clientX;
      state.pointer.y = event.clientY;
    };
    list.addEventListener("pointermove", aim);
    list.addEventListener("pointerleave", () => {
      state.pointer.aim = null;
      state.pointer.x = null;
      state.pointer.y = null;
    });
    list.addEventListener("pointerdown", (event) => {
      aim(event);
      state.pointer.pressedAt = Date.now();
    });
    const released = () => {
      if (!state.pointer.pressedAt) return;
      state.pointer.pressedAt = 0;
      if (state.renderWaiting) setTimeout(renderAlerts, 0);  // after this press's click
    };
    document.addEventListener("pointerup", released);
    document.addEventListener("pointercancel", released);
  }

  // ---------- live stream (SSE over fetch) ----------
  async function stream(gen) {
    let failures = 0;
    while (current(gen)) {
      let retryAfterMs = null;
      try {
        await readStream(gen, () => { failures = 0; });
      } catch (error) {  // refused, dropped or stalled: reconnect, unless this session is over
        retryAfterMs = error?.retryAfterMs ?? null;
      }
      if (!current(gen)) return;
      renderLive(false);
      failures += 1;
      const delay = retryAfterMs ?? Math.min(state.retryMs * 2 ** Math.max(0, failures - 2), RECONNECT_MAX_MS);
      await new Promise((resolve) => setTimeout(resolve, delay * (1 + RECONNECT_SPREAD * Math.random())));
    }
  }

  // a 503's Retry-After in seconds (the server starting or busy), as ms; null when there is none
  function retryAfter(response) {
    const seconds = Number(response.headers.get("Retry-After"));
    if (response.status !== 503 || !Number.isFinite(seconds) || seconds <= 0) return null;
    return Math.min(seconds * 1000, RETRY_AFTER_MAX_MS);
  }

  async function readStream(gen, connected) {
    const abort = new AbortController();
    state.streamAbort = abort;
    // a dead connection never ends by itself: no byte for STALL_MS aborts it
    let stall = null;
    let stallMs = STALL_MS;
    const watch = () => {
      clearTimeout(stall);
      stall = setTimeout(() => abort.abort(new Error("stalled")), stallMs);
    };
    watch();
    try {
      const headers = { Accept: "text/event-stream" };
      // the server replays what came after this id, or sends "reset" if it is too old
      if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
      const response = await api("/api/alerts/stream", { signal: abort.signal, headers });
      if (!current(gen)) return;
      // 401 signed out in api(); 403: the user's role may no longer read alerts (changed while the
      // stream was open), and retrying cannot change that: sign out as for an expired token
      if (response.status === 403) {
        signOut("expired");
        throw new SignedOut("signed out");
      }
      if (!response.ok) {
        const error = new Error(String(response.status));
        error.retryAfterMs = retryAfter(response);
        throw error;
      }
      const keepAliveS = Number(response.headers.get("X-Keep-Alive-Seconds"));
      if (keepAliveS > 0) stallMs = Math.max(STALL_KEEPALIVES * keepAliveS * 1000, 6000);
      watch();
      renderLive(true);
      connected();
      if (!state.lastEventId) loadAlerts().catch(() => {});  // first stream: the list up to now
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done || !current(gen)) return;
        watch();
        buffer = handleEvents(buffer + value);
      }
    } finally {
      clearTimeout(stall);
    }
  }

  // handles each complete event in the buffer; returns what is left
  function handleEvents(buffer) {
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      handleEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
    return buffer;
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
    const gen = state.generation;
    const checkpoint = $("#checkpoint").value;
    const query = new URLSearchParams({ minutes: "60" });
    if (checkpoint) query.set("checkpoint_id", checkpoint);
    let counts;
    try {
      counts = await apiJson(`/api/counts?${query}`);
    } catch (error) {
      // a role that reads no counts; an answer to the previous user hides nothing of the next's
      if (error.status === 403 && current(gen)) $("#flow-panel").hidden = true;
      return;
    }
    if (!current(gen)) return;
    state.counts = counts;
    renderCounts();
  }

  function renderCounts() {
    if (!state.counts || !state.chart) return;
    const data = state.counts.data;
    state.chart.update(data, { in: t("vehiclesIn"), out: t("vehiclesOut") }, locale(), timeZone());
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
    const gen = state.generation;
    let cameras;
    try {
      cameras = await apiJson("/api/cameras");
    } catch (error) {
      if (error.status === 403 && current(gen)) $("#camera-panel").hidden = true;
      return;
    }
    if (!current(gen)) return;
    state.cameras = cameras;
    setCheckpoints([...new Set(state.cameras.map((c) => c.checkpoint_id))].sort());
    renderCameras();
  }

  function setCheckpoints(checkpoints) {
    const select = $("#checkpoint");
    const chosen = select.value;
    const all = el("option", null, t("allCheckpoints"));
    all.value = "";
    all.dataset.i18n = "allCheckpoints";
    select.replaceChildren(all, ...checkpoints.map((cp) => { const o = el("option", null, cp); o.value = cp; return o; }));
    select.value = checkpoints.includes(chosen) ? chosen : "";
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
    stopActivity();
    const gen = state.generation;
    state.listed = false;
    $("#login-view").hidden = true;
    $("#console-view").hidden = false;
    $("#signout").hidden = false;
    $("#console-view").classList.toggle("read-only", !canHandle());
    // shown to every role; one that may not read counts or cameras has them hidden by its 403
    $("#flow-panel").hidden = false;
    $("#camera-panel").hidden = false;
    renderWho();
    tick();
    checkSession();
    if (!state.token) return;  // it expired while the page was closed
    if (!state.chart) state.chart = new window.FlowChart($("#flow-chart"));
    loadAlerts().catch(() => {});
    loadCameras().then(loadCounts).catch(() => {});
    stream(gen);
    state.timers.push(setInterval(checkSession, 1000));
    state.timers.push(setInterval(() => { loadCounts().catch(() => {}); loadCameras().catch(() => {}); }, REFRESH_MS));
    state.timers.push(setInterval(() => { loadAlerts().catch(() => {}); }, REFRESH_MS * 2));
    state.timers.push(setInterval(() => {
      document.querySelectorAll("time.age").forEach((node) => setText(node, ago(node.dateTime)));
      renderCameras();
      retryCrops();
    }, 15000));
  }

  function tick() {
    $("#clock").textContent = dateFormat(TOP_CLOCK).format(new Date());
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#login").addEventListener("submit", (event) => {
      signIn(event).catch(() => { $("#login-error").textContent = t("signInNetwork"); });
    });
    $("#signout").addEventListener("click", () => signOut());
    $("#lang").addEventListener("click", () => {
      state.lang = state.lang === "vi" ? "en" : "vi";
      localStorage.setItem("ioc.lang", state.lang);
      applyLanguage();
      if (state.cameras) loadCameras().catch(() => {});
    });
    $("#sound").addEventListener("click", () => {
      if (state.enablingSound) return;  // this click was to let the page play, not to mute it
      state.sound = !state.sound;
      localStorage.setItem("ioc.sound", state.sound ? "on" : "off");
      renderSound();
    });
    document.addEventListener("pointerdown", unlockSound, true);
    document.addEventListener("keydown", unlockSound, true);
    $("#checkpoint").addEventListener("change", () => { loadCounts().catch(() => {}); });
    document.querySelectorAll(".tabs button").forEach((button) => button.addEventListener("click", () => {
      state.filter = button.dataset.filter;
      renderAlerts();
    }));
    watchPointer($("#alerts"));
    tick();
    setInterval(tick, 1000);
    applyLanguage();
    if (state.token && state.user) start();
  });
})();
