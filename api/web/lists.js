// textbank web app: /app/lists — the org's contact lists with their
// provenance and counts, and the CSV upload with a progress bar and the
// rejection summary.
(function () {
  "use strict";

  const tb = window.tb;
  const main = document.getElementById("main");

  const REASONS = {
    invalid_phone: "Invalid phone number",
    missing_phone: "No phone number",
    duplicate: "Duplicate of an earlier row",
    opted_out: "Number opted out of the organization",
    malformed: "Malformed row (a quote never closed)",
  };

  let memberNames = new Map();

  function totalRejected(rejected) {
    return Object.values(rejected || {}).reduce((n, v) => n + (v || 0), 0);
  }

  function rejectionsLink(list) {
    const safe = (list.name || "list").replace(/[^A-Za-z0-9._-]+/g, "-").slice(0, 60);
    return tb.el("a", {
      class: "rejections-link", href: `/v1/lists/${encodeURIComponent(list.list_id)}/rejections`,
      download: `${safe}-rejections.csv`,
    }, "Rejections CSV");
  }

  function uploader(by) {
    if (!by || typeof by !== "object") return "—";
    const memberId = by.member_id;
    if (memberId && memberNames.has(memberId)) return memberNames.get(memberId);
    if (memberId && memberId === tb.page.memberId) return tb.page.memberName || "you";
    if (by.kind === "api_key") return memberId ? `API key of member ${memberId.slice(0, 8)}` : `API key ${String(by.key_id || "").slice(0, 8)}`;
    if (by.kind === "cli") return "command line";
    if (by.kind === "system") return "textbank";
    return memberId ? `member ${memberId.slice(0, 8)}` : by.kind || "—";
  }

  // ---- the lists table -------------------------------------------------

  const tbody = tb.el("tbody");
  const listsTable = tb.el("table", { id: "lists" },
    tb.el("caption", { class: "visually-hidden" }, "Contact lists, newest first"),
    tb.el("thead", {}, tb.el("tr", {},
      ["Name", "Uploaded by", "Uploaded", "Rows", "Imported", "Rejected", "Source", "Consent basis", "Download"]
        .map((h, i) => tb.el("th", { scope: "col", class: i >= 3 && i <= 5 ? "num" : null }, h)))),
    tbody);
  const listsStatus = tb.el("p", { class: "muted", "aria-live": "polite" }, "Loading lists…");

  async function loadLists() {
    const data = await tb.api("GET", "/v1/lists");
    const lists = data.lists || [];
    tb.clear(tbody);
    lists.forEach((l) => {
      const rejected = totalRejected(l.rejected);
      const breakdown = Object.entries(l.rejected || {}).filter(([, n]) => n > 0)
        .map(([reason, n]) => `${REASONS[reason] || reason}: ${tb.fmtNum(n)}`).join("; ");
      tbody.appendChild(tb.el("tr", { data: { listId: l.list_id } },
        tb.el("th", { scope: "row" }, l.name,
          l.status !== "complete" ? [" ", tb.el("span", { class: "badge warn" }, l.status)] : null),
        tb.el("td", {}, uploader(l.uploaded_by)),
        tb.el("td", {}, tb.el("time", { datetime: l.uploaded_at }, tb.fmtTime(l.uploaded_at))),
        tb.el("td", { class: "num" }, tb.fmtNum(l.rows)),
        tb.el("td", { class: "num", data: { count: "imported" } }, tb.fmtNum(l.imported)),
        tb.el("td", { class: "num", data: { count: "rejected" }, title: breakdown || null },
          l.rejected ? tb.fmtNum(rejected) : "—",
          breakdown ? tb.el("span", { class: "visually-hidden" }, ` (${breakdown})`) : null),
        tb.el("td", {}, l.source),
        tb.el("td", {}, l.consent_basis),
        tb.el("td", {}, l.status === "complete" ? rejectionsLink(l) : "—")));
    });
    listsStatus.textContent = lists.length ? "" : "No lists yet.";
  }

  // ---- upload ------------------------------------------------------------

  const fileInput = tb.el("input", {
    id: "list-file", name: "file", type: "file", accept: ".csv,text/csv", required: true,
    "aria-describedby": "list-file-hint",
    on: {
      change: () => {
        const file = fileInput.files[0];
        const name = tb.$("#list-name");
        if (file && name && !name.value.trim()) name.value = file.name.replace(/\.csv$/i, "");
      },
    },
  });
  const progress = tb.el("progress", { id: "upload-progress", max: 100, value: 0, hidden: true, "aria-label": "Upload progress" });
  const progressText = tb.el("span", { id: "upload-progress-text", class: "muted", "aria-live": "polite" });
  const result = tb.el("div", { id: "upload-result", "aria-live": "polite" });
  const uploadButton = tb.el("button", { type: "submit", id: "upload" }, "Upload");

  function showResult(summary, name) {
    tb.clear(result);
    const rejected = totalRejected(summary.rejected);
    const reasons = Object.entries(summary.rejected || {}).filter(([, n]) => n > 0);
    result.className = "upload-result card";
    result.append(
      tb.el("p", { class: "upload-summary" },
        tb.el("strong", {}, `“${name}” imported: `),
        tb.el("span", { id: "upload-imported" }, tb.fmtNum(summary.imported)),
        ` of ${tb.fmtNum(summary.rows)} row${summary.rows === 1 ? "" : "s"}; `,
        tb.el("span", { id: "upload-rejected" }, tb.fmtNum(rejected)), " rejected."),
      reasons.length
        ? tb.el("table", { id: "rejection-summary" },
          tb.el("caption", {}, "Rejected rows by reason"),
          tb.el("thead", {}, tb.el("tr", {}, tb.el("th", { scope: "col" }, "Reason"), tb.el("th", { scope: "col", class: "num" }, "Rows"))),
          tb.el("tbody", {}, reasons.map(([reason, n]) => tb.el("tr", { data: { reason } },
            tb.el("th", { scope: "row" }, REASONS[reason] || reason), tb.el("td", { class: "num" }, tb.fmtNum(n))))))
        : "",
      tb.el("p", {}, rejectionsLink({ list_id: summary.list_id, name }),
        rejected ? "" : tb.el("span", { class: "muted" }, " (no rows were rejected)")));
  }

  function showUploadError(message) {
    tb.clear(result);
    result.className = "upload-result form-errors";
    result.appendChild(tb.el("p", { role: "alert" }, message));
  }

  function upload(event) {
    event.preventDefault();
    tb.clearFlash();
    const file = fileInput.files[0];
    const name = tb.$("#list-name").value.trim();
    const source = tb.$("#list-source").value.trim();
    const consent = tb.$("#list-consent").value.trim();
    if (!file) { showUploadError("Choose a CSV file to upload."); fileInput.focus(); return; }
    if (!name || !source || !consent) {
      showUploadError("Give the list a name, its source and the consent basis for texting these contacts.");
      (!name ? tb.$("#list-name") : !source ? tb.$("#list-source") : tb.$("#list-consent")).focus();
      return;
    }
    const query = new URLSearchParams({ name, source, consent_basis: consent });
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/v1/lists?${query}`);
    xhr.setRequestHeader("Content-Type", "text/csv");
    xhr.setRequestHeader("Accept", "application/json");
    const csrf = document.querySelector("meta[name=csrf-token]");
    if (csrf) xhr.setRequestHeader("X-CSRF-Token", csrf.content);
    uploadButton.disabled = true;
    tb.clear(result);
    result.className = "";
    progress.hidden = false;
    progress.value = 0;
    progressText.textContent = "Uploading…";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) {
        const pct = Math.round((e.loaded / e.total) * 100);
        progress.value = pct;
        progressText.textContent = `Uploading… ${pct}%`;
      }
    });
    xhr.upload.addEventListener("load", () => {
      // Sent; the server now checks and imports the file.
      progress.removeAttribute("value");
      progressText.textContent = "Importing…";
    });
    const finish = () => {
      uploadButton.disabled = false;
      progress.hidden = true;
      progressText.textContent = "";
    };
    xhr.addEventListener("load", () => {
      finish();
      let json = null;
      try { json = JSON.parse(xhr.responseText); } catch (err) { json = null; }
      if (xhr.status === 401) {
        window.location.assign("/login?next=" + encodeURIComponent(location.pathname));
        return;
      }
      if (xhr.status >= 200 && xhr.status < 300 && json) {
        showResult(json, name);
        tb.$("#upload-form").reset();
        loadLists().catch(tb.showError);
        return;
      }
      const message = (json && json.error && json.error.message) || `Upload failed (${xhr.status} ${xhr.statusText}).`;
      showUploadError(message);
    });
    xhr.addEventListener("error", () => {
      finish();
      showUploadError("The upload did not reach the server. Check your connection and try again.");
    });
    xhr.addEventListener("abort", () => { finish(); showUploadError("The upload was cancelled."); });
    xhr.send(file);
  }

  function uploadForm() {
    const field = (idAttr, label, hint, attrs) => [
      tb.el("label", { for: idAttr }, label),
      tb.el("input", Object.assign({ id: idAttr, type: "text", required: true, maxlength: 500, "aria-describedby": hint ? `${idAttr}-hint` : null }, attrs || {})),
      hint ? tb.el("p", { id: `${idAttr}-hint`, class: "field-hint" }, hint) : null,
    ];
    return tb.el("form", { id: "upload-form", class: "card", novalidate: true, on: { submit: upload } },
      tb.el("h2", {}, "Upload a list"),
      tb.el("label", { for: "list-file" }, "CSV file"),
      fileInput,
      tb.el("p", { id: "list-file-hint", class: "field-hint" },
        "A header row and a phone column (cell, mobile, phone, …). first_name, last_name and zip are recognized; every other column becomes a field scripts can use."),
      field("list-name", "List name", null, { maxlength: 200 }),
      field("list-source", "Source", "Where the numbers came from, e.g. \"state voter file, 2024\"."),
      field("list-consent", "Consent basis", "Why these contacts may be texted, e.g. \"opted in on the signup form\"."),
      tb.el("div", { class: "form-actions" }, uploadButton, " ", progress, " ", progressText),
      result);
  }

  async function start() {
    tb.clear(main);
    main.appendChild(tb.el("h1", {}, "Contact lists"));
    if (tb.can("upload_lists")) main.appendChild(uploadForm());
    main.appendChild(tb.el("h2", {}, "Lists"));
    main.appendChild(tb.el("div", { class: "table-scroll" }, listsTable));
    main.appendChild(listsStatus);
    if (tb.can("manage_members")) {
      try {
        const members = await tb.api("GET", "/v1/members");
        memberNames = new Map((members.members || []).map((m) => [m.member_id, m.name]));
      } catch (err) {
        memberNames = new Map();
      }
    }
    try {
      await loadLists();
    } catch (err) {
      listsStatus.textContent = "";
      tb.showError(err);
    }
  }

  start();
})();
