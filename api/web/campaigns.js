// textbank web app: /app/campaigns — the campaign list with headline
// figures, and the new-campaign form with the script editor.
(function () {
  "use strict";

  const tb = window.tb;
  const main = document.getElementById("main");

  const STATUS_CLASS = { draft: "", active: "ok", paused: "warn", archived: "bad" };
  function statusBadge(status) {
    return tb.el("span", { class: `badge status-${status} ${STATUS_CLASS[status] || ""}` }, status);
  }

  // ---- the campaign list ----------------------------------------------

  const listBody = tb.el("tbody");
  const listStatus = tb.el("p", { class: "muted", "aria-live": "polite" }, "Loading campaigns…");
  const listTable = tb.el("table", { id: "campaign-list" },
    tb.el("caption", { class: "visually-hidden" }, "Campaigns, newest first"),
    tb.el("thead", {}, tb.el("tr", {},
      ["Name", "Status", "Contacts", "Messaged", "Delivery rate", "Reply rate", "Opt-out rate"]
        .map((h, i) => tb.el("th", { scope: "col", class: i >= 2 ? "num" : null }, h)))),
    listBody);

  async function loadCampaigns() {
    const [campaigns, overview] = await Promise.all([
      tb.api("GET", "/v1/campaigns"),
      tb.can("read_metrics") ? tb.api("GET", "/v1/metrics/overview").catch(() => null) : Promise.resolve(null),
    ]);
    const figures = new Map(((overview && overview.campaigns) || []).map((c) => [c.campaign_id, c]));
    tb.clear(listBody);
    (campaigns.campaigns || []).forEach((c) => {
      const f = figures.get(c.campaign_id) || {};
      listBody.appendChild(tb.el("tr", { data: { campaignId: c.campaign_id } },
        tb.el("th", { scope: "row" }, tb.el("a", { href: `/app/campaigns/${c.campaign_id}` }, c.name)),
        tb.el("td", {}, statusBadge(c.status)),
        tb.el("td", { class: "num" }, tb.fmtNum(c.contacts)),
        tb.el("td", { class: "num" }, tb.fmtNum(f.messaged)),
        tb.el("td", { class: "num" }, tb.fmtPct(f.delivery_rate)),
        tb.el("td", { class: "num" }, tb.fmtPct(f.reply_rate)),
        tb.el("td", { class: "num" }, tb.fmtPct(f.opt_out_rate))));
    });
    listStatus.textContent = (campaigns.campaigns || []).length ? "" : "No campaigns yet.";
  }

  // ---- the new-campaign form ------------------------------------------

  let lists = [];
  let editor = null;
  const errorsNode = tb.el("div", { id: "new-campaign-errors", class: "form-errors", role: "alert" });

  function selectedLists() {
    const ids = tb.$$('input[name="list_id"]:checked').map((input) => input.value);
    return lists.filter((l) => ids.includes(l.list_id));
  }

  function listPicker() {
    const usable = lists.filter((l) => l.status === "complete");
    const box = tb.el("fieldset", { id: "campaign-lists", class: "list-picker" },
      tb.el("legend", {}, "Contact lists"));
    if (!lists.length) {
      box.appendChild(tb.el("p", { class: "muted" }, "No lists yet. ",
        tb.el("a", { href: "/app/lists" }, "Upload a list"), " first."));
      return box;
    }
    lists.forEach((l) => {
      const id = `list-${l.list_id}`;
      const ready = l.status === "complete";
      const fields = Array.isArray(l.custom_fields) && l.custom_fields.length
        ? ` · fields: ${l.custom_fields.join(", ")}` : "";
      box.appendChild(tb.el("div", { class: "check" },
        tb.el("input", {
          type: "checkbox", id, name: "list_id", value: l.list_id, disabled: !ready,
          checked: usable.length === 1 && ready ? true : null,
          on: { change: () => editor && editor.setFields(currentFields()) },
        }),
        tb.el("label", { for: id },
          l.name, " ",
          tb.el("span", { class: "muted" }, ready ? `(${tb.fmtNum(l.imported)} contact${l.imported === 1 ? "" : "s"}${fields})` : `(${l.status})`))));
    });
    return box;
  }
  function currentFields() { return window.tbScript.fieldsOf(selectedLists()); }

  let questionSeq = 0;
  function questionRow(question) {
    questionSeq += 1;
    const n = questionSeq;
    const text = tb.el("input", { id: `question-text-${n}`, class: "question-text", type: "text", maxlength: 500 });
    text.value = question.text || "";
    const answers = tb.el("textarea", { id: `question-answers-${n}`, class: "question-answers", rows: 3, "aria-describedby": `question-answers-hint-${n}` });
    answers.value = (question.answers || []).join("\n");
    const row = tb.el("div", { class: "question-row" },
      tb.el("div", {}, tb.el("label", { for: `question-text-${n}` }, "Question"), text),
      tb.el("div", {},
        tb.el("label", { for: `question-answers-${n}` }, "Answers"),
        answers,
        tb.el("span", { id: `question-answers-hint-${n}`, class: "field-hint" }, "One answer per line.")),
      tb.el("button", {
        type: "button", class: "secondary remove-question", "aria-label": "Remove this question",
        on: { click: () => { row.remove(); tb.$("#add-question").focus(); } },
      }, "Remove"));
    return row;
  }

  // A question id the API accepts (letters, digits, '_' or '-'), from its
  // text, unique within the campaign.
  function questionId(text, taken, index) {
    let base = text.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 40);
    if (!base) base = `q${index + 1}`;
    let id = base, k = 2;
    while (taken.includes(id)) { id = `${base}_${k}`; k += 1; }
    taken.push(id);
    return id;
  }

  function body() {
    const script = editor.value();
    const taken = [];
    const questions = tb.$$(".question-row").map((row, i) => {
      const text = tb.$(".question-text", row).value.trim();
      const answers = tb.$(".question-answers", row).value.split("\n").map((a) => a.trim()).filter(Boolean);
      return { text, answers };
    }).filter((q) => q.text || q.answers.length)
      .map((q, i) => ({ id: questionId(q.text, taken, i), text: q.text, answers: q.answers }));
    const payload = {
      name: tb.$("#campaign-name").value,
      initial_message: script.initial_message,
      canned_responses: script.canned_responses,
      questions,
      list_ids: selectedLists().map((l) => l.list_id),
    };
    const start = tb.$("#hours-start").value, end = tb.$("#hours-end").value;
    if (start || end) payload.texting_hours = { start: start.slice(0, 5), end: end.slice(0, 5) };
    const batch = tb.$("#batch-size").value.trim();
    if (batch) payload.assignment_batch_size = Number(batch);
    return payload;
  }

  async function submit(event) {
    event.preventDefault();
    tb.clearFlash();
    tb.clear(errorsNode);
    const button = tb.$("#create-campaign");
    button.disabled = true;
    try {
      const created = await tb.api("POST", "/v1/campaigns", body());
      window.location.assign(`/app/campaigns/${created.campaign_id}`);
    } catch (err) {
      button.disabled = false;
      if (err.status === 422 || err.status === 400 || err.status === 404 || err.status === 409) {
        errorsNode.appendChild(tb.el("p", {}, err.message));
      } else {
        tb.showError(err);
      }
    }
  }

  function form() {
    editor = window.tbScript.editor({ initialMessage: "", cannedResponses: [], fields: [] });
    const questions = tb.el("div", { class: "question-rows" });
    return tb.el("form", { id: "new-campaign", class: "card", novalidate: true, on: { submit } },
      tb.el("h2", { id: "new-campaign-heading" }, "New campaign"),
      tb.el("label", { for: "campaign-name" }, "Name"),
      tb.el("input", { id: "campaign-name", name: "name", type: "text", required: true, maxlength: 200, autocomplete: "off" }),
      listPicker(),
      editor.node,
      tb.el("fieldset", { id: "survey-questions", class: "survey-questions" },
        tb.el("legend", {}, "Survey questions"),
        tb.el("p", { class: "field-hint" }, "Texters record each contact's answer in the conversation."),
        questions,
        tb.el("button", {
          type: "button", id: "add-question", class: "secondary",
          on: { click: () => { const row = questionRow({}); questions.appendChild(row); tb.$("input", row).focus(); } },
        }, "Add question")),
      tb.el("fieldset", { class: "texting-hours" },
        tb.el("legend", {}, "Texting hours (each contact's local time)"),
        tb.el("div", { class: "inline-fields" },
          tb.el("div", {}, tb.el("label", { for: "hours-start" }, "From"),
            tb.el("input", { id: "hours-start", type: "time", value: "09:00" })),
          tb.el("div", {}, tb.el("label", { for: "hours-end" }, "Until"),
            tb.el("input", { id: "hours-end", type: "time", value: "20:00" })))),
      tb.el("label", { for: "batch-size" }, "Assignment batch size"),
      tb.el("input", { id: "batch-size", type: "number", min: 1, max: 1000, step: 1, value: 100, inputmode: "numeric", "aria-describedby": "batch-size-hint" }),
      tb.el("p", { id: "batch-size-hint", class: "field-hint" }, "Contacts a texter gets each time they ask for more (1–1,000)."),
      errorsNode,
      tb.el("div", { class: "form-actions" },
        tb.el("button", { type: "submit", id: "create-campaign" }, "Create campaign")));
  }

  async function start() {
    tb.clear(main);
    main.appendChild(tb.el("h1", {}, "Campaigns"));
    main.appendChild(tb.el("div", { class: "table-scroll" }, listTable));
    main.appendChild(listStatus);
    const formSlot = tb.el("div");
    main.appendChild(formSlot);
    try {
      await loadCampaigns();
    } catch (err) {
      listStatus.textContent = "";
      tb.showError(err);
    }
    if (tb.can("manage_campaigns")) {
      try {
        lists = tb.can("read_lists") ? ((await tb.api("GET", "/v1/lists")).lists || []) : [];
      } catch (err) {
        tb.showError(err);
      }
      formSlot.appendChild(form());
      editor.setFields(currentFields());
    }
  }

  start();
})();
