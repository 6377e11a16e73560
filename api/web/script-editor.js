// textbank web app: the campaign script editor (window.tbScript), shared by
// the new-campaign form (campaigns.js) and the campaign page (campaign.js).
// It checks a script the way the server does (crates/domain/src/template.rs):
// `{field}` placeholders must be built-in or a custom field of the
// campaign's lists, `{{` and `}}` are literal braces, and a message without
// opt-out language gets a warning. The server still decides: this only shows
// the author what it will say before they save.
(function () {
  "use strict";

  const tb = window.tb;

  const BUILTIN_FIELDS = ["first_name", "last_name", "texter_name"];
  // The sample contact the preview renders for. The server's own sample uses
  // the same placeholders; a custom field shows its own name, so the preview
  // shows where each value goes.
  const SAMPLE = { first_name: "Alex", last_name: "Johnson", texter_name: "Sam" };
  const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
  const MAX_MESSAGE_LEN = 1600;
  const EMPTY = "The message is empty.";

  // Parses a template into parts and the problems the server would refuse it
  // for. Unlike the server it keeps going after a problem, so every one is
  // listed at once. Offsets count characters from 0, like the server's.
  function parse(text, customFields) {
    const known = BUILTIN_FIELDS.concat(customFields || []);
    const chars = Array.from(text || "");
    const parts = [];
    const problems = [];
    let literal = "";
    const pushText = () => { if (literal) { parts.push({ text: literal }); literal = ""; } };
    if (!(text || "").trim()) problems.push(EMPTY);
    if (chars.length > MAX_MESSAGE_LEN) {
      problems.push(`The message has ${chars.length} characters; at most ${MAX_MESSAGE_LEN} are allowed.`);
    }
    let i = 0;
    while (i < chars.length) {
      const c = chars[i];
      if (c === "{" && chars[i + 1] === "{") { literal += "{"; i += 2; continue; }
      if (c === "}" && chars[i + 1] === "}") { literal += "}"; i += 2; continue; }
      if (c === "}") {
        problems.push(`Unbalanced braces: unmatched "}" at character ${i + 1} (write "}}" for a literal "}").`);
        literal += c;
        i += 1;
        continue;
      }
      if (c === "{") {
        let j = i + 1;
        let name = "";
        while (j < chars.length && chars[j] !== "}" && chars[j] !== "{") { name += chars[j]; j += 1; }
        if (j >= chars.length || chars[j] === "{") {
          problems.push(`Unbalanced braces: "{" at character ${i + 1} is never closed (close the field with "}", or write "{{" for a literal "{").`);
          literal += c;
          i += 1;
          continue;
        }
        pushText();
        if (!FIELD_NAME.test(name)) {
          problems.push(`{${name}} is not a valid field name: use letters, digits and underscores, e.g. {first_name}.`);
          parts.push({ field: name, unknown: true });
        } else if (!known.includes(name)) {
          const near = known.find((k) => k.toLowerCase() === name.toLowerCase());
          problems.push(`Unknown field {${name}}` + (near ? ` — did you mean {${near}}? Field names are case-sensitive.` : "."));
          parts.push({ field: name, unknown: true });
        } else {
          parts.push({ field: name });
        }
        i = j + 1;
        continue;
      }
      literal += c;
      i += 1;
    }
    pushText();
    return { parts, problems };
  }

  // The same heuristic as the server's `mentions_opt_out`: "STOP" or
  // "STOPALL" in capitals, or in any case "opt out", "optout", "unsubscribe",
  // "STOP2END", "STOP2QUIT".
  function mentionsOptOut(text) {
    const words = (text || "").split(/[^\p{L}\p{N}]+/u).filter(Boolean);
    const anyCase = ["optout", "unsubscribe", "stop2end", "stop2quit"];
    if (words.some((w) => w === "STOP" || w === "STOPALL" || anyCase.includes(w.toLowerCase()))) return true;
    return words.some((w, k) => k + 1 < words.length && w.toLowerCase() === "opt" && words[k + 1].toLowerCase() === "out");
  }

  function sampleValue(field) {
    return Object.prototype.hasOwnProperty.call(SAMPLE, field) ? SAMPLE[field] : field;
  }

  function render(parts) {
    return parts.map((p) => (p.text !== undefined ? p.text : p.unknown ? `{${p.field}}` : sampleValue(p.field))).join("");
  }

  // Everything the editor shows for one script: the rendered sample, its
  // encoding and segments, the problems (the server would refuse) and the
  // warnings (it would accept, but someone should look).
  function analyze(text, customFields) {
    const parsed = parse(text, customFields);
    const rendered = render(parsed.parts);
    const seg = tb.segments(rendered);
    const warnings = [];
    if ((text || "").trim() && !mentionsOptOut(text)) {
      warnings.push('No opt-out language: add e.g. "Reply STOP to opt out".');
    }
    if (seg.encoding === "UCS-2") {
      warnings.push(`Needs UCS-2 (a character outside GSM-7, such as an emoji or a curly quote): ${seg.segments} segment(s) where GSM-7 would need fewer.`);
    }
    return { parts: parsed.parts, rendered, segments: seg, problems: parsed.problems, warnings };
  }

  // The custom fields of some lists (each a /v1/lists item), deduplicated in
  // order.
  function fieldsOf(lists) {
    const fields = [];
    (lists || []).forEach((list) => {
      (Array.isArray(list.custom_fields) ? list.custom_fields : []).forEach((f) => {
        if (!fields.includes(f)) fields.push(f);
      });
    });
    return fields;
  }

  let rowSeq = 0;

  // Builds the editor: the initial message with its live preview, and the
  // canned responses (add/remove rows of title + body). `opts`:
  // `initialMessage`, `cannedResponses` ([{title, body}]), `fields` (custom
  // fields). Returns {node, value(), setFields(fields), focus()}.
  function editor(opts) {
    const options = opts || {};
    let fields = (options.fields || []).slice();

    const textarea = tb.el("textarea", {
      id: "initial-message", name: "initial_message", rows: 5, required: true,
      "aria-describedby": "script-help script-segments script-warnings",
      on: { input: () => { touched = true; schedule(); } },
    });
    textarea.value = options.initialMessage || "";
    // An empty message is an error only once someone has typed in it.
    let touched = Boolean(textarea.value);

    const fieldButtons = tb.el("span", { class: "field-buttons" });
    const preview = tb.el("div", { id: "script-preview", class: "script-preview", "aria-live": "polite" });
    const segmentsNode = tb.el("p", { id: "script-segments", class: "script-segments", "aria-live": "polite" });
    const warningsNode = tb.el("ul", { id: "script-warnings", class: "script-warnings", "aria-live": "polite" });

    const cannedRows = tb.el("div", { class: "canned-rows" });
    const addCanned = tb.el("button", {
      type: "button", id: "add-canned", class: "secondary",
      on: { click: () => { const row = cannedRow({ title: "", body: "" }); cannedRows.appendChild(row); tb.$("input", row).focus(); schedule(); } },
    }, "Add canned response");

    function cannedRow(response) {
      rowSeq += 1;
      const n = rowSeq;
      const title = tb.el("input", { id: `canned-title-${n}`, class: "canned-title", type: "text", maxlength: 100, on: { input: schedule } });
      title.value = response.title || "";
      const bodyArea = tb.el("textarea", { id: `canned-body-${n}`, class: "canned-body", rows: 2, on: { input: schedule } });
      bodyArea.value = response.body || "";
      const row = tb.el("div", { class: "canned-row" },
        tb.el("div", {},
          tb.el("label", { for: `canned-title-${n}` }, "Title"), title),
        tb.el("div", {},
          tb.el("label", { for: `canned-body-${n}` }, "Message"), bodyArea),
        tb.el("button", {
          type: "button", class: "secondary remove-canned",
          "aria-label": "Remove this canned response",
          on: {
            click: () => {
              const next = row.nextElementSibling || row.previousElementSibling;
              row.remove();
              (next ? tb.$("input", next) : addCanned).focus();
              schedule();
            },
          },
        }, "Remove"));
      return row;
    }
    (options.cannedResponses || []).forEach((r) => cannedRows.appendChild(cannedRow(r)));

    // Clicking a field name inserts it at the cursor.
    function insertField(name) {
      const start = textarea.selectionStart, end = textarea.selectionEnd;
      const token = `{${name}}`;
      textarea.setRangeText(token, start, end, "end");
      textarea.focus();
      update();
    }
    function drawFieldButtons() {
      tb.clear(fieldButtons);
      BUILTIN_FIELDS.concat(fields).forEach((name) => {
        fieldButtons.appendChild(tb.el("button", {
          type: "button", class: "field-button secondary",
          "aria-label": `Insert {${name}}`, on: { click: () => insertField(name) },
        }, `{${name}}`));
      });
    }

    let pending = false;
    function schedule() {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => { pending = false; update(); });
    }

    function setText(node, text) { if (node.textContent !== text) node.textContent = text; }

    let lastSignature = null;
    function update() {
      const result = analyze(textarea.value, fields);
      // The preview: sample values marked, unknown fields shown as written.
      const previewSignature = JSON.stringify(result.parts);
      if (previewSignature !== lastSignature) {
        lastSignature = previewSignature;
        tb.clear(preview);
        if (!result.parts.length) {
          preview.appendChild(tb.el("span", { class: "muted" }, "The message preview appears here."));
        }
        result.parts.forEach((p) => {
          if (p.text !== undefined) preview.appendChild(document.createTextNode(p.text));
          else if (p.unknown) preview.appendChild(tb.el("span", { class: "field-unknown", title: "unknown field" }, `{${p.field}}`));
          else preview.appendChild(tb.el("span", { class: "field-value", title: `{${p.field}}` }, sampleValue(p.field)));
        });
      }
      const seg = result.segments;
      setText(segmentsNode, `${seg.encoding} · ${seg.segments} segment${seg.segments === 1 ? "" : "s"} · ${seg.characters} character${seg.characters === 1 ? "" : "s"}`);
      segmentsNode.classList.toggle("warn", seg.encoding === "UCS-2" || seg.segments > 1);

      const problems = touched ? result.problems : result.problems.filter((m) => m !== EMPTY);
      const items = problems.map((m) => ({ kind: "error", text: m }))
        .concat(result.warnings.map((m) => ({ kind: "warning", text: m })));
      tb.$$(".canned-row", cannedRows).forEach((row, index) => {
        const title = tb.$(".canned-title", row).value.trim() || `#${index + 1}`;
        const body = tb.$(".canned-body", row).value;
        // A row just added and still blank is not an error yet (nor saved).
        if (!tb.$(".canned-title", row).value.trim() && !body.trim()) return;
        const problems = parse(body, fields).problems;
        problems.forEach((m) => items.push({ kind: "error", text: `Canned response "${title}": ${m}` }));
      });
      textarea.setAttribute("aria-invalid", problems.length ? "true" : "false");
      const signature = JSON.stringify(items);
      if (warningsNode.dataset.signature !== signature) {
        warningsNode.dataset.signature = signature;
        tb.clear(warningsNode);
        items.forEach((item) => warningsNode.appendChild(
          tb.el("li", { class: item.kind }, tb.el("span", { class: "visually-hidden" }, item.kind === "error" ? "Error: " : "Warning: "), item.text)));
      }
    }

    const node = tb.el("div", { class: "script-editor" },
      tb.el("label", { for: "initial-message" }, "Script (the first message)"),
      textarea,
      tb.el("p", { id: "script-help", class: "field-hint" },
        "Fields: ", fieldButtons,
        tb.el("br"), 'Write "{{" or "}}" for a literal brace.'),
      tb.el("div", { class: "script-preview-box" },
        tb.el("p", { class: "preview-caption" },
          `Preview for a sample contact (${SAMPLE.first_name} ${SAMPLE.last_name}, texter ${SAMPLE.texter_name}; a custom field shows its name)`),
        preview,
        segmentsNode),
      warningsNode,
      tb.el("fieldset", { class: "canned-responses", id: "canned-responses" },
        tb.el("legend", {}, "Canned responses"),
        tb.el("p", { class: "field-hint" }, "Ready replies a texter can pick in a conversation; they may use the same fields."),
        cannedRows,
        addCanned));

    drawFieldButtons();
    update();

    return {
      node,
      value() {
        return {
          initial_message: textarea.value,
          canned_responses: tb.$$(".canned-row", cannedRows)
            .map((row) => ({ title: tb.$(".canned-title", row).value.trim(), body: tb.$(".canned-body", row).value }))
            .filter((r) => r.title || r.body.trim()),
        };
      },
      setFields(next) {
        fields = (next || []).slice();
        drawFieldButtons();
        update();
      },
      focus() { textarea.focus(); },
    };
  }

  window.tbScript = { BUILTIN_FIELDS, SAMPLE, parse, analyze, render, mentionsOptOut, fieldsOf, editor };
})();
