// Safety Nexus control room, level 1: site overview, live alarm list, one trend.
//
// REST loads the initial picture and the trend history; the WebSocket at /api/v1/stream keeps
// it live (status about once a second, every alarm change). If the socket drops, the page says
// so, keeps polling REST, and reconnects with backoff. Everything put into the page is built
// with textContent and setAttribute, never innerHTML, so no text from the server can inject
// markup.
"use strict";

(() => {
  const API = "/api/v1";
  const PRIORITIES = ["emergency", "high", "medium", "low"]; // most urgent first
  const RANK = { low: 1, medium: 2, high: 3, emergency: 4 };
  const PRIORITY_LABEL = { emergency: "Emergency", high: "High", medium: "Medium", low: "Low" };
  const PRIORITY_SHORT = { emergency: "E", high: "H", medium: "M", low: "L" };
  const STATE_LABEL = { // short for the list; the row's tooltip spells it out
    unacknowledged: "Unack",
    acknowledged: "Acked",
    returned_unacknowledged: "RTN unack", // ISA-18.2: returned to normal
    normal: "Normal",
  };
  const STATE_TITLE = {
    unacknowledged: "Active, not acknowledged",
    acknowledged: "Active, acknowledged",
    returned_unacknowledged: "Returned to normal, not acknowledged",
    normal: "Closed",
  };
  const TREND_POLL_MS = 2000;
  const OFFLINE_POLL_MS = 5000;
  const STALE_AFTER_MS = 5000; // a live socket that has said nothing for this long is suspect
  const FETCH_TIMEOUT_MS = 8000;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const state = {
    site: null,
    assetsBySubsystem: new Map(), // subsystem id -> [asset]
    status: null,
    simTime: null, // the site's (possibly simulated) time, from the status feed
    alarms: new Map(), // open alarms by id
    signals: [],
    signalById: new Map(),
    pendingAcks: new Set(),
    selectedAlarm: null,
    trend: { signal: null, chosen: false, minutes: 15, data: null, range: null, error: null },
    conn: { state: "connecting", lastMessage: 0, retryAt: 0 },
  };

  // ---- small helpers --------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.setAttribute("class", value);
      else if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  const isNum = (x) => typeof x === "number" && Number.isFinite(x);
  const asArray = (x) => (Array.isArray(x) ? x : []);
  const pad = (n) => String(n).padStart(2, "0");

  function fmtClock(t) {
    if (!isNum(t)) return "––––-––-–– ––:––:––";
    const d = new Date(t * 1000);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  }

  function fmtTime(t, seconds = true) {
    if (!isNum(t)) return "–";
    const d = new Date(t * 1000);
    const hm = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    return seconds ? `${hm}:${pad(d.getUTCSeconds())}` : hm;
  }

  function fmtNum(v) {
    if (!isNum(v)) return "–";
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
    return String(Number(v.toPrecision(4)));
  }

  const priorityOf = (alarm) => (RANK[alarm && alarm.priority] ? alarm.priority : "low");
  const rankOf = (alarm) => (isNum(alarm.priority_rank) ? alarm.priority_rank : RANK[priorityOf(alarm)]);
  const isUnacked = (alarm) =>
    alarm.state === "unacknowledged" || alarm.state === "returned_unacknowledged";

  async function fetchJSON(path, options = {}) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), FETCH_TIMEOUT_MS);
    try {
      const res = await fetch(path, { ...options, signal: ctrl.signal, cache: "no-store" });
      if (!res.ok) {
        let detail = `${res.status} ${res.statusText}`;
        try {
          const body = await res.json(); // the API answers {"error": ...}; FastAPI {"detail": ...}
          if (body && typeof body.error === "string") detail = body.error;
          else if (body && typeof body.detail === "string") detail = body.detail;
        } catch (_) { /* the status line will do */ }
        throw new Error(detail);
      }
      return await res.json();
    } catch (err) {
      if (err && err.name === "AbortError") throw new Error("request timed out");
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  const notices = new Map(); // key -> message; several problems can be shown at once
  function notice(key, message) {
    if (message) notices.set(key, message);
    else notices.delete(key);
    const box = $("notice");
    box.textContent = [...notices.values()].join(" · ");
    box.hidden = notices.size === 0;
  }

  // ---- render scheduling: several updates in one frame cost one render ----------------

  const dirty = new Set();
  let frameRequested = false;
  function invalidate(...parts) {
    for (const p of parts) dirty.add(p);
    if (!frameRequested) {
      frameRequested = true;
      requestAnimationFrame(render);
    }
  }

  function render() {
    frameRequested = false;
    const parts = new Set(dirty);
    dirty.clear();
    const steps = [
      ["header", renderHeader],
      ["tiles", renderTiles],
      ["alarms", renderAlarms],
      ["signals", renderSignalOptions],
      ["trend", renderTrend],
    ];
    for (const [name, fn] of steps) {
      if (!parts.has(name)) continue;
      try {
        fn();
      } catch (err) {
        // One broken part must not blank the whole control room.
        console.warn(`render ${name} failed`, err);
      }
    }
  }

  // ---- data in --------------------------------------------------------------------------

  async function loadSite() {
    try {
      const site = await fetchJSON(`${API}/site`);
      state.site = site;
      state.assetsBySubsystem = new Map();
      for (const asset of asArray(site && site.assets)) {
        if (!state.assetsBySubsystem.has(asset.subsystem)) {
          state.assetsBySubsystem.set(asset.subsystem, []);
        }
        state.assetsBySubsystem.get(asset.subsystem).push(asset);
      }
      notice("site", null);
    } catch (err) {
      notice("site", `Site model unavailable: ${err.message}`);
    }
    invalidate("header", "tiles");
  }

  async function loadSignals() {
    try {
      const signals = asArray(await fetchJSON(`${API}/signals`));
      state.signals = signals.filter((s) => s && typeof s.id === "string");
      state.signalById = new Map(state.signals.map((s) => [s.id, s]));
      notice("signals", null);
    } catch (err) {
      notice("signals", `Signal list unavailable: ${err.message}`);
    }
    pickDefaultSignal();
    invalidate("signals", "trend");
  }

  async function loadStatus() {
    try {
      applyStatus(await fetchJSON(`${API}/status`));
      notice("status", null);
    } catch (err) {
      notice("status", `Status unavailable: ${err.message}`);
    }
  }

  async function loadAlarms() {
    try {
      const alarms = asArray(await fetchJSON(`${API}/alarms?state=open`));
      state.alarms = new Map();
      for (const alarm of alarms) {
        if (alarm && typeof alarm.id === "string" && alarm.state !== "normal") {
          state.alarms.set(alarm.id, alarm);
        }
      }
      notice("alarms", null);
    } catch (err) {
      notice("alarms", `Alarm list unavailable: ${err.message}`);
    }
    pickDefaultSignal();
    invalidate("header", "tiles", "alarms");
  }

  function applyStatus(status) {
    if (!status || typeof status !== "object") return;
    state.status = status;
    if (isNum(status.time)) state.simTime = status.time;
    invalidate("header", "tiles");
  }

  function applyAlarm(alarm) {
    if (!alarm || typeof alarm.id !== "string") return;
    if (alarm.state === "normal") state.alarms.delete(alarm.id);
    else state.alarms.set(alarm.id, alarm);
    pickDefaultSignal();
    invalidate("header", "tiles", "alarms");
  }

  function handleMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "status") applyStatus(msg.status);
    else if (msg.type === "alarm") applyAlarm(msg.alarm);
    // Findings feed later views (diagnostics, incidents); level 1 shows alarms only.
  }

  // ---- live connection ------------------------------------------------------------------

  let socket = null;
  let backoff = 500;

  function setConn(name) {
    state.conn.state = name;
    renderConn();
  }

  function connect() {
    setConn(state.conn.lastMessage ? "reconnecting" : "connecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let ws;
    try {
      ws = new WebSocket(`${scheme}://${location.host}${API}/stream`);
    } catch (_) {
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.onopen = () => {
      backoff = 500;
      state.conn.lastMessage = Date.now();
      setConn("live");
      // Changes may have happened while we were away: reload what the stream only patches.
      loadAlarms();
      loadStatus();
    };
    ws.onmessage = (event) => {
      state.conn.lastMessage = Date.now();
      if (state.conn.state !== "live") setConn("live");
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      handleMessage(msg);
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      scheduleReconnect();
    };
    ws.onerror = () => { /* onclose follows and reconnects */ };
  }

  function scheduleReconnect() {
    const delay = backoff * (0.8 + Math.random() * 0.4); // jitter: clients do not stampede
    backoff = Math.min(backoff * 2, 10000);
    state.conn.retryAt = Date.now() + delay;
    setConn("reconnecting");
    setTimeout(connect, delay);
  }

  function tick() {
    const c = state.conn;
    if (c.state === "live" && Date.now() - c.lastMessage > STALE_AFTER_MS) setConn("stale");
    else if (c.state !== "live") renderConn(); // keeps the countdown current
  }

  async function pollWhileOffline() {
    if (state.conn.state === "live" || document.hidden) return;
    await Promise.allSettled([loadStatus(), loadAlarms()]);
  }

  // ---- header ---------------------------------------------------------------------------

  function renderConn() {
    const node = $("connection-state");
    const c = state.conn;
    let text;
    if (c.state === "live") text = "Live";
    else if (c.state === "connecting") text = "Connecting…";
    else if (c.state === "stale") {
      text = `No update for ${Math.round((Date.now() - c.lastMessage) / 1000)} s`;
    } else {
      const secs = Math.max(0, Math.ceil((c.retryAt - Date.now()) / 1000));
      text = secs > 0 ? `Disconnected · retry in ${secs} s` : "Disconnected · retrying…";
    }
    node.dataset.state = c.state;
    node.textContent = text;
  }

  function countByPriority(alarms) {
    const counts = { emergency: 0, high: 0, medium: 0, low: 0 };
    for (const a of alarms) counts[priorityOf(a)] += 1;
    return counts;
  }

  function counters(counts, label) {
    return el("span", { class: "counts", "aria-label": label },
      PRIORITIES.map((p) => {
        const n = isNum(counts && counts[p]) ? counts[p] : 0;
        return el("span", {
          class: `pcount prio-${p}`,
          "data-priority": p,
          "data-nonzero": n > 0 ? "true" : "false",
          title: `${PRIORITY_LABEL[p]}: ${n} open`,
        }, PRIORITY_SHORT[p], el("b", null, n));
      }));
  }

  function renderHeader() {
    const name = state.site && typeof state.site.name === "string" ? state.site.name : "–";
    $("site-name").textContent = name;
    $("site-clock").textContent = fmtClock(state.simTime);
    $("site-clock").setAttribute("datetime", isNum(state.simTime)
      ? new Date(state.simTime * 1000).toISOString() : "");

    const open = [...state.alarms.values()];
    const unacked = open.filter(isUnacked).length;
    const summary = $("alarm-summary");
    summary.replaceChildren(
      el("span", { class: "label" }, "Open alarms"),
      counters(countByPriority(open), "open alarms by priority"),
      el("span", { class: "unack-total", "data-nonzero": unacked > 0 ? "true" : "false" },
        `${unacked} unacknowledged`),
    );
    document.title = unacked > 0 ? `(${unacked}) Safety Nexus · ${name}` : `Safety Nexus · ${name}`;
  }

  // ---- level 1 tiles --------------------------------------------------------------------

  function subsystemsToShow() {
    const fromStatus = asArray(state.status && state.status.subsystems);
    if (fromStatus.length) return fromStatus;
    // Before the first status arrives, lay out the tiles from the site model.
    return asArray(state.site && state.site.subsystems).map((s) => ({ ...s, status: "unknown" }));
  }

  function assetPriorities() {
    const worst = new Map();
    for (const alarm of state.alarms.values()) {
      const p = priorityOf(alarm);
      const prev = worst.get(alarm.asset);
      if (!prev || RANK[p] > RANK[prev]) worst.set(alarm.asset, p);
    }
    return worst;
  }

  function renderTiles() {
    const worst = assetPriorities();
    const tiles = subsystemsToShow().map((sub) => {
      const status = RANK[sub.status] || sub.status === "normal" ? sub.status : "unknown";
      const statusWord = status === "unknown" ? "–" : status === "normal"
        ? "Normal" : PRIORITY_LABEL[status];
      const assets = state.assetsBySubsystem.get(sub.id) || [];
      const total = isNum(sub.assets_total) ? sub.assets_total : assets.length;
      const abnormal = isNum(sub.assets_abnormal) ? sub.assets_abnormal : 0;

      let bar;
      if (assets.length) {
        bar = el("div", { class: "asset-bar", "aria-hidden": "true" }, assets.map((a) => {
          const p = worst.get(a.id);
          return el("span", {
            class: p ? `asset-cell prio-${p}` : "asset-cell",
            title: `${a.name || a.id}${p ? ` – ${PRIORITY_LABEL[p]}` : ""}`,
          });
        }));
      } else {
        // No site model: show the abnormal share as a proportion instead.
        const pct = total > 0 ? Math.round((100 * abnormal) / total) : 0;
        bar = el("div", { class: "asset-bar ratio", "aria-hidden": "true" },
          el("span", {
            class: status !== "normal" && status !== "unknown" ? `asset-cell prio-${status}` : "asset-cell",
            style: `width:${pct}%`,
          }));
      }

      return el("article", {
        class: "tile",
        "data-testid": "subsystem-tile",
        "data-subsystem": sub.id,
        "data-status": status,
        "aria-label": `${sub.name || sub.id}: ${statusWord}`,
      },
      el("div", { class: "tile-head" },
        el("span", { class: "tile-name", title: sub.name || sub.id }, sub.name || sub.id),
        el("span", { class: "tile-status", "data-testid": "tile-status" }, statusWord)),
      counters(sub.open_alarms, "open alarms by priority"),
      bar,
      el("div", { class: "tile-foot" },
        el("span", { class: "tile-assets-text" },
          total ? `${abnormal} of ${total} assets abnormal` : "no assets")));
    });
    $("tiles").replaceChildren(...tiles);
  }

  // ---- alarm list -----------------------------------------------------------------------

  const rows = new Map(); // alarm id -> <tr>, kept so a click is never lost to a re-render

  function sortedAlarms() {
    return [...state.alarms.values()].sort((a, b) =>
      rankOf(b) - rankOf(a) ||
      (b.first_seen || 0) - (a.first_seen || 0) ||
      String(a.id).localeCompare(String(b.id)));
  }

  function makeRow(id) {
    const cell = (cls) => el("td", { class: cls });
    const button = el("button", {
      type: "button",
      class: "ack-button",
      "data-testid": "ack-button",
    }, "Acknowledge");
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      acknowledge(id);
    });
    const tr = el("tr", { class: "alarm-row", "data-testid": "alarm-row", tabindex: "0" },
      cell("c-time"), el("td", { class: "c-prio" }, el("span", { class: "prio-badge" })),
      cell("c-asset"), cell("c-kind"), cell("c-msg"), cell("c-state"), cell("c-count"),
      el("td", { class: "c-act" }, button, el("span", { class: "acked-by" })));
    tr.dataset.alarmId = id;
    tr.addEventListener("click", () => selectAlarm(id));
    tr.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === tr) selectAlarm(id);
    });
    return tr;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function updateRow(tr, alarm) {
    const p = priorityOf(alarm);
    tr.dataset.state = alarm.state;
    tr.dataset.priority = p;
    tr.setAttribute("aria-selected", state.selectedAlarm === alarm.id ? "true" : "false");
    const [time, prio, asset, kind, msg, st, count, act] = tr.children;
    setText(time, fmtTime(alarm.first_seen));
    time.title = `raised ${fmtClock(alarm.first_seen)}, last ${fmtClock(alarm.last_seen)} UTC`;
    const badge = prio.firstChild;
    badge.className = `prio-badge prio-${p}`;
    setText(badge, PRIORITY_LABEL[p]);
    setText(asset, String(alarm.asset ?? ""));
    setText(kind, String(alarm.kind ?? "").replace(/_/g, " "));
    setText(msg, String(alarm.message ?? ""));
    msg.title = String(alarm.message ?? "");
    setText(st, STATE_LABEL[alarm.state] || String(alarm.state ?? ""));
    st.title = STATE_TITLE[alarm.state] || "";
    setText(count, isNum(alarm.count) ? String(alarm.count) : "");
    const [button, ackedBy] = act.children;
    const pending = state.pendingAcks.has(alarm.id);
    button.hidden = !isUnacked(alarm);
    button.disabled = pending;
    setText(button, pending ? "Sending…" : "Acknowledge");
    setText(ackedBy, !isUnacked(alarm) && alarm.acknowledged_by ? `by ${alarm.acknowledged_by}` : "");
    ackedBy.title = isNum(alarm.acknowledged_at) ? `at ${fmtClock(alarm.acknowledged_at)} UTC` : "";
  }

  function renderAlarms() {
    const body = $("alarm-rows");
    const alarms = sortedAlarms();
    const keep = new Set(alarms.map((a) => a.id));
    for (const [id, tr] of rows) {
      if (!keep.has(id)) {
        tr.remove();
        rows.delete(id);
      }
    }
    alarms.forEach((alarm, i) => {
      let tr = rows.get(alarm.id);
      if (!tr) {
        tr = makeRow(alarm.id);
        rows.set(alarm.id, tr);
      }
      updateRow(tr, alarm);
      if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    });
    $("alarm-empty").hidden = alarms.length > 0;
    $("alarm-count").textContent = alarms.length ? `(${alarms.length})` : "";
  }

  function operatorName() {
    const value = $("operator").value.trim();
    return value || "operator";
  }

  async function acknowledge(id) {
    if (state.pendingAcks.has(id)) return;
    state.pendingAcks.add(id);
    invalidate("alarms");
    try {
      const alarm = await fetchJSON(`${API}/alarms/${encodeURIComponent(id)}/acknowledge`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ user: operatorName(), note: null }),
      });
      notice("ack", null);
      state.pendingAcks.delete(id);
      applyAlarm(alarm);
    } catch (err) {
      notice("ack", `Acknowledge of ${id} failed: ${err.message}`);
      loadAlarms(); // e.g. someone else acknowledged it first: show the alarm as it now is
    } finally {
      state.pendingAcks.delete(id);
      invalidate("alarms");
    }
  }

  function selectAlarm(id) {
    const alarm = state.alarms.get(id);
    if (!alarm) return;
    state.selectedAlarm = id;
    const signal = asArray(alarm.signals).find((s) => typeof s === "string");
    if (signal) chooseSignal(signal, true);
    invalidate("alarms");
  }

  // ---- trend ----------------------------------------------------------------------------

  function pickDefaultSignal() {
    if (state.trend.chosen) return;
    let newest = null;
    for (const alarm of state.alarms.values()) {
      if (!asArray(alarm.signals).length) continue;
      if (!newest || (alarm.last_seen || 0) > (newest.last_seen || 0)) newest = alarm;
    }
    const candidate = newest ? newest.signals[0]
      : state.signals.length ? state.signals[0].id : null;
    if (candidate && candidate !== state.trend.signal) chooseSignal(candidate, false);
  }

  function chooseSignal(id, byUser) {
    if (byUser) state.trend.chosen = true;
    if (id === state.trend.signal) return;
    state.trend.signal = id;
    state.trend.data = null;
    state.trend.error = null;
    invalidate("signals", "trend");
    refreshTrend();
  }

  function renderSignalOptions() {
    const select = $("signal-select");
    const terms = $("signal-filter").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const match = (s) => terms.every((t) => s.id.toLowerCase().includes(t));
    let shown = state.signals.filter(match);
    const current = state.trend.signal;
    // The select must always show what the trend draws, even if the filter hides it.
    if (current && !shown.some((s) => s.id === current)) {
      shown = [state.signalById.get(current) || { id: current }, ...shown];
    }
    const options = shown.slice(0, 1000).map((s) =>
      el("option", { value: s.id }, s.unit ? `${s.id} (${s.unit})` : s.id));
    if (!options.length) options.push(el("option", { value: "", disabled: true }, "No signals"));
    select.replaceChildren(...options);
    select.value = current || "";
  }

  let trendInflight = false;
  async function refreshTrend() {
    const signal = state.trend.signal;
    if (!signal || trendInflight) return;
    trendInflight = true;
    // The window ends at the site's time, which a simulator may run far from the wall clock.
    // `until` is left to the server, so samples newer than our last status still show.
    const until = isNum(state.simTime) ? state.simTime : Date.now() / 1000;
    const since = until - state.trend.minutes * 60;
    const width = Math.max(200, Math.round($("trend-svg").clientWidth || 600));
    const query = new URLSearchParams({
      since: String(since),
      max_points: String(Math.min(2000, width)),
    });
    try {
      const data = await fetchJSON(`${API}/signals/${encodeURIComponent(signal)}/history?${query}`);
      if (signal === state.trend.signal) {
        state.trend.data = data;
        state.trend.range = [since, until];
        state.trend.error = null;
      }
    } catch (err) {
      if (signal === state.trend.signal) state.trend.error = err.message;
    } finally {
      trendInflight = false;
      invalidate("trend");
    }
  }

  function niceStep(span, maxTicks) {
    const raw = span / Math.max(1, maxTicks);
    const mag = 10 ** Math.floor(Math.log10(raw));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
    return 10 * mag;
  }

  function valueTicks(lo, hi, maxTicks) {
    const step = niceStep(hi - lo, maxTicks);
    const ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
      ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    return { ticks, step };
  }

  function timeTicks(t0, t1, maxTicks) {
    const steps = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200];
    const step = steps.find((s) => (t1 - t0) / s <= maxTicks) || 86400;
    const ticks = [];
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) ticks.push(t);
    return { ticks, step };
  }

  function fmtTick(v, step) {
    // As many decimals as the step needs to be exact (0.0025 needs four), so labels differ.
    let decimals = 0;
    while (decimals < 8 && Math.abs(Math.round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-6) {
      decimals += 1;
    }
    return v.toFixed(decimals);
  }

  function renderTrend() {
    const root = $("trend-svg");
    const W = Math.max(200, root.clientWidth || 600);
    const H = Math.max(160, root.clientHeight || 300);
    root.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const nodes = [];
    const message = (text) => {
      nodes.push(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "message" }, text));
      root.replaceChildren(...nodes);
    };

    const trend = state.trend;
    const info = trend.signal ? state.signalById.get(trend.signal) : null;
    renderTrendMeta(info);
    if (!trend.signal) return message("No signal selected");
    if (!trend.data) return message(trend.error ? `Trend unavailable: ${trend.error}` : "Loading…");

    const data = trend.data;
    const [nlo, nhi] = Array.isArray(data.normal) ? data.normal : [NaN, NaN];
    const limits = Array.isArray(data.limits) ? data.limits : null;
    const times = asArray(data.times);
    const values = asArray(data.values);
    const pts = [];
    for (let i = 0; i < Math.min(times.length, values.length); i++) {
      pts.push(isNum(times[i]) && isNum(values[i]) ? [times[i], values[i]] : null);
    }
    const real = pts.filter(Boolean);

    const m = { l: 58, r: 14, t: 12, b: 30 };
    const pw = W - m.l - m.r;
    const ph = H - m.t - m.b;
    let [t0, t1] = trend.range || [0, 1];
    if (real.length && real[real.length - 1][0] > t1) t1 = real[real.length - 1][0];
    if (!(t1 > t0)) t1 = t0 + 1;

    // Y range: the normal band and the data, padded; limits join in only when data nears them.
    let lo = Math.min(...real.map((p) => p[1]), isNum(nlo) ? nlo : Infinity);
    let hi = Math.max(...real.map((p) => p[1]), isNum(nhi) ? nhi : -Infinity);
    if (!isNum(lo) || !isNum(hi)) { lo = 0; hi = 1; }
    if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
    const padY = (hi - lo) * 0.12;
    lo -= padY;
    hi += padY;
    if (limits) {
      if (isNum(limits[0]) && limits[0] > lo - (hi - lo) * 0.5 && limits[0] < lo) lo = limits[0] - padY * 0.3;
      if (isNum(limits[1]) && limits[1] < hi + (hi - lo) * 0.5 && limits[1] > hi) hi = limits[1] + padY * 0.3;
    }
    const x = (t) => m.l + ((t - t0) / (t1 - t0)) * pw;
    const y = (v) => m.t + (1 - (v - lo) / (hi - lo)) * ph;
    const clampY = (v) => Math.max(m.t, Math.min(m.t + ph, y(v)));

    // Normal band first, so everything else draws over it.
    if (isNum(nlo) && isNum(nhi)) {
      const top = clampY(nhi);
      const bottom = clampY(nlo);
      nodes.push(svg("rect", { class: "band", x: m.l, y: top, width: pw, height: Math.max(0, bottom - top) }));
    }

    const vt = valueTicks(lo, hi, Math.max(2, Math.floor(ph / 40)));
    for (const v of vt.ticks) {
      const yy = y(v);
      nodes.push(svg("line", { class: "grid", x1: m.l, x2: m.l + pw, y1: yy, y2: yy }));
      nodes.push(svg("text", { x: m.l - 6, y: yy + 4, "text-anchor": "end" }, fmtTick(v, vt.step)));
    }
    const tt = timeTicks(t0, t1, Math.max(2, Math.floor(pw / 90)));
    for (const t of tt.ticks) {
      const xx = x(t);
      nodes.push(svg("line", { class: "grid", x1: xx, x2: xx, y1: m.t, y2: m.t + ph }));
      nodes.push(svg("text", { x: xx, y: m.t + ph + 16, "text-anchor": "middle" },
        fmtTime(t, tt.step < 60)));
    }
    nodes.push(svg("line", { class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: m.t + ph }));
    nodes.push(svg("line", { class: "axis", x1: m.l, x2: m.l + pw, y1: m.t + ph, y2: m.t + ph }));
    const unit = typeof data.unit === "string" && data.unit ? data.unit : "";
    nodes.push(svg("text", {
      class: "axis-title",
      transform: `translate(14 ${m.t + ph / 2}) rotate(-90)`,
      "text-anchor": "middle",
    }, unit || "value"));
    nodes.push(svg("text", { class: "axis-title", x: m.l + pw, y: H - 2, "text-anchor": "end" }, "UTC"));

    if (limits) {
      for (const v of limits) {
        if (isNum(v) && v >= lo && v <= hi) {
          nodes.push(svg("line", { class: "limit", x1: m.l, x2: m.l + pw, y1: y(v), y2: y(v) }));
        }
      }
    }

    if (!real.length) {
      nodes.push(svg("text", { x: m.l + pw / 2, y: m.t + ph / 2, "text-anchor": "middle", class: "message" },
        "No samples in this window"));
      root.replaceChildren(...nodes);
      return;
    }

    // Break the line at nulls and at gaps much longer than the usual spacing.
    const spacing = real.length > 1 ? (real[real.length - 1][0] - real[0][0]) / (real.length - 1) : 0;
    const gap = spacing > 0 ? spacing * 5 : Infinity;
    let d = "";
    let prev = null;
    for (const p of pts) {
      if (!p) { prev = null; continue; }
      const cmd = prev && p[0] - prev[0] <= gap ? "L" : "M";
      d += `${cmd}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`;
      prev = p;
    }
    nodes.push(svg("path", { class: "line", d }));

    // Colour only where the signal is abnormal.
    const limLo = limits && isNum(limits[0]) ? limits[0] : -Infinity;
    const limHi = limits && isNum(limits[1]) ? limits[1] : Infinity;
    for (const [t, v] of real) {
      if (v < limLo || v > limHi) {
        nodes.push(svg("circle", { class: "pt-beyond", cx: x(t), cy: y(v), r: 3 }));
      } else if ((isNum(nlo) && v < nlo) || (isNum(nhi) && v > nhi)) {
        nodes.push(svg("circle", { class: "pt-out", cx: x(t), cy: y(v), r: 2.5 }));
      }
    }
    const last = real[real.length - 1];
    nodes.push(svg("circle", { class: "now-dot", cx: x(last[0]), cy: y(last[1]), r: 3 }));
    root.replaceChildren(...nodes);
  }

  function renderTrendMeta(info) {
    const meta = $("trend-meta");
    const trend = state.trend;
    if (!trend.signal) {
      meta.replaceChildren();
      return;
    }
    const data = trend.data || {};
    const unit = data.unit || (info && info.unit) || "";
    const u = unit ? ` ${unit}` : "";
    const normal = Array.isArray(data.normal) ? data.normal : info && info.normal;
    const limits = Array.isArray(data.limits) ? data.limits : info && info.limits;
    const values = asArray(data.values);
    let latest = null;
    for (let i = values.length - 1; i >= 0; i--) {
      if (isNum(values[i])) { latest = values[i]; break; }
    }
    if (latest === null && info && info.latest && isNum(info.latest.value)) latest = info.latest.value;
    let cls = "val";
    if (latest !== null && Array.isArray(limits) && (latest < limits[0] || latest > limits[1])) cls += " beyond";
    else if (latest !== null && Array.isArray(normal) && (latest < normal[0] || latest > normal[1])) cls += " out";
    const parts = [el("span", { class: "sig" }, trend.signal),
      el("span", null, "Value ", el("span", { class: cls, "data-testid": "trend-value" },
        latest === null ? "–" : `${fmtNum(latest)}${u}`))];
    if (Array.isArray(normal)) parts.push(el("span", null, `Normal ${fmtNum(normal[0])} – ${fmtNum(normal[1])}${u}`));
    if (Array.isArray(limits)) parts.push(el("span", null, `Limits ${fmtNum(limits[0])} – ${fmtNum(limits[1])}${u}`));
    meta.replaceChildren(...parts);
  }

  // ---- wiring ---------------------------------------------------------------------------

  function bindControls() {
    const operator = $("operator");
    try {
      const saved = localStorage.getItem("nexus.operator");
      if (saved) operator.value = saved;
    } catch (_) { /* storage may be disabled; the default name stands */ }
    operator.addEventListener("change", () => {
      try {
        localStorage.setItem("nexus.operator", operatorName());
      } catch (_) { /* not remembered, still used */ }
    });

    $("signal-select").addEventListener("change", (event) => {
      if (event.target.value) chooseSignal(event.target.value, true);
    });
    const filter = $("signal-filter");
    filter.addEventListener("input", () => invalidate("signals"));
    filter.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      const terms = filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      const first = state.signals.find((s) => terms.every((t) => s.id.toLowerCase().includes(t)));
      if (first) chooseSignal(first.id, true);
    });
    $("trend-window").addEventListener("change", (event) => {
      const minutes = Number(event.target.value);
      if (isNum(minutes) && minutes > 0) {
        state.trend.minutes = minutes;
        refreshTrend();
      }
    });
    window.addEventListener("resize", () => invalidate("trend"));
  }

  function trendLoop() {
    if (!document.hidden) refreshTrend();
    setTimeout(trendLoop, TREND_POLL_MS);
  }

  async function boot() {
    bindControls();
    invalidate("header", "tiles", "alarms", "signals", "trend");
    renderConn();
    await Promise.allSettled([loadSite(), loadStatus(), loadAlarms(), loadSignals()]);
    connect();
    setInterval(tick, 1000);
    setInterval(pollWhileOffline, OFFLINE_POLL_MS);
    setTimeout(trendLoop, TREND_POLL_MS);
  }

  boot();
})();
