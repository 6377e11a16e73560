// textbank web app: /app/campaigns/{id} — one campaign: its lifecycle, its
// script (editable while draft or paused), assignment of contacts to
// texters, and a live dashboard.
(function () {
  "use strict";

  const tb = window.tb;
  const main = document.getElementById("main");
  const id = tb.page.campaignId;
  const base = `/v1/campaigns/${encodeURIComponent(id || "")}`;
  const LIVE_MS = 3000;

  // Which lifecycle step each status allows (crates/domain/src/campaign.rs,
  // Transition::from_states), and which statuses allow script edits.
  const TRANSITIONS = [
    { step: "launch", label: "Launch", from: ["draft"], done: "Campaign launched." },
    { step: "pause", label: "Pause", from: ["active"], done: "Campaign paused." },
    { step: "resume", label: "Resume", from: ["paused"], done: "Campaign resumed." },
    { step: "archive", label: "Archive", from: ["draft", "active", "paused"], done: "Campaign archived.",
      confirm: "Archive for good? Texters can no longer send in it, and it cannot be reopened." },
  ];
  const SCRIPT_EDITABLE = ["draft", "paused"];
  const STATUS_CLASS = { draft: "", active: "ok", paused: "warn", archived: "bad" };

  const FAILURE_MEANINGS = {
    30003: "Unreachable handset",
    30004: "Message blocked by the recipient",
    30005: "Unknown or inactive number",
    30006: "Landline or unreachable carrier",
    30007: "Carrier filtered (spam filter)",
    30008: "Unknown carrier error",
    no_carrier: "No carrier was set up (the contact can be texted again)",
  };
  const BLOCK_MEANINGS = {
    opted_out: "The contact had opted out",
    quiet_hours: "Outside the contact's texting hours",
    campaign_not_open: "The campaign was not active",
    already_messaged: "The contact had already been messaged",
    token_used: "The click token was already used",
    token_expired: "The click token had expired",
    token_invalid: "The click token was not valid",
    not_your_token: "The click token belonged to another texter",
    not_assigned: "The contact was not assigned to the texter",
    too_fast: "Clicked faster than a person can read",
    no_carrier: "The organization had no carrier set up",
  };

  const METRICS = [
    ["contacts", "Contacts", "num"],
    ["assigned", "Assigned", "num"],
    ["messaged", "Messaged", "num"],
    ["delivered", "Delivered", "num"],
    ["failed", "Failed", "num"],
    ["replied", "Replied", "num"],
    ["opted_out", "Opted out", "num"],
    ["delivery_rate", "Delivery rate", "pct"],
    ["reply_rate", "Reply rate", "pct"],
    ["opt_out_rate", "Opt-out rate", "pct"],
    ["median_time_to_first_reply_ms", "Median time to first reply", "ms"],
  ];

  let campaign = null;
  let customFields = [];
  let editing = null; // the script editor while the script is being edited

  // ---- small helpers ---------------------------------------------------

  function setText(node, text) {
    const value = String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return "—";
    const s = Math.round(ms / 1000);
    if (s < 1) return `${ms} ms`;
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${s % 60} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  // Brings a tbody's rows in line with `rows` ([{key, cells}]) without
  // rebuilding rows that stay: a cell's text changes only if it differs, so
  // nothing flickers and a focused button in a row keeps its focus. `build`
  // makes a new row's <tr> with its cells; a `null` cell is left alone.
  function syncRows(tbody, rows, build) {
    const existing = new Map(Array.from(tbody.rows).map((tr) => [tr.dataset.key, tr]));
    let previous = null;
    rows.forEach((row) => {
      let tr = existing.get(row.key);
      if (tr) existing.delete(row.key);
      else { tr = build(row); tr.dataset.key = row.key; }
      row.cells.forEach((value, i) => { if (value !== null && tr.cells[i]) setText(tr.cells[i], value); });
      const wanted = previous ? previous.nextSibling : tbody.firstChild;
      if (wanted !== tr) tbody.insertBefore(tr, wanted);
      previous = tr;
    });
    existing.forEach((tr) => tr.remove());
  }

  // A table whose first column heads each row; `numeric` lists the
  // columns of figures (right-aligned). `row()` makes an empty row for it.
  function table(idAttr, caption, headers, numeric) {
    const isNum = (i) => numeric.includes(i);
    const tbody = tb.el("tbody");
    const node = tb.el("table", { id: idAttr },
      tb.el("caption", { class: "visually-hidden" }, caption),
      tb.el("thead", {}, tb.el("tr", {}, headers.map((h, i) => tb.el("th", { scope: "col", class: isNum(i) ? "num" : null }, h)))),
      tbody);
    const row = () => tb.el("tr", {}, headers.map((_, i) =>
      i === 0 ? tb.el("th", { scope: "row" }) : tb.el("td", { class: isNum(i) ? "num" : null })));
    return { node, tbody, row };
  }

  // ---- header and lifecycle -------------------------------------------

  const title = tb.el("h1", { id: "campaign-name" }, "Campaign");
  const statusBadge = tb.el("span", { id: "campaign-status", class: "badge", tabindex: "-1", "aria-live": "polite" });
  const lifecycle = tb.el("div", { class: "lifecycle", role: "group", "aria-label": "Campaign lifecycle" });
  const buttons = {};
  TRANSITIONS.forEach((t) => {
    buttons[t.step] = tb.el("button", {
      type: "button", id: t.step, hidden: true,
      class: t.step === "archive" ? "secondary" : t.step === "pause" ? "secondary" : null,
      on: { click: () => askFirst(t) },
    }, t.label);
    lifecycle.appendChild(buttons[t.step]);
  });
  const facts = tb.el("dl", { class: "facts" });

  // Copy: a new draft with this campaign's script, questions, hours and
  // settings (POST /v1/campaigns/{id}/copy); its lists only if kept.
  const keepLists = tb.el("input", { type: "checkbox", id: "copy-keep-lists" });
  const copyButton = tb.el("button", { type: "button", id: "copy-campaign", class: "secondary",
    on: { click: copyCampaign } }, "Copy to a new draft");
  const copyBox = tb.el("div", { id: "copy", class: "lifecycle-copy", role: "group", "aria-label": "Copy campaign", hidden: true },
    copyButton, tb.el("label", { for: "copy-keep-lists" }, keepLists, " Keep its lists attached"));

  async function copyCampaign() {
    tb.clearFlash();
    copyButton.disabled = true;
    try {
      const copy = await tb.api("POST", `${base}/copy`, { keep_lists: keepLists.checked });
      window.location.assign(`/app/campaigns/${encodeURIComponent(copy.campaign_id)}`);
    } catch (err) {
      tb.showError(err);
      copyButton.disabled = false;
    }
  }

  // A step that cannot be undone asks again in the page (no confirm()
  // dialog): the button turns into "Yes, archive" beside a Cancel.
  const confirmBox = tb.el("div", { id: "lifecycle-confirm", class: "lifecycle-confirm", role: "group", hidden: true });
  lifecycle.appendChild(confirmBox);

  function askFirst(t) {
    if (!t.confirm) { transition(t); return; }
    tb.clear(confirmBox).append(
      tb.el("p", { id: "lifecycle-confirm-question" }, t.confirm),
      tb.el("button", { type: "button", id: `confirm-${t.step}`, class: "danger",
        on: { click: () => { confirmBox.hidden = true; transition(t); } } }, `Yes, ${t.label.toLowerCase()}`),
      tb.el("button", { type: "button", id: `cancel-${t.step}`, class: "secondary",
        on: { click: () => { confirmBox.hidden = true; buttons[t.step].focus(); } } }, "Cancel"));
    confirmBox.hidden = false;
    tb.$(`#cancel-${t.step}`, confirmBox).focus();
  }

  async function transition(t) {
    tb.clearFlash();
    Object.values(buttons).forEach((b) => { b.disabled = true; });
    try {
      await tb.api("POST", `${base}/${t.step}`);
      tb.flash(t.done);
      await refreshCampaign();
      await refreshLive();
      statusBadge.focus();
    } catch (err) {
      tb.showError(err);
    } finally {
      Object.values(buttons).forEach((b) => { b.disabled = false; });
    }
  }

  function drawHeader() {
    setText(title, campaign.name);
    document.title = `${campaign.name} · textbank`;
    setText(statusBadge, campaign.status);
    statusBadge.className = `badge status-${campaign.status} ${STATUS_CLASS[campaign.status] || ""}`;
    statusBadge.dataset.status = campaign.status;
    const manage = tb.can("manage_campaigns");
    TRANSITIONS.forEach((t) => { buttons[t.step].hidden = !(manage && t.from.includes(campaign.status)); });
    copyBox.hidden = !manage;
    const factsKey = JSON.stringify([campaign.contacts, campaign.contacts_copying, campaign.texting_hours, campaign.assignment_batch_size,
      campaign.max_contacts_held, campaign.max_replies_waiting, listNames, campaign.list_ids]);
    if (facts.dataset.key === factsKey) return;
    facts.dataset.key = factsKey;
    tb.clear(facts);
    const fact = (term, value) => [tb.el("dt", {}, term), tb.el("dd", {}, value)];
    // A large list is copied into the campaign in the background; until it
    // is done the campaign cannot launch (the server says so with a 409).
    const copying = campaign.contacts_copying;
    const contacts = copying
      ? `${tb.fmtNum(campaign.contacts)} so far: copying from the lists, ` +
        `${Math.floor(100 * copying.lines_copied / Math.max(copying.lines_total, 1))}% done; launching waits for it`
      : tb.fmtNum(campaign.contacts);
    facts.append(...fact("Contacts", contacts),
      ...fact("Texting hours", `${campaign.texting_hours.start}–${campaign.texting_hours.end} (contact's local time)`),
      ...fact("Batch size", tb.fmtNum(campaign.assignment_batch_size)),
      ...fact("Most contacts a texter holds unsent", campaign.max_contacts_held == null ? "No limit" : tb.fmtNum(campaign.max_contacts_held)),
      ...fact("New batch only with at most", campaign.max_replies_waiting == null ? "No rule" :
        `${tb.fmtNum(campaign.max_replies_waiting)} conversations waiting for a reply`),
      ...fact("Lists", listNames.length ? listNames.join(", ") : `${campaign.list_ids.length}`),
      ...fact("Created", tb.fmtTime(campaign.created_at)));
  }

  // ---- script ------------------------------------------------------------

  const scriptSection = tb.el("section", { class: "card", "aria-labelledby": "script-heading" });
  let shownScriptKey = null;

  function drawScript(force) {
    if (editing) return;
    const key = `${campaign.script.version}|${campaign.status}`;
    if (!force && key === shownScriptKey) return;
    shownScriptKey = key;
    const s = campaign.script;
    const canned = Array.isArray(s.canned_responses) ? s.canned_responses : [];
    const editable = tb.can("manage_campaigns") && SCRIPT_EDITABLE.includes(campaign.status);
    const seg = tb.segments(window.tbScript.render(window.tbScript.parse(s.initial_message, customFields).parts));
    tb.clear(scriptSection);
    // tb.el skips null children; the DOM's append would print "null".
    scriptSection.appendChild(tb.el("div", {},
      tb.el("h2", { id: "script-heading" }, "Script ", tb.el("span", { id: "script-version", class: "badge" }, `version ${s.version}`)),
      tb.el("p", { id: "current-script", class: "script-text" }, s.initial_message),
      tb.el("p", { class: "muted" }, `For a sample contact: ${seg.encoding}, ${seg.segments} segment${seg.segments === 1 ? "" : "s"}.`),
      canned.length ? tb.el("div", {},
        tb.el("h3", {}, "Canned responses"),
        tb.el("dl", { class: "canned-list" }, canned.map((c) => [tb.el("dt", {}, c.title), tb.el("dd", {}, c.body)]))) : null,
      Array.isArray(campaign.questions) && campaign.questions.length ? tb.el("div", {},
        tb.el("h3", {}, "Survey questions"),
        tb.el("ul", {}, campaign.questions.map((q) => tb.el("li", {}, q.text, tb.el("span", { class: "muted" }, ` (${q.answers.join(" / ")})`))))) : null,
      editable
        ? tb.el("button", { type: "button", id: "edit-script", on: { click: startEditing } }, "Edit script")
        : tb.el("p", { class: "muted" }, tb.can("manage_campaigns")
          ? "The script can be edited while the campaign is a draft or paused." : "")));
  }

  function startEditing() {
    const s = campaign.script;
    editing = window.tbScript.editor({
      initialMessage: s.initial_message,
      cannedResponses: Array.isArray(s.canned_responses) ? s.canned_responses : [],
      fields: customFields,
    });
    const errors = tb.el("div", { id: "script-errors", class: "form-errors", role: "alert" });
    const save = tb.el("button", { type: "submit", id: "save-script" }, "Save script");
    const form = tb.el("form", {
      id: "script-form", novalidate: true,
      on: {
        submit: async (event) => {
          event.preventDefault();
          tb.clear(errors);
          tb.clearFlash();
          save.disabled = true;
          try {
            const written = await tb.api("PUT", `${base}/script`, editing.value());
            editing = null;
            campaign = written;
            const warnings = written.warnings && written.warnings.length ? ` Warnings: ${written.warnings.join(" ")}` : "";
            tb.flash(`Script saved as version ${written.script.version}.${warnings}`);
            drawScript(true);
            const edit = tb.$("#edit-script");
            if (edit) edit.focus();
          } catch (err) {
            save.disabled = false;
            if (err.status >= 400 && err.status < 500) errors.appendChild(tb.el("p", {}, err.message));
            else tb.showError(err);
          }
        },
      },
    },
    editing.node,
    errors,
    tb.el("div", { class: "form-actions" },
      save,
      tb.el("button", {
        type: "button", id: "cancel-script", class: "secondary",
        on: { click: () => { editing = null; drawScript(true); const edit = tb.$("#edit-script"); if (edit) edit.focus(); } },
      }, "Cancel")));
    tb.clear(scriptSection);
    scriptSection.append(
      tb.el("h2", { id: "script-heading" }, `Edit script (now version ${s.version})`),
      form);
    editing.focus();
  }

  // ---- assignment --------------------------------------------------------

  const assignSection = tb.el("section", { class: "card", "aria-labelledby": "assign-heading" });
  const assignTable = table("assignments", "Contacts held per texter", ["Texter", "Assigned", "Actions"], [1]);
  const unassignedNode = tb.el("span", { id: "unassigned" }, "—");
  const texterSelect = tb.el("select", { id: "assign-texter", name: "texter_id", required: true });
  const assignCount = tb.el("input", { id: "assign-count", name: "count", type: "number", min: 1, max: 10000, step: 1, inputmode: "numeric", required: true, value: 100 });
  const assignButton = tb.el("button", { type: "submit", id: "assign" }, "Assign");
  const assignStatus = tb.el("p", { class: "muted", "aria-live": "polite" });
  const assignEmpty = tb.el("p", { class: "muted" }, "No texter holds contacts of this campaign.");
  const assignForm = tb.el("form", { id: "assign-form", class: "inline-form", novalidate: true, on: { submit: assign } },
    tb.el("div", {}, tb.el("label", { for: "assign-texter" }, "Texter"), texterSelect),
    tb.el("div", {}, tb.el("label", { for: "assign-count" }, "Contacts"), assignCount),
    tb.el("div", { class: "form-actions" }, assignButton));
  let texters = [];

  function buildAssignSection() {
    assignSection.append(
      tb.el("h2", { id: "assign-heading" }, "Assignment"),
      tb.el("p", {}, "Unassigned reachable contacts: ", unassignedNode),
      tb.el("div", { class: "table-scroll" }, assignTable.node),
      assignEmpty,
      assignForm,
      assignStatus);
  }

  function drawTexterOptions(fromAssignments) {
    const known = new Map(texters.map((t) => [t.member_id, t.name]));
    (fromAssignments || []).forEach((t) => { if (!known.has(t.texter_id)) known.set(t.texter_id, t.name); });
    const current = texterSelect.value;
    const wanted = Array.from(known.entries());
    const have = Array.from(texterSelect.options).map((o) => o.value);
    if (have.join() === wanted.map(([k]) => k).join()) return;
    tb.clear(texterSelect);
    if (!wanted.length) texterSelect.appendChild(tb.el("option", { value: "" }, "No texters yet"));
    wanted.forEach(([memberId, name]) => texterSelect.appendChild(tb.el("option", { value: memberId }, name)));
    if (wanted.some(([k]) => k === current)) texterSelect.value = current;
  }

  async function assign(event) {
    event.preventDefault();
    tb.clearFlash();
    const count = Number(assignCount.value);
    if (!texterSelect.value) { tb.showError(new Error("Choose a texter first.")); texterSelect.focus(); return; }
    if (!Number.isInteger(count) || count < 1) { tb.showError(new Error("Enter how many contacts to assign (a whole number, 1 or more).")); assignCount.focus(); return; }
    assignButton.disabled = true;
    try {
      const result = await tb.api("POST", `${base}/assignments`, { texter_id: texterSelect.value, count });
      const name = texterSelect.selectedOptions[0] ? texterSelect.selectedOptions[0].textContent : "the texter";
      setText(assignStatus, `Assigned ${tb.fmtNum(result.assigned)} contact${result.assigned === 1 ? "" : "s"} to ${name}.`);
      await refreshLive();
    } catch (err) {
      tb.showError(err);
    } finally {
      assignButton.disabled = false;
    }
  }

  async function release(texterId, name, button) {
    tb.clearFlash();
    button.disabled = true;
    try {
      const result = await tb.api("POST", `${base}/assignments/release`, { texter_id: texterId });
      setText(assignStatus, `Released ${tb.fmtNum(result.released)} contact${result.released === 1 ? "" : "s"} from ${name}.`);
      await refreshLive();
    } catch (err) {
      tb.showError(err);
    } finally {
      button.disabled = false;
    }
  }

  function drawAssignments(data) {
    setText(unassignedNode, data.unassigned === undefined || data.unassigned === null ? "—" : tb.fmtNum(data.unassigned));
    const open = campaign && campaign.status !== "archived";
    assignForm.hidden = !open;
    drawTexterOptions(data.texters);
    syncRows(assignTable.tbody, (data.texters || []).map((t) => ({
      key: t.texter_id, name: t.name, assigned: t.assigned,
      cells: [t.name, tb.fmtNum(t.assigned), null],
    })), (row) => {
      const button = tb.el("button", {
        type: "button", class: "secondary release", data: { texterId: row.key },
        "aria-label": `Release all contacts held by ${row.name}`,
      }, "Release");
      button.addEventListener("click", () => release(row.key, row.name, button));
      const tr = assignTable.row();
      tr.cells[2].appendChild(button);
      return tr;
    });
    tb.$$("button.release", assignTable.tbody).forEach((b) => { b.hidden = !open; });
    const held = (data.texters || []).length > 0;
    assignTable.node.hidden = !held;
    assignEmpty.hidden = held;
  }

  // ---- dashboard ---------------------------------------------------------

  const dashboard = tb.el("section", { class: "card", "aria-labelledby": "dashboard-heading" });
  const cards = tb.el("div", { class: "metric-grid" });
  const metricNodes = {};
  METRICS.forEach(([key, label]) => {
    metricNodes[key] = tb.el("span", { class: "metric-value", data: { metric: key } }, "—");
    cards.appendChild(tb.el("div", { class: "metric" }, tb.el("span", { class: "metric-label" }, label), metricNodes[key]));
  });
  const updated = tb.el("span", { class: "muted live-note" });
  const chartNode = tb.el("div", { id: "timeseries-chart", class: "chart-box" });
  const failures = table("failures", "Failed initial messages by carrier error code", ["Error code", "Meaning", "Messages"], [2]);
  const blocked = table("blocked", "Refused send attempts by reason", ["Reason", "Meaning", "Attempts"], [2]);
  const texterMetrics = table("texter-metrics", "Figures per texter",
    ["Texter", "Assigned", "Messaged", "Replies sent", "Delivered", "Failed", "Replied", "Opted out", "Blocked", "Median display to click"],
    [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const failuresEmpty = tb.el("p", { class: "muted" }, "No failed messages.");
  const blockedEmpty = tb.el("p", { class: "muted" }, "No refused attempts.");
  const textersEmpty = tb.el("p", { class: "muted" }, "No texter activity yet.");
  const survey = tb.el("div", { id: "survey-results", "aria-live": "off" });

  function buildDashboard() {
    dashboard.append(
      tb.el("h2", { id: "dashboard-heading" }, "Dashboard ", updated),
      cards,
      tb.el("h3", {}, "Sent, delivered, replies and opt-outs per hour"),
      chartNode,
      tb.el("div", { class: "dashboard-tables" },
        tb.el("div", {},
          tb.el("h3", {}, "Delivery failures"),
          tb.el("div", { class: "table-scroll" }, failures.node), failuresEmpty),
        tb.el("div", {},
          tb.el("h3", {}, "Blocked attempts"),
          tb.el("div", { class: "table-scroll" }, blocked.node), blockedEmpty)),
      tb.el("h3", {}, "Texters"),
      tb.el("div", { class: "table-scroll" }, texterMetrics.node),
      textersEmpty,
      tb.el("h3", {}, "Survey results"),
      survey);
  }

  function drawMetrics(m) {
    METRICS.forEach(([key, , kind]) => {
      const v = m[key];
      setText(metricNodes[key], kind === "pct" ? tb.fmtPct(v) : kind === "ms" ? fmtDuration(v) : tb.fmtNum(v));
    });
    const failed = Object.entries(m.failed_by_code || {});
    failures.node.hidden = !failed.length;
    failuresEmpty.hidden = failed.length > 0;
    syncRows(failures.tbody, failed.map(([code, n]) => ({
      key: code, cells: [code || "(none)", FAILURE_MEANINGS[code] || "Other carrier error", tb.fmtNum(n)],
    })), failures.row);
    const refused = Object.entries(m.blocked_by_reason || {});
    blocked.node.hidden = !refused.length;
    blockedEmpty.hidden = refused.length > 0;
    syncRows(blocked.tbody, refused.map(([reason, n]) => ({
      key: reason, cells: [reason, BLOCK_MEANINGS[reason] || "", tb.fmtNum(n)],
    })), blocked.row);
    drawSurvey(m.survey_answers || {});
  }

  let surveySignature = null;
  function drawSurvey(answers) {
    const questions = (campaign && Array.isArray(campaign.questions)) ? campaign.questions : [];
    const signature = JSON.stringify([answers, questions]);
    if (signature === surveySignature) return;
    surveySignature = signature;
    tb.clear(survey);
    const ids = questions.map((q) => q.id).concat(Object.keys(answers).filter((k) => !questions.some((q) => q.id === k)));
    if (!ids.length) { survey.appendChild(tb.el("p", { class: "muted" }, "This campaign has no survey questions.")); return; }
    ids.forEach((qid) => {
      const q = questions.find((x) => x.id === qid) || { id: qid, text: qid, answers: [] };
      const counts = answers[qid] || {};
      const names = q.answers.concat(Object.keys(counts).filter((a) => !q.answers.includes(a)));
      const total = names.reduce((n, a) => n + (counts[a] || 0), 0);
      survey.appendChild(tb.el("div", { class: "survey-question", data: { questionId: qid } },
        tb.el("h4", {}, q.text),
        tb.el("div", { class: "table-scroll" }, tb.el("table", { class: "survey-table" },
          tb.el("caption", { class: "visually-hidden" }, `Answers to: ${q.text}`),
          tb.el("thead", {}, tb.el("tr", {}, tb.el("th", { scope: "col" }, "Answer"), tb.el("th", { scope: "col", class: "num" }, "Conversations"), tb.el("th", { scope: "col" }, "Share"))),
          tb.el("tbody", {}, names.map((a) => {
            const n = counts[a] || 0;
            const share = total ? n / total : 0;
            return tb.el("tr", { data: { answer: a } },
              tb.el("th", { scope: "row" }, a),
              tb.el("td", { class: "num" }, tb.fmtNum(n)),
              tb.el("td", {}, tb.el("span", { class: "bar", "aria-hidden": "true" }, barFill(share)),
              ` ${total ? tb.fmtPct(share) : "—"}`));
          }))))));
    });
  }

  // Set through the CSSOM, which a Content-Security-Policy without
  // 'unsafe-inline' styles still allows.
  function barFill(share) {
    const fill = tb.el("span", { class: "bar-fill" });
    fill.style.width = `${(share * 100).toFixed(1)}%`;
    return fill;
  }

  function drawTexterMetrics(data) {
    const rows = (data.texters || []).map((t) => ({
      key: t.texter_id,
      cells: [t.name || t.texter_id.slice(0, 8), tb.fmtNum(t.assigned), tb.fmtNum(t.messaged), tb.fmtNum(t.replies_sent),
        tb.fmtNum(t.delivered), tb.fmtNum(t.failed), tb.fmtNum(t.replied), tb.fmtNum(t.opted_out), tb.fmtNum(t.blocked),
        fmtDuration(t.median_display_to_click_ms)],
    }));
    texterMetrics.node.hidden = !rows.length;
    textersEmpty.hidden = rows.length > 0;
    syncRows(texterMetrics.tbody, rows, texterMetrics.row);
  }

  // Empty hours are left out by the API; put them back as zeros so a line
  // does not bridge a quiet night as if it were busy. The hour before the
  // first activity and the hours since the last (up to now) are zeros too,
  // so even a single busy hour draws as a rise and a fall.
  function fillHours(buckets) {
    if (!buckets.length) return buckets;
    const HOUR = 3600000;
    const first = new Date(buckets[0].start).getTime() - HOUR;
    const nowHour = Math.floor(Date.now() / HOUR) * HOUR;
    const lastBusy = new Date(buckets[buckets.length - 1].start).getTime();
    const last = Math.max(lastBusy, Math.min(nowHour, lastBusy + 48 * HOUR));
    if ((last - first) / HOUR > 24 * 62) return buckets;
    const byStart = new Map(buckets.map((b) => [new Date(b.start).getTime(), b]));
    const out = [];
    for (let t = first; t <= last; t += HOUR) out.push(byStart.get(t) || { start: new Date(t).toISOString() });
    return out;
  }

  let chartSignature = null;
  function drawChart(data) {
    const signature = JSON.stringify(data.buckets || []);
    if (signature === chartSignature) return;
    chartSignature = signature;
    const buckets = fillHours(data.buckets || []);
    const series = (name, key) => ({ name, points: buckets.map((b) => ({ x: new Date(b.start), y: b[key] || 0 })) });
    tb.chart(chartNode, {
      label: "Sent, delivered, replies and opt-outs per hour",
      height: buckets.length ? 220 : 60,
      series: [series("Sent", "sent"), series("Delivered", "delivered"), series("Replies", "replies_received"), series("Opt-outs", "opted_out")],
    });
  }

  // ---- loading and live refresh -----------------------------------------

  let listNames = [];

  // Name, texting hours, batch size and batch rules: editable until the
  // campaign is archived (PATCH /v1/campaigns/{id}).
  const settingsSection = tb.el("details", { id: "settings", class: "card settings" });
  // Closed without saving: the form shows the campaign's settings again.
  settingsSection.addEventListener("toggle", () => {
    const form = settingsSection.querySelector("form");
    if (settingsSection.open || !form) return;
    form.reset();
    const errors = settingsSection.querySelector("#settings-errors");
    if (errors) errors.textContent = "";
  });
  function drawSettings() {
    const editable = tb.can("manage_campaigns") && campaign.status !== "archived";
    settingsSection.hidden = !editable;
    if (!editable || settingsSection.open) return;
    // Rebuilt only when the settings changed: the live refresh every few
    // seconds must not take keyboard focus (or a click) away from it.
    const key = JSON.stringify([campaign.name, campaign.texting_hours, campaign.assignment_batch_size,
      campaign.max_contacts_held, campaign.max_replies_waiting]);
    if (settingsSection.dataset.key === key) return;
    settingsSection.dataset.key = key;
    const name = tb.el("input", { id: "settings-name", type: "text", required: true, maxlength: "200", value: campaign.name });
    const start = tb.el("input", { id: "settings-hours-start", type: "time", required: true, value: campaign.texting_hours.start });
    const end = tb.el("input", { id: "settings-hours-end", type: "time", required: true, value: campaign.texting_hours.end });
    const batch = tb.el("input", { id: "settings-batch-size", type: "number", min: "1", required: true, value: String(campaign.assignment_batch_size) });
    // Empty: no limit / no rule (sent as null).
    const held = tb.el("input", { id: "settings-max-held", type: "number", min: "1",
      value: campaign.max_contacts_held == null ? "" : String(campaign.max_contacts_held) });
    const waiting = tb.el("input", { id: "settings-max-waiting", type: "number", min: "0",
      value: campaign.max_replies_waiting == null ? "" : String(campaign.max_replies_waiting) });
    const optional = (input) => (input.value.trim() === "" ? null : Number(input.value));
    const errors = tb.el("p", { id: "settings-errors", class: "field-error", role: "alert" });
    const save = tb.el("button", { type: "submit", id: "save-settings" }, "Save settings");
    const form = tb.el("form", { id: "settings-form", novalidate: true, on: { submit: async (event) => {
      event.preventDefault();
      errors.textContent = "";
      save.disabled = true;
      try {
        await tb.api("PATCH", base, {
          name: name.value,
          texting_hours: { start: start.value, end: end.value },
          assignment_batch_size: Number(batch.value),
          max_contacts_held: optional(held),
          max_replies_waiting: optional(waiting),
        });
        tb.flash("Settings saved.");
        settingsSection.open = false;
        await refreshCampaign();
      } catch (err) {
        errors.textContent = err.message;
      } finally {
        save.disabled = false;
      }
    } } },
      tb.el("label", { for: "settings-name" }, "Name"), name,
      tb.el("label", { for: "settings-hours-start" }, "Texting hours start (contact's local time)"), start,
      tb.el("label", { for: "settings-hours-end" }, "Texting hours end"), end,
      tb.el("p", { class: "field-hint" }, "States with stricter hours narrow them further."),
      tb.el("label", { for: "settings-batch-size" }, "Contacts per texter request"), batch,
      tb.el("label", { for: "settings-max-held" }, "Most contacts a texter may hold unsent"), held,
      tb.el("p", { class: "field-hint" }, "Empty: no limit. Requests and assignments give at most the difference."),
      tb.el("label", { for: "settings-max-waiting" }, "No new batch with more than this many conversations waiting for a reply"), waiting,
      tb.el("p", { class: "field-hint" }, "Empty: no such rule. 0: every reply must be answered first."),
      errors, save);
    tb.clear(settingsSection).append(tb.el("summary", {}, "Change name, hours, batch size or batch rules"), form);
  }

  async function refreshCampaign() {
    campaign = await tb.api("GET", base);
    drawHeader();
    drawScript(false);
    drawSettings();
  }

  let inFlight = false;
  let lastLiveError = null;
  async function refreshLive() {
    if (inFlight) return;
    inFlight = true;
    try {
      const jobs = [tb.api("GET", base).then((c) => { campaign = c; drawHeader(); drawScript(false); drawSettings(); })];
      if (tb.can("assign_contacts")) jobs.push(tb.api("GET", `${base}/assignments`).then(drawAssignments));
      if (tb.can("read_metrics")) {
        // A campaign created a moment ago may not have reached the metrics
        // read model yet (404): its figures simply come on a later round.
        const notYet = (err) => { if (err.status !== 404) throw err; };
        jobs.push(tb.api("GET", `${base}/metrics`).then(drawMetrics, notYet));
        jobs.push(tb.api("GET", `${base}/metrics/texters`).then(drawTexterMetrics, notYet));
        jobs.push(tb.api("GET", `${base}/metrics/timeseries?bucket=hour`).then(drawChart, notYet));
      }
      await Promise.all(jobs);
      setText(updated, `· live, updated ${new Date().toLocaleTimeString()}`);
      // A refresh that failed before (say, the server restarting) works
      // again: take its error down.
      const flashNode = document.getElementById("flash");
      if (lastLiveError && flashNode && flashNode.textContent === lastLiveError) tb.clearFlash();
      lastLiveError = null;
    } catch (err) {
      if (err.message !== lastLiveError) tb.showError(err);
      lastLiveError = err.message;
    } finally {
      inFlight = false;
    }
  }

  async function start() {
    tb.clear(main);
    if (!id) { tb.showError(new Error("No campaign id in the address.")); return; }
    try {
      campaign = await tb.api("GET", base);
    } catch (err) {
      main.appendChild(tb.el("h1", {}, "Campaign"));
      main.appendChild(tb.el("p", {}, tb.el("a", { href: "/app/campaigns" }, "Back to campaigns")));
      tb.showError(err);
      return;
    }
    // The lists' custom fields are what the script may use.
    if (tb.can("read_lists")) {
      const lists = await Promise.all(campaign.list_ids.map((listId) =>
        tb.api("GET", `/v1/lists/${encodeURIComponent(listId)}`).catch(() => null)));
      const found = lists.filter(Boolean);
      customFields = window.tbScript.fieldsOf(found);
      listNames = found.map((l) => l.name);
    }
    main.append(
      tb.el("p", { class: "breadcrumb" }, tb.el("a", { href: "/app/campaigns" }, "← Campaigns")),
      tb.el("div", { class: "campaign-head" }, title, statusBadge),
      lifecycle,
      facts,
      copyBox,
      settingsSection,
      scriptSection);
    drawHeader();
    drawSettings();
    drawScript(true);
    if (tb.can("assign_contacts")) {
      buildAssignSection();
      main.appendChild(assignSection);
      assignCount.value = String(Math.min(campaign.assignment_batch_size || 100, 10000));
      if (tb.can("manage_members")) {
        try {
          const members = await tb.api("GET", "/v1/members");
          texters = (members.members || []).filter((m) => m.role === "texter");
        } catch (err) {
          texters = [];
        }
      }
    }
    if (tb.can("read_metrics")) {
      buildDashboard();
      main.appendChild(dashboard);
    }
    await refreshLive();
    setInterval(() => { if (document.visibilityState === "visible") refreshLive(); }, LIVE_MS);
    document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") refreshLive(); });
  }

  start();
})();
