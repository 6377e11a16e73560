// The compliance page (/app/compliance): message search with CSV export, a
// message's click trail, a phone's history, refused attempts, texter cadence
// and hash-chain verification. Everything comes from /v1/audit/* (read_audit).
(function () {
  "use strict";

  const tb = window.tb;
  const el = tb.el;
  const SVG = "http://www.w3.org/2000/svg";

  const TABS = [
    ["messages", "Messages"],
    ["phones", "Phone history"],
    ["blocked", "Blocked attempts"],
    ["cadence", "Cadence"],
    ["verify", "Verify"],
  ];

  const BLOCK_REASONS = [
    "opted_out", "quiet_hours", "campaign_not_open", "token_expired", "token_used",
    "token_invalid", "not_your_token", "already_messaged", "too_fast", "not_assigned",
  ];

  const state = {
    texters: [], // [{id, name}]
    texterSource: "none", // members | none
    names: new Map(), // member id -> name
    campaigns: [],
    campaignNames: new Map(),
    search: null, // URLSearchParams of the current search (without cursor)
    searchGeneration: 0, // bumps per search: answers to older ones are dropped
    cursor: null,
    blockedParams: null,
    blockedCursor: null,
    blockedLoaded: false,
    openRow: null,
  };

  // ---------- small helpers ----------

  function str(value) {
    return value === null || value === undefined || value === "" ? "—" : String(value);
  }
  function ms(value) {
    return value === null || value === undefined ? "—" : tb.fmtNum(value) + " ms";
  }
  function time(iso) {
    return iso ? tb.fmtTime(iso) : "—";
  }
  function preciseTime(iso) {
    // Local time with milliseconds, and the stored UTC value for the record.
    if (!iso) return "—";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    const pad = (n, w) => String(n).padStart(w || 2, "0");
    const local = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." +
      pad(d.getMilliseconds(), 3);
    return local + " local (" + iso + ")";
  }
  function nameOf(id, fallback) {
    if (!id) return "—";
    return fallback || state.names.get(id) || shortId(id);
  }
  function shortId(id) {
    return id ? String(id).slice(0, 8) + "…" : "—";
  }
  function campaignName(id, fallback) {
    if (!id) return "—";
    return fallback || state.campaignNames.get(id) || shortId(id);
  }
  function actorText(actor) {
    if (!actor || typeof actor !== "object") return str(actor);
    switch (actor.kind) {
      case "system": return "textbank (system)";
      case "cli": return "operator at the command line";
      case "carrier": return "carrier (" + actor.carrier + ")";
      case "member": return "member " + nameOf(actor.member_id) + " (web sign-in)";
      case "api_key":
        return "API key " + actor.key_id + (actor.member_id ? " of " + nameOf(actor.member_id) : "");
      default: return JSON.stringify(actor);
    }
  }
  function code(text) {
    return el("code", { class: "mono" }, str(text));
  }
  function facts(pairs, attrs) {
    const children = [];
    for (const [term, value] of pairs) {
      children.push(el("dt", {}, term));
      children.push(el("dd", {}, value === null || value === undefined ? "—" : value));
    }
    return el("dl", Object.assign({ class: "facts" }, attrs || {}), children);
  }
  function table(attrs, headers, rows) {
    return el("div", { class: "table-wrap" },
      el("table", attrs,
        el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows)));
  }
  function emptyNote(text) {
    return el("p", { class: "muted" }, text);
  }
  function label(forId, text) {
    return el("label", { for: forId }, text);
  }
  function field(forId, text, input) {
    return el("div", { class: "field" }, label(forId, text), input);
  }

  // Runs an async action with its button disabled and errors in #flash.
  async function run(button, action) {
    tb.clearFlash();
    if (button) button.disabled = true;
    try {
      await action();
    } catch (err) {
      tb.showError(err);
    } finally {
      if (button) button.disabled = false;
    }
  }

  // A date input's day as the local midnight, RFC 3339 (the API's `from` is
  // inclusive, `to` exclusive: the "to" day is included by asking for the
  // next midnight).
  function dayStart(value, plusDays) {
    if (!value) return null;
    const [y, m, d] = value.split("-").map(Number);
    return new Date(y, m - 1, d + (plusDays || 0)).toISOString();
  }

  // ---------- tabs ----------

  function buildTabs(panels) {
    const list = el("div", { class: "tabs", role: "tablist", "aria-label": "Compliance sections" });
    const buttons = TABS.map(([name, title], index) => el("button", {
      type: "button",
      role: "tab",
      id: "tab-" + name,
      class: "tab",
      "aria-controls": "panel-" + name,
      "aria-selected": index === 0 ? "true" : "false",
      tabindex: index === 0 ? "0" : "-1",
      on: { click: () => showTab(name, false) },
    }, title));
    buttons.forEach((b) => list.appendChild(b));
    list.addEventListener("keydown", (event) => {
      const index = buttons.indexOf(document.activeElement);
      if (index < 0) return;
      let next = null;
      if (event.key === "ArrowRight" || event.key === "ArrowDown") next = (index + 1) % buttons.length;
      else if (event.key === "ArrowLeft" || event.key === "ArrowUp") next = (index - 1 + buttons.length) % buttons.length;
      else if (event.key === "Home") next = 0;
      else if (event.key === "End") next = buttons.length - 1;
      if (next === null) return;
      event.preventDefault();
      showTab(TABS[next][0], false);
      buttons[next].focus();
    });
    return list;
  }

  function showTab(name, focusPanel) {
    for (const [tab] of TABS) {
      const selected = tab === name;
      const button = document.getElementById("tab-" + tab);
      const panel = document.getElementById("panel-" + tab);
      button.setAttribute("aria-selected", selected ? "true" : "false");
      button.tabIndex = selected ? 0 : -1;
      panel.hidden = !selected;
    }
    if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
    if (name === "blocked" && !state.blockedLoaded) {
      state.blockedLoaded = true;
      searchBlocked(null);
    }
    if (focusPanel) document.getElementById("panel-" + name).focus();
  }

  // ---------- reference data: texters and campaigns ----------

  async function loadCampaigns() {
    try {
      const answer = await tb.api("GET", "/v1/campaigns");
      state.campaigns = answer.campaigns || [];
      for (const c of state.campaigns) state.campaignNames.set(c.campaign_id, c.name);
    } catch (err) {
      tb.showError(err);
    }
  }

  // The org's texters by name (GET /v1/texters: audit and metrics readers
  // may list them; no emails).
  async function loadTexters() {
    try {
      const answer = await tb.api("GET", "/v1/texters");
      state.texters = (answer.texters || [])
        .map((t) => ({ id: t.member_id, name: t.name }))
        .sort((a, b) => a.name.localeCompare(b.name));
      for (const t of state.texters) state.names.set(t.id, t.name);
      state.texterSource = state.texters.length ? "members" : "none";
    } catch (err) {
      tb.showError(err);
      state.texterSource = "none";
    }
  }

  // A texter picker: a select when texters are known, else a text input
  // for the texter id.
  function texterPicker(id, anyLabel) {
    if (state.texterSource === "none") {
      return el("input", {
        id, type: "text", inputmode: "text", autocomplete: "off", spellcheck: "false",
        placeholder: "texter id (UUID)", pattern: "[0-9a-fA-F-]{36}",
      });
    }
    return el("select", { id },
      anyLabel ? el("option", { value: "" }, anyLabel) : null,
      state.texters.map((t) => el("option", { value: t.id }, t.name)));
  }

  function campaignPicker(id) {
    return el("select", { id },
      el("option", { value: "" }, "Any campaign"),
      state.campaigns.map((c) => el("option", { value: c.campaign_id }, c.name + " (" + c.status + ")")));
  }

  // ---------- Messages ----------

  function buildMessages() {
    const form = el("form", { id: "message-search", class: "filters", on: { submit: (e) => { e.preventDefault(); searchMessages(); } } },
      field("filter-phone", "Phone", el("input", { id: "filter-phone", type: "tel", autocomplete: "off", placeholder: "+1 555 201 0001" })),
      field("filter-texter", "Texter", texterPicker("filter-texter", "Any texter")),
      field("filter-campaign", "Campaign", campaignPicker("filter-campaign")),
      field("filter-from", "From (day)", el("input", { id: "filter-from", type: "date" })),
      field("filter-to", "To (day, included)", el("input", { id: "filter-to", type: "date" })),
      el("div", { class: "actions" },
        el("button", { id: "search", type: "submit", class: "primary" }, "Search"),
        el("a", { id: "export-csv", class: "button secondary", href: "/v1/audit/export.csv", download: "audit-messages.csv" }, "Export CSV")));
    return el("div", { class: "panel-body" },
      el("h2", {}, "Messages"),
      el("p", { class: "muted" }, "Every message both ways, oldest first. Select a row (or press Enter on it) for its click trail."),
      form,
      el("p", { id: "results-status", class: "status", "aria-live": "polite" }),
      table({ id: "results", class: "data clickable-rows" },
        ["Time", "Direction", "Phone", "Texter", "Campaign", "Display → click", "Delivery", "Error"], []),
      el("button", { id: "load-more", type: "button", class: "secondary", hidden: true, on: { click: (e) => run(e.currentTarget, loadMoreMessages) } }, "Load more"),
      el("section", { id: "trail", class: "card", hidden: true, tabindex: "-1", "aria-labelledby": "trail-title" }));
  }

  function readMessageFilters() {
    const params = new URLSearchParams();
    const phone = document.getElementById("filter-phone").value.trim();
    const texter = document.getElementById("filter-texter").value.trim();
    const campaign = document.getElementById("filter-campaign").value;
    const from = dayStart(document.getElementById("filter-from").value, 0);
    const to = dayStart(document.getElementById("filter-to").value, 1);
    if (phone) params.set("phone", phone);
    if (texter) params.set("texter_id", texter);
    if (campaign) params.set("campaign_id", campaign);
    if (from) params.set("from", from);
    if (to) params.set("to", to);
    return params;
  }

  function updateExportLink() {
    const params = readMessageFilters();
    const query = params.toString();
    document.getElementById("export-csv").href = "/v1/audit/export.csv" + (query ? "?" + query : "");
  }

  function directionText(m) {
    const origin = { texter_click: "texter click", automated_reply: "automated", voter: "voter" }[m.origin] || m.origin;
    const arrow = m.direction === "inbound" ? "in" : m.direction === "outbound" ? "out" : str(m.direction);
    return arrow + " · " + origin + (m.kind && m.kind !== "inbound" ? " · " + m.kind.replace(/_/g, " ") : "");
  }

  function messageRow(m) {
    const row = el("tr", {
      "data-message-id": m.message_id,
      tabindex: "0",
      "aria-label": "Message of " + tb.fmtTime(m.occurred_at) + " to or from " + m.phone + ": open its click trail",
      on: {
        click: () => openTrail(m.message_id, row),
        keydown: (event) => {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            openTrail(m.message_id, row);
          }
        },
      },
    },
      el("td", {}, time(m.occurred_at)),
      el("td", {}, directionText(m)),
      el("td", { class: "mono" }, m.phone),
      el("td", {}, m.texter_id ? nameOf(m.texter_id, m.texter_name) : "—"),
      el("td", {}, m.campaign_id ? campaignName(m.campaign_id, m.campaign_name) : "—"),
      el("td", { class: "num" }, ms(m.display_to_click_ms)),
      el("td", {}, el("span", { class: "badge status-" + String(m.delivery_status || m.status) }, str(m.delivery_status || m.status))),
      el("td", { class: "mono" }, str(m.error_code)));
    if (m.texter_id && m.texter_name) state.names.set(m.texter_id, m.texter_name);
    return row;
  }

  // A search started while another is still loading replaces it: the
  // older answer is dropped, so the table always shows the last search
  // asked for (the page's own first search included).
  async function searchMessages() {
    state.searchGeneration += 1;
    state.search = readMessageFilters();
    state.cursor = null;
    updateExportLink();
    tb.clearFlash();
    tb.clear(tb.$("#results tbody"));
    document.getElementById("load-more").hidden = true;
    document.getElementById("results-status").textContent = "Searching…";
    try {
      await fetchMessages(state.searchGeneration);
    } catch (err) {
      tb.showError(err);
    }
  }

  async function loadMoreMessages() {
    await fetchMessages(state.searchGeneration);
  }

  async function fetchMessages(generation) {
    const params = new URLSearchParams(state.search || "");
    if (state.cursor) params.set("cursor", state.cursor);
    const status = document.getElementById("results-status");
    let page;
    try {
      page = await tb.api("GET", "/v1/audit/messages?" + params.toString());
    } catch (err) {
      if (generation !== state.searchGeneration) return;
      status.textContent = "";
      throw err;
    }
    if (generation !== state.searchGeneration) return;
    const body = tb.$("#results tbody");
    for (const m of page.messages) body.appendChild(messageRow(m));
    state.cursor = page.next_cursor || null;
    document.getElementById("load-more").hidden = !state.cursor;
    const shown = body.children.length;
    status.textContent = shown === 0
      ? "No messages match."
      : tb.fmtNum(shown) + (shown === 1 ? " message" : " messages") + " shown" + (state.cursor ? "; more are available." : ".");
  }

  // ---------- Click trail ----------

  async function openTrail(messageId, row) {
    showTab("messages", false);
    const section = document.getElementById("trail");
    if (state.openRow) state.openRow.removeAttribute("aria-current");
    state.openRow = row || tb.$('#results tr[data-message-id="' + messageId + '"]') || null;
    if (state.openRow) state.openRow.setAttribute("aria-current", "true");
    section.hidden = false;
    tb.clear(section);
    section.appendChild(el("h2", { id: "trail-title" }, "Click trail"));
    section.appendChild(el("p", { class: "status", "aria-live": "polite" }, "Loading the trail…"));
    tb.clearFlash();
    try {
      const trail = await tb.api("GET", "/v1/audit/messages/" + encodeURIComponent(messageId));
      renderTrail(section, trail);
    } catch (err) {
      tb.clear(section);
      section.hidden = true;
      tb.showError(err);
      return;
    }
    section.scrollIntoView({ block: "start" });
    section.focus({ preventScroll: true });
  }

  function closeTrail() {
    const section = document.getElementById("trail");
    section.hidden = true;
    tb.clear(section);
    const row = state.openRow;
    state.openRow = null;
    if (row) row.removeAttribute("aria-current");
    if (row && row.isConnected && row.offsetParent !== null) row.focus();
    else document.getElementById("panel-messages").focus();
  }

  function hoursText(m) {
    if (m.hours_allowed === null || m.hours_allowed === undefined) return "not checked";
    const verdict = m.hours_allowed ? "inside texting hours" : "OUTSIDE texting hours";
    const parts = [verdict];
    if (m.recipient_local_time) parts.push("recipient's local time " + m.recipient_local_time);
    if (m.recipient_time_zone || m.time_zone_source) {
      parts.push("zone " + str(m.recipient_time_zone) + " (from " + str(m.time_zone_source).replace(/_/g, " ") + ")");
    }
    if (m.texting_window) parts.push("window " + m.texting_window);
    return parts.join("; ");
  }

  function optOutText(m) {
    if (m.opted_out_at_send === null || m.opted_out_at_send === undefined) return "not checked";
    const checked = m.opt_out_checked_events === null || m.opt_out_checked_events === undefined
      ? ""
      : " (checked " + tb.fmtNum(m.opt_out_checked_events) + " earlier events of the number's stream)";
    return (m.opted_out_at_send ? "OPTED OUT when sent" : "not opted out when sent") + checked;
  }

  function evidencePairs(m) {
    const clicked = m.origin === "texter_click";
    const pairs = [
      ["Message", code(m.message_id)],
      ["Origin", m.origin.replace(/_/g, " ") + (m.note ? " — " + m.note : "")],
      ["Kind", str(m.kind && m.kind.replace(/_/g, " "))],
      ["Phone", m.phone],
      ["From → to", str(m.from_number) + " → " + str(m.to_number)],
    ];
    if (clicked || m.texter_id) pairs.push(["Who clicked", m.texter_id ? nameOf(m.texter_id, m.texter_name) + " (" + m.texter_id + ")" : "—"]);
    pairs.push(["Campaign", m.campaign_id ? campaignName(m.campaign_id, m.campaign_name) : "—"]);
    if (clicked) {
      pairs.push(
        ["Key or session", code(m.key_id)],
        ["Key minted by", m.key_issued_by_key_id
          ? str(m.key_issued_by_name || "a key not bound to a member") + " (key " + m.key_issued_by_key_id + ")"
          : "—"],
        ["Click token", code(m.click_token_id)],
        ["IP address", code(m.ip)],
        ["User agent", str(m.user_agent)],
        ["Presented", preciseTime(m.presented_at)],
        ["Clicked (browser clock)", preciseTime(m.clicked_at)],
        ["Received (server clock)", preciseTime(m.received_at)],
        ["Display to click", ms(m.display_to_click_ms)],
        ["Texting-hours check", hoursText(m)],
        ["List", m.list_id ? str(m.list_name) + " — source: " + str(m.list_source) + "; consent: " + str(m.list_consent_basis) : "—"],
        ["Opt-out check", optOutText(m)],
        ["Script version", str(m.script_version)]);
    } else {
      if (m.received_at) pairs.push(["Received (server clock)", preciseTime(m.received_at)]);
      if (m.keyword) pairs.push(["Keyword", m.keyword]);
      if (m.in_reply_to) pairs.push(["In reply to (carrier id)", code(m.in_reply_to)]);
      if (m.opted_out_at_send !== null && m.opted_out_at_send !== undefined) pairs.push(["Opt-out check", optOutText(m)]);
      if (m.list_id) pairs.push(["List", str(m.list_name) + " — source: " + str(m.list_source) + "; consent: " + str(m.list_consent_basis)]);
    }
    pairs.push(
      ["Body SHA-256", code(m.body_sha256)],
      ["Segments", str(m.segments)],
      ["Carrier", str(m.carrier) + (m.carrier_message_id ? " · " + m.carrier_message_id : "")],
      ["Dispatch", str(m.dispatch_status) + (m.attempts ? " (" + m.attempts + " attempt" + (m.attempts === 1 ? "" : "s") + ")" : "")],
      ["Delivery status", str(m.delivery_status)],
      ["Error code", str(m.error_code) + (m.submit_error ? " — " + m.submit_error : "")],
      ["Status", m.status]);
    return pairs;
  }

  function chainText(chain) {
    if (!chain) return ["", "no chain report"];
    if (!chain.first_broken) {
      return ["ok", "Intact: the number's stream " + chain.stream_id + " was recomputed, " + tb.fmtNum(chain.events_checked) + " events checked."];
    }
    const b = chain.first_broken;
    return ["bad", "BROKEN: stream " + chain.stream_id + " at version " + b.version + " (position " + b.position + "): " +
      String(b.reason).replace(/_/g, " ") + "; stored hash " + b.stored_hash + ", expected " + b.expected_hash + "."];
  }

  function renderTrail(section, trail) {
    const m = trail.message;
    tb.clear(section);
    section.appendChild(el("div", { class: "card-head" },
      el("h2", { id: "trail-title" }, "Click trail"),
      el("div", { class: "actions" },
        el("button", { type: "button", class: "secondary", on: { click: () => lookupPhone(m.phone) } }, "Phone history"),
        m.texter_id ? el("button", { type: "button", class: "secondary", on: { click: () => showCadence(m.texter_id) } }, "Texter cadence") : null,
        el("button", { id: "trail-close", type: "button", class: "secondary", on: { click: closeTrail } }, "Close"))));
    section.appendChild(el("h3", {}, "Evidence"));
    section.appendChild(facts(evidencePairs(m), { id: "trail-evidence" }));

    section.appendChild(el("h3", {}, "Events (" + trail.events.length + ", in log order)"));
    section.appendChild(el("ol", { id: "trail-events", class: "events" }, trail.events.map(trailEvent)));

    const [cls, text] = chainText(trail.chain);
    section.appendChild(el("h3", {}, "Hash chain"));
    section.appendChild(el("p", { id: "trail-chain", class: "verdict " + cls }, text));
  }

  function trailEvent(event) {
    return el("li", { class: "trail-event", "data-position": String(event.position) },
      el("div", { class: "event-head" },
        el("span", { class: "event-position" }, "#" + event.position),
        " ",
        el("strong", { class: "event-type" }, event.event_type),
        " ",
        el("span", { class: "muted" }, time(event.recorded_at))),
      facts([
        ["Position", String(event.position)],
        ["Stream", code(event.stream_id)],
        ["Version", String(event.version)],
        ["Type", event.event_type],
        ["Recorded", preciseTime(event.recorded_at)],
        ["Hash", el("code", { class: "mono hash" }, event.hash)],
        ["Previous hash", el("code", { class: "mono hash" }, event.prev_hash)],
      ], { class: "facts compact" }),
      el("details", {},
        el("summary", {}, "Data and metadata"),
        el("pre", { class: "json" }, JSON.stringify(event.data, null, 2)),
        el("pre", { class: "json" }, JSON.stringify(event.metadata, null, 2))));
  }

  // ---------- Phone history ----------

  function buildPhones() {
    return el("div", { class: "panel-body" },
      el("h2", {}, "Phone history"),
      el("p", { class: "muted" }, "Everything the organization did with one number: list uploads, campaigns, messages both ways, opt-outs and opt-ins, refused attempts and survey answers."),
      el("form", { class: "filters", on: { submit: (e) => { e.preventDefault(); lookupPhone(null); } } },
        field("phone-lookup", "Phone number", el("input", { id: "phone-lookup", type: "tel", autocomplete: "off", required: true, placeholder: "+1 555 201 0001" })),
        el("div", { class: "actions" }, el("button", { id: "phone-search", type: "submit", class: "primary" }, "Look up"))),
      el("section", { id: "phone-history", "aria-live": "polite", "aria-busy": "false" }));
  }

  async function lookupPhone(phone) {
    showTab("phones", false);
    const input = document.getElementById("phone-lookup");
    if (phone) input.value = phone;
    const raw = input.value.trim();
    const section = document.getElementById("phone-history");
    if (!raw) {
      input.focus();
      return;
    }
    await run(document.getElementById("phone-search"), async () => {
      tb.clear(section);
      section.setAttribute("aria-busy", "true");
      section.appendChild(el("p", { class: "status" }, "Looking up " + raw + "…"));
      try {
        const history = await tb.api("GET", "/v1/audit/phones/" + encodeURIComponent(raw));
        renderPhone(section, history);
      } catch (err) {
        tb.clear(section);
        if (err instanceof tb.ApiError && err.status === 404) {
          section.appendChild(el("p", { class: "status" }, "The organization never had anything to do with " + raw + "."));
          return;
        }
        throw err;
      } finally {
        section.setAttribute("aria-busy", "false");
      }
    });
  }

  function renderPhone(section, h) {
    tb.clear(section);
    section.appendChild(el("h3", {}, h.phone));
    section.appendChild(facts([
      ["Opted out now", h.opted_out ? el("strong", { class: "bad" }, "yes") : "no"],
      ["Events on its stream", tb.fmtNum(h.events) + (h.last_position ? " (last at position " + h.last_position + ")" : "")],
      ["Stream", code(h.stream_id)],
    ]));

    section.appendChild(el("h4", {}, "List uploads (" + h.lists.length + ")"));
    section.appendChild(h.lists.length ? table({ id: "phone-lists", class: "data" },
      ["List", "Row", "Name on the row", "Source", "Consent basis", "Uploaded", "By", "File SHA-256"],
      h.lists.map((l) => el("tr", {},
        el("td", {}, l.name),
        el("td", { class: "num" }, String(l.line)),
        el("td", {}, [l.first_name, l.last_name].filter(Boolean).join(" ") || "—"),
        el("td", {}, str(l.source)),
        el("td", {}, str(l.consent_basis)),
        el("td", {}, time(l.uploaded_at)),
        el("td", {}, actorText(l.uploaded_by)),
        el("td", { class: "mono hash" }, str(l.file_sha256))))) : emptyNote("In no uploaded list."));

    section.appendChild(el("h4", {}, "Campaigns (" + h.campaigns.length + ")"));
    section.appendChild(h.campaigns.length ? table({ id: "phone-campaigns", class: "data" },
      ["Campaign", "From list", "Assigned texter"],
      h.campaigns.map((c) => el("tr", {},
        el("td", {}, campaignName(c.campaign_id, c.name)),
        el("td", {}, (h.lists.find((l) => l.list_id === c.list_id) || {}).name || shortId(c.list_id)),
        el("td", {}, c.assigned_texter_id ? nameOf(c.assigned_texter_id) : "—")))) : emptyNote("In no campaign."));

    section.appendChild(el("h4", {}, "Messages (" + h.messages.length + (h.messages_truncated ? ", truncated: search by phone for all" : "") + ")"));
    section.appendChild(h.messages.length ? table({ id: "phone-messages", class: "data clickable-rows" },
      ["Time", "Direction", "Phone", "Texter", "Campaign", "Display → click", "Delivery", "Error"],
      h.messages.map(messageRow)) : emptyNote("No messages."));

    section.appendChild(el("h4", {}, "Opt-outs and opt-ins (" + h.opt_outs.length + ")"));
    section.appendChild(h.opt_outs.length ? table({ id: "phone-opt-outs", class: "data" },
      ["Time", "Change", "Source", "Keyword", "Recorded by", "Position"],
      h.opt_outs.map((o) => el("tr", {},
        el("td", {}, time(o.at)),
        el("td", {}, o.change === "opted_out" ? "opted out" : "opted in"),
        el("td", {}, str(typeof o.source === "string" ? o.source.replace(/_/g, " ") : o.source)),
        el("td", {}, str(o.keyword)),
        el("td", {}, actorText(o.actor)),
        el("td", { class: "num" }, String(o.position))))) : emptyNote("No opt-outs or opt-ins."));

    section.appendChild(el("h4", {}, "Refused attempts (" + h.blocked.length + ")"));
    section.appendChild(h.blocked.length ? blockedTable(h.blocked, "phone-blocked") : emptyNote("No refused attempts."));

    section.appendChild(el("h4", {}, "Survey answers (" + h.survey_answers.length + ")"));
    section.appendChild(h.survey_answers.length ? table({ id: "phone-answers", class: "data" },
      ["Time", "Campaign", "Question", "Answer", "Recorded by"],
      h.survey_answers.map((a) => el("tr", {},
        el("td", {}, time(a.at)),
        el("td", {}, campaignName(a.campaign_id)),
        el("td", {}, a.question_id),
        el("td", {}, a.answer),
        el("td", {}, nameOf(a.recorded_by))))) : emptyNote("No survey answers."));
  }

  // ---------- Blocked attempts ----------

  function buildBlocked() {
    return el("div", { class: "panel-body" },
      el("h2", {}, "Blocked attempts"),
      el("p", { class: "muted" }, "Clicks the server refused, with their evidence. Nothing was sent for any of them."),
      el("form", { class: "filters", on: { submit: (e) => { e.preventDefault(); searchBlocked(e.submitter || null); } } },
        field("blocked-reason", "Reason", el("select", { id: "blocked-reason" },
          el("option", { value: "" }, "Any reason"),
          BLOCK_REASONS.map((r) => el("option", { value: r }, r.replace(/_/g, " "))))),
        field("blocked-texter", "Texter", texterPicker("blocked-texter", "Any texter")),
        field("blocked-campaign", "Campaign", campaignPicker("blocked-campaign")),
        field("blocked-from", "From (day)", el("input", { id: "blocked-from", type: "date" })),
        field("blocked-to", "To (day, included)", el("input", { id: "blocked-to", type: "date" })),
        el("div", { class: "actions" }, el("button", { id: "blocked-search", type: "submit", class: "primary" }, "Show"))),
      el("section", { id: "blocked", "aria-labelledby": "blocked-title" },
        el("h3", { id: "blocked-title" }, "Refused attempts"),
        el("p", { id: "blocked-status", class: "status", "aria-live": "polite" }),
        el("ul", { id: "blocked-totals", class: "totals" }),
        el("div", { id: "blocked-table" }),
        el("button", { id: "blocked-more", type: "button", class: "secondary", hidden: true, on: { click: (e) => run(e.currentTarget, () => fetchBlocked(false)) } }, "Load more")));
  }

  function blockedTable(rows, id) {
    return table({ id, class: "data" },
      ["Time", "Reason", "Detail", "Texter", "Campaign", "Phone", "Display → click", "IP", "Texting hours"],
      rows.map(blockedRow));
  }

  function blockedRow(b) {
    const dtc = b.presented_at && b.received_at ? new Date(b.received_at) - new Date(b.presented_at) : null;
    return el("tr", { "data-attempt-id": b.attempt_id },
      el("td", {}, time(b.occurred_at)),
      el("td", {}, el("span", { class: "badge reason" }, b.reason.replace(/_/g, " "))),
      el("td", {}, str(b.detail)),
      el("td", {}, nameOf(b.texter_id)),
      el("td", {}, b.campaign_id ? campaignName(b.campaign_id) : "—"),
      el("td", { class: "mono" }, str(b.phone)),
      el("td", { class: "num" }, ms(dtc)),
      el("td", { class: "mono" }, str(b.ip)),
      el("td", {}, b.hours_allowed === null || b.hours_allowed === undefined ? "—" : hoursText(b)));
  }

  async function searchBlocked(button) {
    const params = new URLSearchParams();
    const get = (id) => document.getElementById(id).value.trim();
    if (get("blocked-reason")) params.set("reason", get("blocked-reason"));
    if (get("blocked-texter")) params.set("texter_id", get("blocked-texter"));
    if (get("blocked-campaign")) params.set("campaign_id", get("blocked-campaign"));
    const from = dayStart(get("blocked-from"), 0);
    const to = dayStart(get("blocked-to"), 1);
    if (from) params.set("from", from);
    if (to) params.set("to", to);
    state.blockedParams = params;
    state.blockedCursor = null;
    await run(button || document.getElementById("blocked-search"), () => fetchBlocked(true));
  }

  async function fetchBlocked(first) {
    const params = new URLSearchParams(state.blockedParams || "");
    if (!first && state.blockedCursor) params.set("cursor", state.blockedCursor);
    const status = document.getElementById("blocked-status");
    status.textContent = "Loading…";
    let page;
    try {
      page = await tb.api("GET", "/v1/audit/blocked?" + params.toString());
    } catch (err) {
      status.textContent = "";
      throw err;
    }
    const holder = document.getElementById("blocked-table");
    if (first) {
      const totals = document.getElementById("blocked-totals");
      tb.clear(totals);
      for (const [reason, count] of Object.entries(page.by_reason)) {
        totals.appendChild(el("li", { "data-reason": reason },
          el("span", { class: "total-count" }, tb.fmtNum(count)), " ", reason.replace(/_/g, " ")));
      }
      tb.clear(holder);
      holder.appendChild(blockedTable([], "blocked-attempts"));
    }
    const body = tb.$("#blocked-attempts tbody");
    for (const b of page.attempts) body.appendChild(blockedRow(b));
    state.blockedCursor = page.next_cursor || null;
    document.getElementById("blocked-more").hidden = !state.blockedCursor;
    const shown = body.children.length;
    status.textContent = page.total === 0
      ? "No refused attempts match."
      : tb.fmtNum(page.total) + " refused attempt" + (page.total === 1 ? "" : "s") + " in all; " + tb.fmtNum(shown) + " shown.";
  }

  // ---------- Cadence ----------

  function buildCadence() {
    return el("div", { class: "panel-body" },
      el("h2", {}, "Texter cadence"),
      el("p", { class: "muted" }, "How long a texter looked at each message before clicking, and how many clicks a minute: a person's timings scatter, a script's do not."),
      el("form", { class: "filters", on: { submit: (e) => { e.preventDefault(); showCadence(null); } } },
        field("cadence-texter", "Texter", texterPicker("cadence-texter", null)),
        field("cadence-from", "From (day)", el("input", { id: "cadence-from", type: "date" })),
        field("cadence-to", "To (day, included)", el("input", { id: "cadence-to", type: "date" })),
        el("div", { class: "actions" }, el("button", { id: "cadence-load", type: "submit", class: "primary" }, "Show cadence"))),
      el("section", { id: "cadence", "aria-live": "polite" }));
  }

  async function showCadence(texterId) {
    showTab("cadence", false);
    const picker = document.getElementById("cadence-texter");
    if (texterId) {
      if (picker.tagName === "SELECT" && !Array.from(picker.options).some((o) => o.value === texterId)) {
        picker.appendChild(el("option", { value: texterId }, nameOf(texterId)));
      }
      picker.value = texterId;
    }
    const id = picker.value.trim();
    const section = document.getElementById("cadence");
    if (!id) {
      tb.clear(section);
      section.appendChild(el("p", { class: "status" }, "Pick a texter first."));
      picker.focus();
      return;
    }
    const params = new URLSearchParams();
    const from = dayStart(document.getElementById("cadence-from").value, 0);
    const to = dayStart(document.getElementById("cadence-to").value, 1);
    if (from) params.set("from", from);
    if (to) params.set("to", to);
    await run(document.getElementById("cadence-load"), async () => {
      tb.clear(section);
      section.appendChild(el("p", { class: "status" }, "Loading…"));
      const query = params.toString();
      try {
        const cadence = await tb.api("GET", "/v1/audit/texters/" + encodeURIComponent(id) + "/cadence" + (query ? "?" + query : ""));
        renderCadence(section, id, cadence);
      } catch (err) {
        tb.clear(section);
        throw err;
      }
    });
  }

  function msLabel(value) {
    if (value >= 1000) return (value / 1000) + "s";
    return value + "ms";
  }

  function renderCadence(section, texterId, c) {
    tb.clear(section);
    section.appendChild(el("h3", {}, nameOf(texterId)));
    const verdict = c.looks_automated
      ? el("div", { id: "cadence-verdict", class: "verdict bad", "data-looks-automated": "true" },
        el("strong", {}, "Looks automated."),
        el("ul", { id: "cadence-reasons" }, c.reasons.map((r) => el("li", {}, r))))
      : el("div", { id: "cadence-verdict", class: "verdict ok", "data-looks-automated": "false" },
        el("strong", {}, "Looks human."),
        " Nothing was flagged" + (c.clicks < c.thresholds.min_sample ? " (fewer than " + c.thresholds.min_sample + " clicks: too few to judge shares and regularity)." : "."));
    section.appendChild(verdict);

    const d = c.display_to_click;
    const r = c.clicks_per_minute;
    section.appendChild(facts([
      ["Clicks", tb.fmtNum(c.clicks)],
      ["First / last click", time(c.first_click_at) + " / " + time(c.last_click_at)],
      ["Display to click (" + tb.fmtNum(d.measured) + " measured)", "min " + ms(d.min_ms) + " · p50 " + ms(d.p50_ms) + " · p90 " + ms(d.p90_ms) + " · max " + ms(d.max_ms)],
      ["Under " + c.thresholds.fast_click_ms + " ms", tb.fmtNum(d.below_floor)],
      ["Clicks per minute", "max " + tb.fmtNum(r.max) + " · mean " + (r.mean === null || r.mean === undefined ? "—" : r.mean.toFixed(1)) + " over " + tb.fmtNum(r.active_minutes) + " active minutes"],
      ["Between clicks", tb.fmtNum(c.intervals.count) + " intervals · p50 " + ms(c.intervals.p50_ms) + " · variation " + (c.intervals.cv === null || c.intervals.cv === undefined ? "—" : c.intervals.cv.toFixed(3))],
      ["Thresholds", "fast click < " + c.thresholds.fast_click_ms + " ms on ≥ " + Math.round(c.thresholds.fast_share * 100) + "% of clicks; > " +
        c.thresholds.max_clicks_per_minute + " clicks a minute; variation < " + c.thresholds.regularity_max_cv + "; judged from " + c.thresholds.min_sample + " clicks"],
    ], { id: "cadence-stats" }));

    section.appendChild(el("div", { class: "charts" },
      el("figure", { class: "chart" },
        histogram(d.buckets, {
          id: "cadence-display-chart",
          title: "Display to click",
          label: (b) => b.to === null || b.to === undefined ? "≥" + msLabel(b.from) : msLabel(b.from) + "–" + msLabel(b.to),
          tick: (b) => b.from === 0 ? "<" + msLabel(b.to) : b.to === null || b.to === undefined ? "≥" + msLabel(b.from) : msLabel(b.from),
          flagged: (b) => b.to !== null && b.to !== undefined && b.to <= c.thresholds.fast_click_ms,
        }),
        el("figcaption", {}, "Display to click: clicks by the time from showing the message to the click reaching the server (each bar starts at its label; orange: under the human floor)")),
      el("figure", { class: "chart" },
        histogram(r.buckets, {
          id: "cadence-rate-chart",
          title: "Clicks per minute",
          label: (b) => {
            const from = Math.max(b.from, 1);
            if (b.to === null || b.to === undefined) return from + "+";
            return from === b.to - 1 ? String(from) : from + "–" + (b.to - 1);
          },
          flagged: (b) => b.from > c.thresholds.max_clicks_per_minute,
        }),
        el("figcaption", {}, "Clicks per minute: active minutes by how many clicks they held (orange: more than a person can sustain)"))));
  }

  // A bar chart of histogram buckets, hand-drawn in SVG.
  function histogram(buckets, opts) {
    const width = 480;
    const height = 200;
    const left = 34;
    const right = 8;
    const top = 18;
    const bottom = 34;
    const max = Math.max(1, ...buckets.map((b) => b.count));
    const slot = (width - left - right) / Math.max(1, buckets.length);
    const plot = height - top - bottom;
    const svg = document.createElementNS(SVG, "svg");
    const summary = buckets.map((b) => opts.label(b) + ": " + b.count).join(", ");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("id", opts.id);
    svg.setAttribute("class", "histogram");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", opts.title + " histogram. " + summary);
    const add = (tag, attrs, text) => {
      const node = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
      if (text !== undefined) node.textContent = text;
      svg.appendChild(node);
      return node;
    };
    add("line", { x1: left, y1: top + plot, x2: width - right, y2: top + plot, class: "axis" });
    add("line", { x1: left, y1: top, x2: left, y2: top + plot, class: "axis" });
    add("text", { x: left - 4, y: top + 4, "text-anchor": "end", class: "tick" }, String(max));
    add("text", { x: left - 4, y: top + plot, "text-anchor": "end", class: "tick" }, "0");
    buckets.forEach((b, i) => {
      const h = Math.round((b.count / max) * plot);
      const x = left + i * slot + slot * 0.12;
      const w = slot * 0.76;
      const bar = add("rect", {
        x: x.toFixed(1), y: top + plot - h, width: w.toFixed(1), height: Math.max(h, 0),
        class: "bar" + (opts.flagged(b) ? " flagged" : ""),
      });
      const title = document.createElementNS(SVG, "title");
      title.textContent = opts.label(b) + ": " + b.count;
      bar.appendChild(title);
      if (b.count > 0) {
        add("text", { x: (x + w / 2).toFixed(1), y: top + plot - h - 4, "text-anchor": "middle", class: "value" }, String(b.count));
      }
      add("text", { x: (x + w / 2).toFixed(1), y: height - bottom + 16, "text-anchor": "middle", class: "tick" }, (opts.tick || opts.label)(b));
    });
    return svg;
  }

  // ---------- Verify ----------

  function buildVerify() {
    return el("div", { class: "panel-body" },
      el("h2", {}, "Verify the log"),
      el("p", { class: "muted" }, "Recomputes the hash chain of every stream of the organization: any edited, deleted or reordered event shows up as a broken link."),
      el("button", { id: "verify", type: "button", class: "primary", on: { click: (e) => run(e.currentTarget, verify) } }, "Verify every stream"),
      el("div", { id: "verify-result", class: "verdict", "aria-live": "polite" }));
  }

  async function verify() {
    const result = document.getElementById("verify-result");
    tb.clear(result);
    result.className = "verdict";
    result.textContent = "Verifying… (this reads every event of the organization)";
    let report;
    try {
      report = await tb.api("GET", "/v1/audit/verify");
    } catch (err) {
      result.textContent = "";
      throw err;
    }
    tb.clear(result);
    if (report.intact) {
      result.className = "verdict ok";
      result.setAttribute("data-intact", "true");
      result.textContent = "Intact: " + tb.fmtNum(report.streams_checked) + " streams, " + tb.fmtNum(report.events_checked) + " events checked.";
      return;
    }
    const b = report.first_broken;
    result.className = "verdict bad";
    result.setAttribute("data-intact", "false");
    result.appendChild(el("p", {}, el("strong", {}, "Broken: "),
      tb.fmtNum(report.broken_streams) + " of " + tb.fmtNum(report.streams_checked) + " streams (" + tb.fmtNum(report.events_checked) + " events checked)."));
    if (b) {
      result.appendChild(el("p", {}, "First broken link: stream ", code(b.stream_id), " at version " + b.version +
        " (position " + b.position + "): " + String(b.reason).replace(/_/g, " ") + "."));
      result.appendChild(facts([
        ["Stored hash", el("code", { class: "mono hash" }, b.stored_hash)],
        ["Expected hash", el("code", { class: "mono hash" }, b.expected_hash)],
      ]));
    }
    if (report.broken && report.broken.length > 1) {
      result.appendChild(el("details", {}, el("summary", {}, "Every broken stream named (" + report.broken.length + ")"),
        el("ul", {}, report.broken.map((s) => el("li", {}, s.stream_id + " — version " + s.version + ", " + String(s.reason).replace(/_/g, " "))))));
    }
  }

  // ---------- page ----------

  async function start() {
    const main = document.getElementById("main");
    tb.clear(main);
    main.appendChild(el("h1", {}, "Compliance"));
    if (!tb.can("read_audit")) {
      main.appendChild(el("p", {}, "Your role cannot read the compliance audit."));
      return;
    }
    const status = el("p", { class: "status", "aria-live": "polite" }, "Loading…");
    main.appendChild(status);
    await loadCampaigns();
    await loadTexters();
    status.remove();

    const builders = { messages: buildMessages, phones: buildPhones, blocked: buildBlocked, cadence: buildCadence, verify: buildVerify };
    main.appendChild(buildTabs());
    for (const [name] of TABS) {
      main.appendChild(el("div", {
        id: "panel-" + name, class: "tabpanel", role: "tabpanel", tabindex: "-1",
        "aria-labelledby": "tab-" + name, hidden: name !== "messages",
      }, builders[name]()));
    }
    if (state.texterSource === "none") {
      main.appendChild(el("p", { class: "muted small" }, "No texters could be listed: enter a texter's id."));
    }
    for (const id of ["filter-phone", "filter-texter", "filter-campaign", "filter-from", "filter-to"]) {
      const input = document.getElementById(id);
      input.addEventListener("input", updateExportLink);
      input.addEventListener("change", updateExportLink);
    }
    const wanted = location.hash.slice(1);
    showTab(TABS.some(([n]) => n === wanted) ? wanted : "messages", false);
    window.addEventListener("hashchange", () => {
      const name = location.hash.slice(1);
      if (TABS.some(([n]) => n === name)) showTab(name, false);
    });
    searchMessages();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
