// Safety Nexus control room, level 1: site overview, live alarm list, one trend.
//
// REST loads the initial picture and the trend history; the WebSocket at /api/v1/stream keeps
// it live (status about once a second, every alarm change). If the socket drops, the page says
// so, keeps polling REST, and reconnects with backoff. Everything put into the page is built
// with textContent and setAttribute, never innerHTML, so no text from the server can inject
// markup.
//
// The alarm list (ISA-18.2 states, ISA-101 look): the alarms on the operators' list, or with
// the "Removed" switch those taken off it (shelved, suppressed, out of service) with the
// reason; a root cause's grouped consequences expand under it; each alarm's actions open in a
// row beneath it. During an alarm flood a banner says so and the medium and low alarms of the
// flooded position fold into one count line, so the high and emergency ones stand out.
"use strict";

(() => {
  const API = "/api/v1";
  const PRIORITIES = ["emergency", "high", "medium", "low"]; // most urgent first
  const RANK = { low: 1, medium: 2, high: 3, emergency: 4 };
  const PRIORITY_LABEL = { emergency: "Emergency", high: "High", medium: "Medium", low: "Low" };
  const PRIORITY_SHORT = { emergency: "E", high: "H", medium: "M", low: "L" };
  const STATE_LABEL = { // the state in words; the cell's tooltip spells it out
    unacknowledged: "Unacknowledged",
    acknowledged: "Acknowledged",
    returned_unacknowledged: "Returned unack", // ISA-18.2: returned to normal, unacknowledged
    latched: "Latched",
    shelved: "Shelved",
    suppressed: "Suppressed",
    out_of_service: "Out of service",
    normal: "Normal",
  };
  const STATE_TITLE = {
    unacknowledged: "Active, not acknowledged",
    acknowledged: "Active, acknowledged",
    returned_unacknowledged: "Returned to normal, not acknowledged",
    latched: "Cleared after acknowledgement; stays until an operator resets it",
    shelved: "Shelved by an operator: off the list for a time",
    suppressed: "Suppressed by design: under its root cause or a maintenance window",
    out_of_service: "Out of service: taken off the list by an operator",
    normal: "Closed",
  };
  const SHOWN_STATES = new Set(["unacknowledged", "acknowledged", "returned_unacknowledged", "latched"]);
  const ACTION = { // path segment -> what the operator sees
    acknowledge: { label: "Acknowledge", short: "Ack", done: "Acknowledged" },
    reset: { label: "Reset", short: "Reset", done: "Reset" },
    shelve: { label: "Shelve", short: "Shelve", done: "Shelved" },
    unshelve: { label: "Unshelve", short: "Unshelve", done: "Unshelved" },
    "out-of-service": { label: "Out of service", short: "OOS", done: "Took out of service" },
    "return-to-service": { label: "Return to service", short: "Return", done: "Returned to service" },
  };
  const SHELVE_CHOICES = [ // seconds, or "one-shot": until the condition next clears
    ["900", "15 min"], ["3600", "1 h"], ["28800", "8 h"], ["one-shot", "One-shot (until it clears)"],
  ];
  // During a flood, alarms below this rank at the flooded position fold into one count line.
  const FLOOD_KEEP_RANK = RANK.high;
  const FLOODS_THROTTLE_MS = 1000;
  const FLOODS_POLL_MS = 5000; // a flood also ends by time passing, with no alarm changing
  const STATUS_CLEAR_MS = 8000;
  const BLINK_MS = 500; // unacknowledged alarms blink once a second, all in step
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
    alarms: new Map(), // alarms on the operators' list, by id
    removed: new Map(), // shelved, suppressed and out-of-service alarms, by id
    known: new Map(), // the latest copy of every alarm seen (consequences are looked up here)
    view: "open", // "open": the list; "removed": what is off it
    floods: [], // from /alarms/floods
    floodExpanded: false, // the folded lower-priority alarms are shown
    expanded: new Set(), // root causes whose consequences are shown
    actionsOpen: null, // the alarm whose action row is open
    history: new Map(), // alarm id -> {entries, error}
    signals: [],
    signalById: new Map(),
    pending: new Map(), // alarm id -> the action under way
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

  const isShown = (alarm) =>
    typeof alarm.shown === "boolean" ? alarm.shown : SHOWN_STATES.has(alarm.state);

  // A snapshot requested before a stream update can arrive after it: per alarm, the newer one
  // wins. `updates` counts the alarm copies applied one by one (stream, action answers).
  let updates = 0;
  const updatedAt = new Map(); // alarm id -> `updates` when it was last applied singly
  const newerThan = (id, started) => (updatedAt.get(id) || 0) > started;

  function place(alarm, shown, removed) {
    if (alarm.state !== "normal") (isShown(alarm) ? shown : removed).set(alarm.id, alarm);
  }

  async function loadAlarms() {
    const started = updates;
    try {
      // `live`: every alarm not closed, both those on the list and those taken off it.
      const alarms = asArray(await fetchJSON(`${API}/alarms?state=live`));
      const shown = new Map();
      const removed = new Map();
      for (const alarm of alarms) {
        if (!alarm || typeof alarm.id !== "string" || newerThan(alarm.id, started)) continue;
        state.known.set(alarm.id, alarm);
        place(alarm, shown, removed);
      }
      for (const [id, at] of updatedAt) {
        const alarm = state.known.get(id);
        if (at > started && alarm) place(alarm, shown, removed);
      }
      state.alarms = shown;
      state.removed = removed;
      notice("alarms", null);
    } catch (err) {
      notice("alarms", `Alarm list unavailable: ${err.message}`);
    }
    pickDefaultSignal();
    invalidate("header", "tiles", "alarms");
  }

  // Ids looked for with ?state=all: one that is not there is not asked for on every render.
  const sought = new Set();
  function seek(ids) {
    const fresh = ids.filter((id) => !sought.has(id));
    if (!fresh.length) return;
    for (const id of fresh) sought.add(id);
    loadAllAlarms();
  }

  // Every alarm this run has seen: consequences can be in any state, and none may be hidden.
  let allInflight = false;
  async function loadAllAlarms() {
    if (allInflight) return;
    allInflight = true;
    const started = updates;
    try {
      for (const alarm of asArray(await fetchJSON(`${API}/alarms?state=all`))) {
        if (alarm && typeof alarm.id === "string" && !newerThan(alarm.id, started)) {
          state.known.set(alarm.id, alarm);
        }
      }
    } catch (err) {
      setStatus(`Consequences unavailable: ${err.message}`, true);
    } finally {
      allInflight = false;
      invalidate("alarms");
    }
  }

  async function loadFloods() {
    try {
      state.floods = asArray(await fetchJSON(`${API}/alarms/floods`))
        .filter((f) => f && typeof f.position === "string");
      notice("floods", null);
    } catch (err) {
      notice("floods", `Flood state unavailable: ${err.message}`);
    }
    invalidate("alarms");
  }

  let floodsTimer = null;
  function scheduleFloods() { // at most one request a second however many alarms change
    if (floodsTimer !== null) return;
    floodsTimer = setTimeout(() => {
      floodsTimer = null;
      loadFloods();
    }, FLOODS_THROTTLE_MS);
  }

  function applyStatus(status) {
    if (!status || typeof status !== "object") return;
    state.status = status;
    if (isNum(status.time)) state.simTime = status.time;
    invalidate("header", "tiles");
  }

  function applyAlarm(alarm) {
    if (!alarm || typeof alarm.id !== "string") return;
    updates += 1;
    updatedAt.set(alarm.id, updates);
    state.known.set(alarm.id, alarm);
    state.alarms.delete(alarm.id);
    state.removed.delete(alarm.id);
    place(alarm, state.alarms, state.removed);
    if (state.actionsOpen === alarm.id) scheduleHistory(alarm.id);
    pickDefaultSignal();
    scheduleFloods();
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
      loadFloods();
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
    await Promise.allSettled([loadStatus(), loadAlarms(), loadFloods()]);
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

  // One <tbody> per alarm: its row, then its consequences if expanded, then its action row if
  // open. Groups are kept and moved, never rebuilt, so a click or a half-typed note is never
  // lost to a re-render.
  const groups = new Map(); // alarm id -> {body, row, cons: Map(id -> tr), panel}
  let foldBody = null; // the flood's count line

  const byUrgency = (a, b) =>
    rankOf(b) - rankOf(a) ||
    (b.first_seen || 0) - (a.first_seen || 0) ||
    String(a.id).localeCompare(String(b.id));

  function sortedAlarms() {
    return [...state.alarms.values()].sort(byUrgency);
  }

  function floodedPositions() {
    return new Set(state.floods.filter((f) => f.flood).map((f) => f.position));
  }

  // What the table shows: the alarms in order, and those folded away by a flood.
  function alarmsToShow() {
    if (state.view === "removed") {
      return { items: [...state.removed.values()].sort(byUrgency), folded: [] };
    }
    const flooded = floodedPositions();
    const items = [];
    const folded = [];
    for (const alarm of sortedAlarms()) {
      if (flooded.has(alarm.position) && rankOf(alarm) < FLOOD_KEEP_RANK) folded.push(alarm);
      else items.push(alarm);
    }
    return { items, folded };
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function prioBadge() {
    return el("span", { class: "prio-badge" }, el("i", { class: "shape", "aria-hidden": "true" }),
      el("span", { class: "prio-text" }));
  }

  function updateBadge(badge, alarm) {
    const p = priorityOf(alarm);
    const cls = `prio-badge prio-${p}`;
    if (badge.className !== cls) badge.className = cls;
    setText(badge.lastChild, PRIORITY_LABEL[p]);
    badge.title = `${PRIORITY_LABEL[p]} priority`;
  }

  function fmtWindow(seconds) {
    if (!isNum(seconds)) return "–";
    if (seconds % 3600 === 0) return `${seconds / 3600} h`;
    if (seconds % 60 === 0) return `${seconds / 60} min`;
    return `${seconds} s`;
  }

  function describeReason(reason) {
    const text = String(reason);
    if (text.startsWith("root:")) return `under root cause ${text.slice(5)}`;
    if (text.startsWith("maintenance:")) return `maintenance window ${text.slice(12)}`;
    return text;
  }

  // The state's detail line: who acknowledged, what a latched alarm needs, why it is off the list.
  function stateNote(alarm) {
    switch (alarm.state) {
      case "acknowledged":
        return alarm.acknowledged_by ? `by ${alarm.acknowledged_by}` : "";
      case "returned_unacknowledged":
        return isNum(alarm.cleared_at) ? `cleared ${fmtTime(alarm.cleared_at)}` : "cleared";
      case "latched":
        return "needs reset";
      case "shelved":
        if (alarm.one_shot) {
          const most = isNum(alarm.shelved_until) ? ` (at most ${fmtTime(alarm.shelved_until)})` : "";
          return `one-shot, until it clears${most}`;
        }
        return isNum(alarm.shelved_until) ? `until ${fmtTime(alarm.shelved_until)}` : "";
      case "suppressed":
        return asArray(alarm.suppressed_by).map(describeReason).join("; ");
      case "out_of_service": {
        const also = asArray(alarm.suppressed_by).map(describeReason);
        return also.length ? `also suppressed: ${also.join("; ")}` : "";
      }
      default:
        return "";
    }
  }

  // Which actions the alarm's state allows (the server refuses the rest with 409 anyway).
  function actionsFor(alarm) {
    const s = alarm.state;
    return {
      acknowledge: s === "unacknowledged" || s === "returned_unacknowledged",
      reset: s === "latched",
      shelve: s === "normal" || SHOWN_STATES.has(s),
      unshelve: s === "shelved",
      "out-of-service": !alarm.out_of_service,
      "return-to-service": Boolean(alarm.out_of_service),
    };
  }

  // The one action worth a button on the row itself; the rest are in the action row.
  function quickAction(alarm) {
    const allowed = actionsFor(alarm);
    for (const action of ["acknowledge", "reset", "unshelve", "return-to-service"]) {
      if (allowed[action]) return action;
    }
    return null;
  }

  const QUICK_TESTID = {
    acknowledge: "ack-button",
    reset: "reset-button",
    unshelve: "unshelve-button",
    "return-to-service": "return-button",
  };

  function makeGroup(id) {
    const cell = (cls) => el("td", { class: cls });
    const quick = el("button", { type: "button", class: "ack-button" });
    quick.addEventListener("click", (event) => {
      event.stopPropagation();
      const action = quick.dataset.action;
      if (action) runAction(id, action);
    });
    const toggle = el("button", {
      type: "button",
      class: "more-button",
      "data-testid": "actions-toggle",
      "aria-expanded": "false",
      title: "Actions and history",
    }, "⋯");
    toggle.addEventListener("click", (event) => {
      event.stopPropagation();
      toggleActions(id);
    });
    const consButton = el("button", {
      type: "button",
      class: "tag tag-cons",
      "data-testid": "consequences-toggle",
      "aria-expanded": "false",
    });
    consButton.addEventListener("click", (event) => {
      event.stopPropagation();
      toggleConsequences(id);
    });
    const msg = el("td", { class: "c-msg" }, el("div", { class: "msg-clamp" },
      el("span", { class: "tags" },
        el("span", {
          class: "tag tag-first",
          "data-testid": "first-out",
          title: "First out: the first alarm of its incident",
        }, "First out"),
        el("span", {
          class: "tag tag-chatter",
          "data-testid": "chattering",
          title: "Chattering: the condition keeps coming and going",
        }, "Chattering"),
        el("span", { class: "tag tag-ext", title: "From another monitoring system" }, "Ext"),
        consButton),
      el("span", { class: "msg-text" })));
    const row = el("tr", { class: "alarm-row", "data-testid": "alarm-row", tabindex: "0" },
      timesCell(), el("td", { class: "c-prio" }, prioBadge()),
      cell("c-asset"), msg,
      el("td", { class: "c-state" }, el("span", { class: "state-word", "data-testid": "alarm-state" }),
        el("span", { class: "state-note", "data-testid": "state-note" })),
      cell("c-count"),
      el("td", { class: "c-act" }, quick, toggle));
    row.dataset.alarmId = id;
    row.addEventListener("click", () => selectAlarm(id));
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === row) selectAlarm(id);
    });
    const body = el("tbody", { class: "alarm-group" }, row);
    body.dataset.alarmId = id;
    return { id, body, row, cons: new Map(), panel: null };
  }

  // First seen above, last seen below (dimmer): both matter, neither needs a column of its own.
  function timesCell() {
    return el("td", { class: "c-time" }, el("span", { class: "t-first", "data-testid": "first-seen" }),
      el("span", { class: "t-last", "data-testid": "last-seen" }));
  }

  function fillTimes(cell, alarm) {
    const [first, last] = cell.children;
    setText(first, fmtTime(alarm.first_seen));
    setText(last, fmtTime(alarm.last_seen));
    cell.title = `first seen ${fmtClock(alarm.first_seen)} UTC\nlast seen ${fmtClock(alarm.last_seen)} UTC`;
  }

  function fillState(cell, alarm) {
    const [word, note] = cell.children;
    setText(word, STATE_LABEL[alarm.state] || String(alarm.state ?? ""));
    setText(note, stateNote(alarm));
    cell.title = [STATE_TITLE[alarm.state] || "",
      isNum(alarm.acknowledged_at) ? `acknowledged ${fmtClock(alarm.acknowledged_at)} UTC` : "",
    ].filter(Boolean).join(" · ");
  }

  function updateRow(g, alarm) {
    const tr = g.row;
    tr.dataset.state = alarm.state;
    tr.dataset.priority = priorityOf(alarm);
    tr.dataset.firstOut = alarm.first_out ? "true" : "false";
    tr.setAttribute("aria-selected", state.selectedAlarm === alarm.id ? "true" : "false");
    const [times, prio, asset, msg, st, count, act] = tr.children;
    fillTimes(times, alarm);
    updateBadge(prio.firstChild, alarm);
    setText(asset, String(alarm.asset ?? ""));
    asset.title = `${alarm.asset ?? ""} · ${alarm.subsystem ?? ""} · position ${alarm.position ?? ""}`;
    const [tags, text] = msg.firstChild.children;
    const [firstOut, chatter, ext, cons] = tags.children;
    firstOut.hidden = !alarm.first_out;
    chatter.hidden = !alarm.chattering;
    ext.hidden = alarm.kind !== "external";
    const n = asArray(alarm.consequences).length;
    cons.hidden = n === 0;
    const open = n > 0 && state.expanded.has(alarm.id);
    setText(cons, `${open ? "−" : "+"}${n} consequence${n === 1 ? "" : "s"}`);
    cons.setAttribute("aria-expanded", open ? "true" : "false");
    cons.title = open ? "Hide the alarms grouped under this root cause"
      : "Show the alarms grouped under this root cause";
    setText(text, String(alarm.message ?? ""));
    msg.title = `${String(alarm.kind ?? "").replace(/_/g, " ")}: ${alarm.message ?? ""}`;
    fillState(st, alarm);
    setText(count, isNum(alarm.count) ? String(alarm.count) : "");
    const [quick, toggle] = act.children;
    const action = quickAction(alarm);
    const pending = state.pending.get(alarm.id);
    quick.hidden = action === null;
    if (action) {
      quick.dataset.action = action;
      quick.setAttribute("data-testid", QUICK_TESTID[action]);
      setText(quick, pending === action ? "Sending…" : ACTION[action].short);
      quick.title = ACTION[action].label;
    }
    quick.disabled = pending !== undefined;
    toggle.setAttribute("aria-expanded", state.actionsOpen === alarm.id ? "true" : "false");
  }

  function makeConsequenceRow(id) {
    const cell = (cls) => el("td", { class: cls });
    const tr = el("tr", { class: "consequence-row", "data-testid": "consequence-row", tabindex: "0" },
      timesCell(), el("td", { class: "c-prio" }, prioBadge()),
      cell("c-asset"),
      el("td", { class: "c-msg" }, el("div", { class: "msg-clamp" },
        el("span", { class: "cons-mark", "aria-hidden": "true" }, "↳"),
        el("span", { class: "msg-text" }))),
      el("td", { class: "c-state" },
        el("span", { class: "state-word" }), el("span", { class: "state-note" })),
      cell("c-count"), cell("c-act"));
    tr.dataset.alarmId = id;
    tr.addEventListener("click", () => selectAlarm(id));
    return tr;
  }

  function updateConsequenceRow(tr, id) {
    const alarm = state.known.get(id);
    const [times, prio, asset, msg, st, count] = tr.children;
    const text = msg.firstChild.lastChild;
    if (!alarm) {
      tr.dataset.state = "unknown";
      setText(asset, id.split(":")[0]);
      setText(text, `${id} — loading…`);
      return;
    }
    tr.dataset.state = alarm.state;
    tr.dataset.priority = priorityOf(alarm);
    tr.setAttribute("aria-selected", state.selectedAlarm === id ? "true" : "false");
    fillTimes(times, alarm);
    updateBadge(prio.firstChild, alarm);
    setText(asset, String(alarm.asset ?? ""));
    setText(text, String(alarm.message ?? ""));
    msg.title = String(alarm.message ?? "");
    fillState(st, alarm);
    setText(count, isNum(alarm.count) ? String(alarm.count) : "");
  }

  function makePanel(id) {
    const note = el("input", {
      type: "text",
      class: "note",
      "data-testid": "action-note",
      placeholder: "Note for the journal (optional)",
      "aria-label": "Note for the journal",
      maxlength: "2000",
      spellcheck: "false",
    });
    const button = (action) => {
      const b = el("button", {
        type: "button",
        class: "act-button",
        "data-testid": `action-${action}`,
        "data-action": action,
      }, ACTION[action].label);
      b.addEventListener("click", () => runAction(id, action));
      return b;
    };
    const duration = el("select", {
      class: "shelve-for",
      "data-testid": "action-shelve-duration",
      "aria-label": "Shelve for",
    }, SHELVE_CHOICES.map(([value, label]) => el("option", { value }, label)));
    const buttons = {};
    for (const action of Object.keys(ACTION)) buttons[action] = button(action);
    const shelveBox = el("span", { class: "shelve-box" }, buttons.shelve, duration);
    const history = el("ol", {
      class: "history",
      "data-testid": "alarm-history",
      "aria-label": "Journal, newest first",
    });
    const panel = el("div", { class: "action-panel" },
      el("div", { class: "action-controls" }, note,
        buttons.acknowledge, buttons.reset, shelveBox, buttons.unshelve,
        buttons["out-of-service"], buttons["return-to-service"]),
      history);
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") toggleActions(id);
      else if (event.key === "Enter" && event.target === note) {
        // Enter confirms only what the alarm is waiting for, never a removal from the list.
        const due = ["acknowledge", "reset"].find((a) => !buttons[a].hidden && !buttons[a].disabled);
        if (due) runAction(id, due);
      }
    });
    const tr = el("tr", { class: "action-row", "data-testid": "action-row" },
      el("td", { colspan: "7" }, panel));
    tr.dataset.alarmId = id;
    return { tr, note, duration, buttons, shelveBox, history };
  }

  function updatePanel(p, alarm) {
    const allowed = actionsFor(alarm);
    const pending = state.pending.get(alarm.id);
    for (const [action, b] of Object.entries(p.buttons)) {
      if (action === "shelve") p.shelveBox.hidden = !allowed.shelve;
      else b.hidden = !allowed[action];
      b.disabled = pending !== undefined;
      setText(b, pending === action ? "Sending…" : ACTION[action].label);
    }
    p.duration.disabled = pending !== undefined;
    renderHistory(p.history, alarm.id);
  }

  const EVENT_WORDS = {
    activate: "raised", clear: "cleared", acknowledge: "acknowledged", reset: "reset",
    shelve: "shelved", unshelve: "unshelved", tick: "shelf ended", suppress: "suppressed",
    unsuppress: "unsuppressed", remove_from_service: "out of service",
    return_to_service: "returned to service",
  };

  function renderHistory(list, id) {
    const h = state.history.get(id);
    let items;
    if (!h) items = [el("li", { class: "dim" }, "Loading journal…")];
    else if (h.error) items = [el("li", { class: "dim" }, `Journal unavailable: ${h.error}`)];
    else if (!h.entries.length) items = [el("li", { class: "dim" }, "No journal entries")];
    else {
      items = h.entries.slice(0, 12).map((e) => {
        const data = e && typeof e.data === "object" && e.data ? e.data : {};
        let what;
        if (typeof data.event === "string") {
          const event = EVENT_WORDS[data.event] || data.event.replace(/_/g, " ");
          what = `${event} → ${STATE_LABEL[data.to] || data.to || "?"}`;
        } else if (typeof data.chattering === "boolean") {
          what = data.chattering ? "started chattering" : "stopped chattering";
        } else {
          what = String(e.kind || "");
        }
        return el("li", { "data-testid": "history-entry" },
          el("time", null, fmtTime(e.time)), ` ${what} · ${e.actor || ""}`,
          typeof data.note === "string" && data.note ? el("q", null, data.note) : null);
      });
    }
    list.replaceChildren(...items);
  }

  async function loadHistory(id) {
    try {
      const entries = asArray(await fetchJSON(`${API}/alarms/${encodeURIComponent(id)}/history?limit=50`));
      state.history.set(id, { entries, error: null });
    } catch (err) {
      state.history.set(id, { entries: [], error: err.message });
    }
    invalidate("alarms");
  }

  let historyTimer = null;
  function scheduleHistory(id) {
    if (historyTimer !== null) return;
    historyTimer = setTimeout(() => {
      historyTimer = null;
      if (state.actionsOpen === id) loadHistory(id);
    }, 300);
  }

  function updateGroup(g, alarm) {
    updateRow(g, alarm);
    const want = [g.row];
    const consIds = state.expanded.has(alarm.id) ? asArray(alarm.consequences) : [];
    const keep = new Set(consIds);
    for (const [cid, tr] of g.cons) {
      if (!keep.has(cid)) {
        tr.remove();
        g.cons.delete(cid);
      }
    }
    let missing = false;
    for (const cid of consIds) {
      let tr = g.cons.get(cid);
      if (!tr) {
        tr = makeConsequenceRow(cid);
        g.cons.set(cid, tr);
      }
      if (!state.known.has(cid)) missing = true;
      updateConsequenceRow(tr, cid);
      want.push(tr);
    }
    if (missing) seek(consIds);
    if (state.actionsOpen === alarm.id) {
      if (!g.panel) g.panel = makePanel(alarm.id);
      updatePanel(g.panel, alarm);
      want.push(g.panel.tr);
    } else if (g.panel) {
      g.panel.tr.remove();
      g.panel = null;
    }
    placeInOrder(g.body, want);
  }

  function placeInOrder(parent, nodes) {
    nodes.forEach((node, i) => {
      if (parent.children[i] !== node) parent.insertBefore(node, parent.children[i] || null);
    });
  }

  function makeFoldBody() {
    const button = el("button", { type: "button", class: "fold-button", "data-testid": "flood-fold-toggle" });
    button.addEventListener("click", () => {
      state.floodExpanded = !state.floodExpanded;
      invalidate("alarms");
    });
    return el("tbody", { class: "fold-group" },
      el("tr", { class: "fold-row", "data-testid": "flood-folded" },
        el("td", { colspan: "7" }, el("span", { class: "fold-text" }), button)));
  }

  function renderFloodBanner() {
    const banner = $("flood-banner");
    const flooding = state.floods.filter((f) => f.flood);
    banner.replaceChildren(...flooding.map((f) => {
      const count = isNum(f.count) ? f.count : "?";
      const limit = isNum(f.limit) ? f.limit : "?";
      return el("div", { class: "flood-line", "data-testid": "flood-line", "data-position": f.position },
        el("i", { class: "shape", "aria-hidden": "true" }),
        `ALARM FLOOD — ${f.position}: ${count} alarms in ${fmtWindow(f.window)} (limit ${limit})`);
    }));
    banner.hidden = flooding.length === 0;
  }

  function renderAlarms() {
    renderFloodBanner();
    const table = $("alarm-table");
    const { items, folded } = alarmsToShow();
    const visible = state.floodExpanded ? [...items, ...folded] : items;
    const keep = new Set(visible.map((a) => a.id));
    for (const [id, g] of groups) {
      if (!keep.has(id)) {
        g.body.remove();
        groups.delete(id);
      }
    }
    const order = [];
    const addGroup = (alarm) => {
      let g = groups.get(alarm.id);
      if (!g) {
        g = makeGroup(alarm.id);
        groups.set(alarm.id, g);
      }
      updateGroup(g, alarm);
      order.push(g.body);
    };
    items.forEach(addGroup);
    if (folded.length) {
      if (!foldBody) foldBody = makeFoldBody();
      const counts = countByPriority(folded);
      const parts = PRIORITIES.filter((p) => counts[p] > 0).map((p) => `${counts[p]} ${p}`);
      const where = [...new Set(folded.map((a) => a.position))].join(", ");
      const n = folded.length;
      setText(foldBody.querySelector(".fold-text"), `${n} lower-priority alarm${n === 1 ? "" : "s"}` +
        ` at ${where} folded during the flood (${parts.join(", ")})`);
      const button = foldBody.querySelector(".fold-button");
      setText(button, state.floodExpanded ? "Hide" : "Show");
      button.setAttribute("aria-expanded", state.floodExpanded ? "true" : "false");
      order.push(foldBody);
      if (state.floodExpanded) folded.forEach(addGroup);
    } else if (foldBody) {
      foldBody.remove();
      foldBody = null;
    }
    // The table's first child is its <thead>; the groups follow it in order.
    order.forEach((node, i) => {
      const at = table.tBodies[i] || null;
      if (at !== node) table.insertBefore(node, at);
    });

    const removedView = state.view === "removed";
    const empty = $("alarm-empty");
    empty.hidden = items.length + folded.length > 0;
    setText(empty, removedView ? "No alarms off the list" : "No open alarms");
    const nOpen = state.alarms.size;
    const nRemoved = state.removed.size;
    $("alarm-count").textContent = nOpen ? `(${nOpen})` : "";
    setText($("view-open-count"), `(${nOpen})`);
    setText($("view-removed-count"), `(${nRemoved})`);
    $("view-removed").dataset.nonzero = nRemoved > 0 ? "true" : "false";
    for (const button of [$("view-open"), $("view-removed")]) {
      button.setAttribute("aria-pressed", button.dataset.view === state.view ? "true" : "false");
    }
    $("alarm-table").dataset.view = state.view;
  }

  function setView(view) {
    if (view === state.view) return;
    state.view = view;
    state.actionsOpen = null;
    invalidate("alarms");
  }

  function toggleConsequences(id) {
    if (state.expanded.has(id)) state.expanded.delete(id);
    else {
      state.expanded.add(id);
      loadAllAlarms(); // the consequences as they are now, whatever their state
    }
    invalidate("alarms");
  }

  function toggleActions(id) {
    if (state.actionsOpen === id) {
      state.actionsOpen = null;
      const g = groups.get(id);
      if (g) g.row.focus();
    } else {
      state.actionsOpen = id;
      state.history.delete(id);
      loadHistory(id);
      requestAnimationFrame(() => {
        const g = groups.get(id);
        if (g && g.panel) g.panel.note.focus();
      });
    }
    invalidate("alarms");
  }

  // ---- operator actions -----------------------------------------------------------------

  const OPERATOR_KEY = "nexus.operator";
  let promptedForName = false;

  function operatorName() {
    return $("operator").value.trim();
  }

  function saveOperator() {
    try {
      localStorage.setItem(OPERATOR_KEY, operatorName());
    } catch (_) { /* not remembered, still used */ }
  }

  // Every action is journalled with its user: no name, no action. Ask once, then insist.
  function requireOperator() {
    let name = operatorName();
    if (!name && !promptedForName) {
      promptedForName = true;
      const answer = window.prompt("Your name, for the alarm journal:", "");
      if (answer && answer.trim()) {
        $("operator").value = answer.trim().slice(0, 100);
        saveOperator();
        name = operatorName();
      }
    }
    if (!name) {
      setStatus("Enter your name in the Operator field first: every alarm action is recorded with it.", true);
      $("operator").focus();
    }
    return name;
  }

  let statusTimer = null;
  function setStatus(text, isError) {
    const line = $("action-status");
    line.textContent = text;
    line.dataset.kind = isError ? "error" : "ok";
    clearTimeout(statusTimer);
    if (!isError && text) statusTimer = setTimeout(() => setStatus("", false), STATUS_CLEAR_MS);
  }

  async function runAction(id, action) {
    if (state.pending.has(id) || !ACTION[action]) return;
    const user = requireOperator();
    if (!user) return;
    const g = groups.get(id);
    const panel = g && g.panel;
    const note = panel ? panel.note.value.trim() : "";
    const body = { user, note: note || null };
    if (action === "shelve") {
      const choice = panel ? panel.duration.value : "3600";
      if (choice === "one-shot") body.one_shot = true;
      else body.duration = Number(choice);
    }
    state.pending.set(id, action);
    invalidate("alarms");
    try {
      const alarm = await fetchJSON(`${API}/alarms/${encodeURIComponent(id)}/${action}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      if (panel) panel.note.value = "";
      setStatus(`${ACTION[action].done} ${id} (${STATE_LABEL[alarm.state] || alarm.state})`, false);
      applyAlarm(alarm);
    } catch (err) {
      setStatus(`Could not ${ACTION[action].label.toLowerCase()} ${id}: ${err.message}`, true);
    } finally {
      state.pending.delete(id);
      invalidate("alarms");
    }
    // Refused or not, show every alarm as it now is (someone else may have acted first).
    loadAlarms();
    loadFloods();
    if (state.actionsOpen === id) loadHistory(id);
  }

  function selectAlarm(id) {
    const alarm = state.known.get(id);
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
      const saved = localStorage.getItem(OPERATOR_KEY);
      if (saved) operator.value = saved;
    } catch (_) { /* storage may be disabled: the operator types a name */ }
    operator.addEventListener("input", saveOperator);
    for (const button of [$("view-open"), $("view-removed")]) {
      button.addEventListener("click", () => setView(button.dataset.view));
    }

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
    await Promise.allSettled([loadSite(), loadStatus(), loadAlarms(), loadFloods(), loadSignals()]);
    connect();
    setInterval(tick, 1000);
    setInterval(pollWhileOffline, OFFLINE_POLL_MS);
    setInterval(() => {
      if (state.conn.state === "live" && !document.hidden) loadFloods();
    }, FLOODS_POLL_MS);
    setInterval(() => {
      const table = $("alarm-table");
      table.dataset.blink = table.dataset.blink === "off" ? "on" : "off";
    }, BLINK_MS);
    setTimeout(trendLoop, TREND_POLL_MS);
  }

  boot();
})();
