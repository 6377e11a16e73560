// textbank web app: what every page shares (window.tb). Pages talk to the
// same /v1 API as any client, over the session cookie plus a CSRF header.
(function () {
  "use strict";

  const body = document.body;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');

  // The API's error object: `code`, `message`, and any extra fields (such
  // as `next_open` on a quiet-hours refusal) as `details` and properties.
  class ApiError extends Error {
    constructor(status, code, message, details) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details || {};
      Object.entries(this.details).forEach(([key, value]) => {
        if (!(key in this)) this[key] = value;
      });
    }
  }

  // How far the server's clock is ahead of this device's, from the Date
  // header of the last answer: a click's time is sent on the server's clock,
  // so a device set minutes wrong is not refused (the server refuses a
  // clicked_at too far from its own time).
  let clockOffsetMs = 0;

  function noteServerClock(response) {
    const date = Date.parse(response.headers.get("Date") || "");
    if (Number.isFinite(date)) clockOffsetMs = date - Date.now();
  }

  // Now, on the server's clock, as an ISO string.
  function serverNow() {
    return new Date(Date.now() + clockOffsetMs).toISOString();
  }

  async function api(method, path, payload, opts) {
    const headers = Object.assign({ Accept: "application/json" }, (opts && opts.headers) || {});
    let sent = payload;
    if (payload !== undefined && payload !== null) {
      const raw = payload instanceof Blob || typeof payload === "string";
      if (!raw) {
        sent = JSON.stringify(payload);
        headers["Content-Type"] = "application/json";
      }
    }
    if (method !== "GET" && method !== "HEAD" && csrfMeta) {
      headers["X-CSRF-Token"] = csrfMeta.content;
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body: sent, credentials: "same-origin" });
    } catch (err) {
      throw new ApiError(0, "network_error", "The server could not be reached. Check your connection and try again.");
    }
    noteServerClock(response);
    if (response.status === 401 && !(opts && opts.noRedirect)) {
      window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
      throw new ApiError(401, "unauthenticated", "Your session has ended. Please sign in again.");
    }
    if (response.status === 204) return null;
    const text = await response.text();
    let json = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch (err) {
        json = null;
      }
    }
    if (!response.ok) {
      const error = Object.assign({}, (json && json.error) || {});
      const code = error.code || "http_" + response.status;
      const message = error.message || response.statusText;
      delete error.code;
      delete error.message;
      throw new ApiError(response.status, code, message, error);
    }
    return json;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) {
      child.forEach((c) => append(node, c));
    } else if (child instanceof Node) {
      node.appendChild(child);
    } else {
      node.appendChild(document.createTextNode(String(child)));
    }
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (value === null || value === undefined || value === false) return;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "on") Object.entries(value).forEach(([event, fn]) => node.addEventListener(event, fn));
      else if (key === "data") Object.entries(value).forEach(([k, v]) => { if (v !== null && v !== undefined) node.dataset[k] = v; });
      else if (key === "html") throw new Error("tb.el: html is not supported");
      else if (value === true) node.setAttribute(key, "");
      else node.setAttribute(key, value);
    });
    children.forEach((child) => append(node, child));
    return node;
  }

  const clear = (node) => { while (node.firstChild) node.removeChild(node.firstChild); return node; };
  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));

  const page = {
    name: body.dataset.page || null,
    role: body.dataset.role || null,
    memberId: body.dataset.memberId || null,
    memberName: body.dataset.memberName || null,
    orgName: body.dataset.orgName || null,
    campaignId: body.dataset.campaignId || null,
  };

  // The caller's permissions, rendered by the server from the role matrix
  // (crates/domain/src/role.rs). The server enforces them; this only hides
  // controls the caller cannot use.
  const permissions = (body.dataset.permissions || "").split(" ").filter(Boolean);
  const can = (permission) => permissions.includes(permission);

  const flashNode = () => document.getElementById("flash");
  function showError(err) {
    const node = flashNode();
    const message = (err && err.message) || String(err);
    if (!node) { console.error(message); return; }
    node.className = "flash flash-error";
    node.textContent = message;
  }
  function flash(text) {
    const node = flashNode();
    if (!node) return;
    node.className = "flash flash-notice";
    node.textContent = text;
  }
  function clearFlash() {
    const node = flashNode();
    if (node) { node.className = "flash"; node.textContent = ""; }
  }

  const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const clockTime = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
  const number = new Intl.NumberFormat();
  const valid = (iso) => iso && !Number.isNaN(new Date(iso).getTime());
  const fmtTime = (iso) => (valid(iso) ? dateTime.format(new Date(iso)) : "—");
  const fmtClock = (iso) => (valid(iso) ? clockTime.format(new Date(iso)) : "—");
  function fmtAgo(iso) {
    if (!valid(iso)) return "—";
    const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
    if (seconds < 45) return "just now";
    if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.round(seconds / 3600) + " h ago";
    return fmtTime(iso);
  }
  const fmtPct = (rate) => (rate === null || rate === undefined ? "—" : (rate * 100).toFixed(1) + "%");
  const fmtNum = (n) => (n === null || n === undefined ? "—" : number.format(n));

  function stream(path, onEvent) {
    const source = new EventSource(path, { withCredentials: true });
    const handle = (event) => {
      let data = null;
      try { data = JSON.parse(event.data); } catch (err) { data = event.data; }
      onEvent(event.type, data);
    };
    source.onmessage = handle;
    source.addEventListener("conversation", handle);
    source.addEventListener("conversation_removed", handle);
    return source;
  }

  // GSM 03.38 basic set and extension table (the extension costs two septets),
  // the same rule the server applies (crates/domain/src/segments.rs).
  const GSM_BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  const GSM_EXTENDED = "^{}\\[~]|€\f";
  function segments(text) {
    const chars = Array.from(text || "");
    const gsm = chars.every((c) => GSM_BASIC.includes(c) || GSM_EXTENDED.includes(c));
    if (gsm) {
      const septets = chars.reduce((n, c) => n + (GSM_EXTENDED.includes(c) ? 2 : 1), 0);
      const count = septets === 0 ? 0 : septets <= 160 ? 1 : Math.ceil(septets / 153);
      return { encoding: "GSM-7", segments: count, characters: chars.length };
    }
    const units = chars.reduce((n, c) => n + (c.codePointAt(0) > 0xffff ? 2 : 1), 0);
    const count = units === 0 ? 0 : units <= 70 ? 1 : Math.ceil(units / 67);
    return { encoding: "UCS-2", segments: count, characters: chars.length };
  }

  const uuid = () => (crypto.randomUUID ? crypto.randomUUID() :
    "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) =>
      (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16)));

  // A small line chart: one polyline per series over a shared time axis.
  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = ["#1f5fbf", "#1b7f3b", "#b25e00", "#b3261e", "#6a3fb5", "#00707a"];
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    return node;
  }
  function chart(parent, options) {
    const series = (options && options.series) || [];
    const height = (options && options.height) || 220;
    const width = 640;
    const pad = { left: 44, right: 12, top: 12, bottom: 28 };
    clear(parent);
    const points = series.flatMap((s) => s.points);
    const summary = series.map((s) => s.name + " " + s.points.reduce((n, p) => n + p.y, 0)).join(", ");
    const root = svg("svg", { viewBox: `0 0 ${width} ${height + 24}`, role: "img", class: "chart",
      "aria-label": (options && options.label ? options.label + ": " : "") + (points.length ? "totals " + summary : "no data yet") });
    if (!points.length) {
      const empty = svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "chart-empty" });
      empty.textContent = "No data yet";
      root.appendChild(empty);
      parent.appendChild(root);
      return root;
    }
    const xs = points.map((p) => p.x.getTime());
    let minX = Math.min(...xs), maxX = Math.max(...xs);
    if (minX === maxX) { minX -= 1800000; maxX += 1800000; }
    const maxY = Math.max(1, ...points.map((p) => p.y));
    const sx = (t) => pad.left + ((t - minX) / (maxX - minX)) * (width - pad.left - pad.right);
    const sy = (y) => height - pad.bottom - (y / maxY) * (height - pad.top - pad.bottom);
    root.appendChild(svg("line", { x1: pad.left, y1: sy(0), x2: width - pad.right, y2: sy(0), class: "chart-axis" }));
    root.appendChild(svg("line", { x1: pad.left, y1: pad.top, x2: pad.left, y2: sy(0), class: "chart-axis" }));
    [0, maxY / 2, maxY].forEach((y) => {
      const label = svg("text", { x: pad.left - 6, y: sy(y) + 4, "text-anchor": "end", class: "chart-label" });
      label.textContent = String(Math.round(y));
      root.appendChild(label);
    });
    [minX, maxX].forEach((t, i) => {
      const label = svg("text", { x: sx(t), y: height - 8, "text-anchor": i ? "end" : "start", class: "chart-label" });
      label.textContent = fmtTime(new Date(t).toISOString());
      root.appendChild(label);
    });
    series.forEach((s, i) => {
      const color = COLORS[i % COLORS.length];
      const sorted = s.points.slice().sort((a, b) => a.x - b.x);
      if (sorted.length) {
        root.appendChild(svg("polyline", { fill: "none", stroke: color, "stroke-width": 2,
          points: sorted.map((p) => `${sx(p.x.getTime())},${sy(p.y)}`).join(" ") }));
        sorted.forEach((p) => root.appendChild(svg("circle", { cx: sx(p.x.getTime()), cy: sy(p.y), r: 3, fill: color })));
      }
      const x = pad.left + i * 130;
      root.appendChild(svg("rect", { x, y: height + 8, width: 12, height: 12, fill: color }));
      const legend = svg("text", { x: x + 16, y: height + 18, class: "chart-label" });
      legend.textContent = s.name;
      root.appendChild(legend);
    });
    parent.appendChild(root);
    return root;
  }

  // Sign-out lives in the shell's nav on every signed-in page.
  const signOut = document.getElementById("sign-out");
  if (signOut) {
    signOut.addEventListener("click", async () => {
      try {
        await api("DELETE", "/v1/sessions/current", null, { noRedirect: true });
      } catch (err) {
        // Signed out already, or the server is gone: the login page either way.
      }
      window.location.assign("/login");
    });
  }

  window.tb = { api, ApiError, serverNow, el, clear, $, $$, page, can, showError, flash, clearFlash,
    fmtTime, fmtClock, fmtAgo, fmtPct, fmtNum, stream, segments, uuid, chart };
})();
