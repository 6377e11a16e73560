// The admin page (/app/admin): members and sign-in invites, API keys, the
// carrier, the opt-out list and outbound webhooks. Each section shows only
// when the caller's role has its permission (manage_members,
// configure_carrier, manage_opt_outs, manage_webhooks); managers may add
// texters and manage texters' keys only.
(function () {
  "use strict";

  const tb = window.tb;
  const el = tb.el;

  const ROLES = ["owner", "admin", "manager", "texter", "compliance"];
  const SECRET_NOTE = "The stored secret is never shown. Leave it empty to keep the stored one (same carrier); enter a new one to replace it.";

  const state = {
    members: [],
    keys: [],
    carrier: null, // GET /v1/carrier, or null when none is configured
    webhooks: [],
    deliveriesOf: null, // the webhook whose deliveries are shown
  };

  // Mirrors Role::may_grant in crates/domain/src/role.rs.
  function mayGrant(role) {
    switch (tb.page.role) {
      case "owner": return true;
      case "admin": return role !== "owner";
      case "manager": return role === "texter";
      default: return false;
    }
  }
  const grantable = () => ROLES.filter(mayGrant);

  function str(value) {
    return value === null || value === undefined || value === "" ? "—" : String(value);
  }
  function field(id, text, input, hint) {
    return el("div", { class: "field" },
      el("label", { for: id }, text),
      input,
      hint ? el("p", { class: "hint", id: id + "-hint" }, hint) : null);
  }
  function section(id, title, ...children) {
    return el("section", { id, class: "card", "aria-labelledby": id + "-title" },
      el("h2", { id: id + "-title" }, title), ...children);
  }
  function memberName(id) {
    const m = state.members.find((x) => x.member_id === id);
    return m ? m.name : id ? String(id).slice(0, 8) + "…" : "—";
  }

  // Runs an async action with its button disabled; an error goes to #flash
  // and, when given, to the form's own error line next to the button.
  async function run(button, action, errorNode) {
    tb.clearFlash();
    if (errorNode) errorNode.textContent = "";
    if (button) button.disabled = true;
    try {
      await action();
    } catch (err) {
      tb.showError(err);
      if (errorNode) errorNode.textContent = (err && err.message) || String(err);
    } finally {
      if (button) button.disabled = false;
    }
  }

  async function copy(text, button) {
    let done = false;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        done = true;
      }
    } catch (err) {
      done = false;
    }
    if (!done) {
      const area = el("textarea", { class: "offscreen", "aria-hidden": "true", readonly: true });
      area.value = text;
      document.body.appendChild(area);
      area.select();
      try { done = document.execCommand("copy"); } catch (err) { done = false; }
      area.remove();
    }
    const before = button.textContent;
    button.textContent = done ? "Copied" : "Select and copy it by hand";
    setTimeout(() => { button.textContent = before; }, 2000);
  }

  // A secret shown once: the value, a copy button and the note.
  function oneTimeValue(holder, opts) {
    tb.clear(holder);
    holder.hidden = false;
    const value = el("input", {
      id: opts.valueId, type: "text", class: "mono secret-value", readonly: true,
      value: opts.value, "aria-label": opts.label, spellcheck: "false",
    });
    holder.appendChild(el("p", { class: "once" }, el("strong", {}, opts.title)));
    holder.appendChild(el("div", { class: "copy-row" },
      value,
      el("button", { id: opts.copyId, type: "button", class: "secondary", on: { click: (e) => copy(opts.value, e.currentTarget) } }, "Copy")));
    holder.appendChild(el("p", { class: "hint" }, opts.note));
    holder.appendChild(el("button", { type: "button", class: "link", on: { click: () => { tb.clear(holder); holder.hidden = true; } } }, "Done, hide it"));
    value.focus();
    value.select();
  }

  // ---------- Members ----------

  function buildMembers() {
    const roles = grantable();
    return section("members-section", "Members",
      el("div", { class: "table-wrap" },
        el("table", { id: "members", class: "data" },
          el("thead", {}, el("tr", {},
            ["Name", "Email", "Role", "Added", "Sign-in"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}))),
      el("div", { id: "invite-link", class: "one-time", hidden: true, "aria-live": "polite" }),
      el("h3", {}, "Add a member"),
      tb.page.role === "manager" ? el("p", { class: "hint" }, "Managers add texters; an owner or admin adds other roles.") : null,
      el("form", { id: "add-member", class: "inline-form", on: { submit: addMember } },
        field("member-name", "Name", el("input", { id: "member-name", type: "text", required: true, autocomplete: "off", maxlength: "200" })),
        field("member-email", "Email", el("input", { id: "member-email", type: "email", required: true, autocomplete: "off" })),
        field("member-role", "Role", el("select", { id: "member-role", required: true },
          roles.map((r) => el("option", { value: r, selected: r === "texter" }, r)))),
        el("div", { class: "actions" }, el("button", { type: "submit", class: "primary" }, "Add member")),
        el("p", { id: "add-member-error", class: "field-error", "aria-live": "polite" })));
  }

  async function loadMembers() {
    const answer = await tb.api("GET", "/v1/members");
    state.members = answer.members || [];
    const body = tb.$("#members tbody");
    tb.clear(body);
    for (const m of state.members) {
      body.appendChild(el("tr", { "data-member-id": m.member_id },
        el("td", {}, m.name),
        el("td", {}, m.email),
        el("td", {}, el("span", { class: "badge role-" + m.role }, m.role)),
        el("td", {}, tb.fmtTime(m.added_at)),
        el("td", {}, mayGrant(m.role)
          ? el("button", {
            type: "button", class: "invite secondary", "data-member-id": m.member_id,
            "aria-label": "Create a sign-in invite link for " + m.name,
            on: { click: (e) => run(e.currentTarget, () => invite(m)) },
          }, "Invite link")
          : "—")));
    }
    if (!state.members.length) {
      body.appendChild(el("tr", {}, el("td", { colspan: "5", class: "muted" }, "No members yet.")));
    }
    fillKeyMembers();
  }

  async function addMember(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const button = form.querySelector('button[type="submit"]');
    await run(button, async () => {
      const body = {
        name: document.getElementById("member-name").value.trim(),
        email: document.getElementById("member-email").value.trim(),
        role: document.getElementById("member-role").value,
      };
      const added = await tb.api("POST", "/v1/members", body);
      form.reset();
      await loadMembers();
      tb.flash("Added " + added.name + " (" + added.role + "). Create an invite link so they can set a password.");
      const row = tb.$('#members tr[data-member-id="' + added.member_id + '"] button.invite');
      if (row) row.focus();
    }, document.getElementById("add-member-error"));
  }

  async function invite(member) {
    const answer = await tb.api("POST", "/v1/members/" + encodeURIComponent(member.member_id) + "/invites");
    const url = new URL(answer.invite_url, location.origin).href;
    oneTimeValue(document.getElementById("invite-link"), {
      title: "Sign-in invite for " + member.name,
      value: url,
      valueId: "invite-url",
      copyId: "copy-invite",
      label: "Invite link for " + member.name,
      note: "Shown only now. Send it to " + member.email + " privately; it works once" +
        (answer.expires_at ? " and expires " + tb.fmtTime(answer.expires_at) : "") + ".",
    });
  }

  // ---------- API keys ----------

  function buildKeys() {
    const roles = grantable();
    return section("keys-section", "API keys",
      el("p", { class: "hint" }, "Keys let programs use the API. A key bound to a member has that member's role; only that member, an owner or an admin may issue it."),
      el("div", { class: "table-wrap" },
        el("table", { id: "api-keys", class: "data" },
          el("thead", {}, el("tr", {},
            ["Label", "Role", "Member", "Issued by", "Created", "Status", ""].map((h, i) => el("th", { scope: "col" }, i === 6 ? el("span", { class: "offscreen" }, "Actions") : h)))),
          el("tbody", {}))),
      el("h3", {}, "Issue a key"),
      el("form", { id: "issue-key", class: "inline-form", on: { submit: issueKey } },
        field("key-role", "Role", el("select", { id: "key-role", required: true },
          roles.map((r) => el("option", { value: r, selected: r === "texter" }, r)))),
        field("key-member", "Member", el("select", {
          id: "key-member",
          on: { change: syncKeyRole },
        }, el("option", { value: "" }, "Not bound to a member"))),
        field("key-label", "Label", el("input", { id: "key-label", type: "text", autocomplete: "off", maxlength: "100", placeholder: "e.g. CRM sync" })),
        el("div", { class: "actions" }, el("button", { type: "submit", class: "primary" }, "Issue key")),
        el("p", { id: "issue-key-error", class: "field-error", "aria-live": "polite" })),
      el("div", { id: "issued-key", class: "one-time", hidden: true, "aria-live": "polite" }));
  }

  function fillKeyMembers() {
    const select = document.getElementById("key-member");
    if (!select) return;
    const current = select.value;
    tb.clear(select);
    select.appendChild(el("option", { value: "" }, "Not bound to a member"));
    for (const m of state.members.filter((x) => mayGrant(x.role))) {
      select.appendChild(el("option", { value: m.member_id }, m.name + " (" + m.role + ")"));
    }
    select.value = current;
    if (select.value !== current) select.value = "";
    syncKeyRole();
  }

  // A member's key has the member's role.
  function syncKeyRole() {
    const member = state.members.find((m) => m.member_id === document.getElementById("key-member").value);
    const role = document.getElementById("key-role");
    if (member) {
      role.value = member.role;
      role.disabled = true;
    } else {
      role.disabled = false;
    }
  }

  async function loadKeys() {
    const answer = await tb.api("GET", "/v1/api-keys");
    state.keys = answer.api_keys || [];
    const body = tb.$("#api-keys tbody");
    tb.clear(body);
    const keys = state.keys.slice().sort((a, b) =>
      (a.revoked_at ? 1 : 0) - (b.revoked_at ? 1 : 0) || String(b.created_at).localeCompare(String(a.created_at)));
    for (const k of keys) {
      body.appendChild(el("tr", { "data-key-id": k.key_id, class: k.revoked_at ? "revoked" : null },
        el("td", {}, k.label || "—"),
        el("td", {}, el("span", { class: "badge role-" + k.role }, k.role)),
        el("td", {}, k.member_id ? memberName(k.member_id) : "—"),
        el("td", {}, k.issued_by_member_id ? memberName(k.issued_by_member_id) : k.issued_by_key_id ? "a key" : "—"),
        el("td", {}, tb.fmtTime(k.created_at)),
        el("td", {}, k.revoked_at ? "revoked " + tb.fmtTime(k.revoked_at) : "active"),
        el("td", {}, !k.revoked_at && mayGrant(k.role)
          ? el("button", {
            type: "button", class: "revoke danger", "data-key-id": k.key_id,
            "aria-label": "Revoke the key " + (k.label || k.key_id),
            on: { click: (e) => revokeKey(k, e.currentTarget) },
          }, "Revoke")
          : null)));
    }
    if (!keys.length) {
      body.appendChild(el("tr", {}, el("td", { colspan: "7", class: "muted" }, "No keys.")));
    }
  }

  async function issueKey(event) {
    event.preventDefault();
    const form = event.currentTarget;
    await run(form.querySelector('button[type="submit"]'), async () => {
      const memberId = document.getElementById("key-member").value;
      const body = {
        role: document.getElementById("key-role").value,
        label: document.getElementById("key-label").value.trim(),
      };
      if (memberId) body.member_id = memberId;
      const issued = await tb.api("POST", "/v1/api-keys", body);
      document.getElementById("key-label").value = "";
      await loadKeys();
      oneTimeValue(document.getElementById("issued-key"), {
        title: "New " + issued.role + " key" + (issued.label ? " “" + issued.label + "”" : ""),
        value: issued.key,
        valueId: "new-key",
        copyId: "copy-key",
        label: "The new API key",
        note: "Shown only now: textbank keeps only its hash and cannot show it again. Copy it into the program that needs it; if it is lost, revoke it and issue another.",
      });
    }, document.getElementById("issue-key-error"));
  }

  async function revokeKey(key, button) {
    const name = key.label ? "“" + key.label + "”" : key.key_id;
    if (!window.confirm("Revoke the " + key.role + " key " + name + "? Programs using it stop working at once.")) return;
    await run(button, async () => {
      await tb.api("DELETE", "/v1/api-keys/" + encodeURIComponent(key.key_id));
      await loadKeys();
      tb.flash("Revoked the key " + name + ".");
      const next = tb.$("#api-keys button.revoke");
      if (next) next.focus();
    });
  }

  // ---------- Carrier ----------

  // Fields per carrier: [id, body key, label, kind, hint].
  const CARRIER_FIELDS = {
    sim: [],
    twilio: [
      ["account-sid", "account_sid", "Account SID", "text", null],
      ["auth-token", "auth_token", "Auth token", "secret", SECRET_NOTE],
      ["messaging-service-sid", "messaging_service_sid", "Messaging service SID (optional)", "text", null],
      ["api-base", "api_base", "API base URL (optional, for a proxy)", "url", null],
    ],
    telnyx: [
      ["api-key", "api_key", "API key", "secret", SECRET_NOTE],
      ["public-key", "public_key", "Public key (base64, from the Telnyx portal)", "text", null],
      ["messaging-profile-id", "messaging_profile_id", "Messaging profile id (optional)", "text", null],
      ["api-base", "api_base", "API base URL (optional, for a proxy)", "url", null],
    ],
  };

  function buildCarrier() {
    const kinds = [["sim", "Simulator (no real texts)"], ["twilio", "Twilio"], ["telnyx", "Telnyx"]];
    return section("carrier-section", "Carrier",
      el("p", { id: "carrier-status", class: "status", "aria-live": "polite" }),
      el("form", { id: "carrier-form", on: { submit: saveCarrier } },
        field("carrier-kind", "Carrier", el("select", { id: "carrier-kind", on: { change: () => showCarrierFields(state.carrier) } },
          kinds.map(([v, t]) => el("option", { value: v }, t)))),
        el("div", { id: "carrier-fields" }),
        field("sending-numbers", "Sending numbers (one per line)",
          el("textarea", { id: "sending-numbers", rows: "4", spellcheck: "false", autocomplete: "off", "aria-describedby": "sending-numbers-hint" }),
          "Numbers the carrier sends from, in E.164 (+15552010001). Webhooks are matched to the organization by number."),
        field("opt-out-confirmation", "Opt-out confirmation (sent once after STOP)",
          el("textarea", { id: "opt-out-confirmation", rows: "2", maxlength: "320" })),
        field("opt-in-confirmation", "Opt-in confirmation (sent after START)",
          el("textarea", { id: "opt-in-confirmation", rows: "2", maxlength: "320" })),
        field("help-text", "Help text (answer to HELP)",
          el("textarea", { id: "help-text", rows: "2", maxlength: "320" }), "Leave a text empty for textbank's default."),
        el("div", { class: "actions" }, el("button", { id: "carrier-save", type: "submit", class: "primary" }, "Save carrier settings")),
        el("p", { id: "carrier-error", class: "field-error", "aria-live": "polite" })),
      el("div", { id: "carrier-webhooks" }));
  }

  function showCarrierFields(view) {
    const kind = document.getElementById("carrier-kind").value;
    const holder = document.getElementById("carrier-fields");
    tb.clear(holder);
    if (kind === "sim") {
      holder.appendChild(el("p", { class: "hint" },
        "The simulator sends nothing: it answers like a carrier, with delivery reports and voter replies. Saving gives it fresh credentials; leave the numbers empty for made-up 555 numbers."));
      document.getElementById("sending-numbers").required = false;
      return;
    }
    document.getElementById("sending-numbers").required = true;
    for (const [id, key, text, type, hint] of CARRIER_FIELDS[kind]) {
      const secret = type === "secret";
      const input = el("input", {
        id,
        name: key,
        type: secret ? "password" : type === "url" ? "url" : "text",
        autocomplete: secret ? "new-password" : "off",
        spellcheck: "false",
        required: (secret && !(view && view.secret_set && view.carrier === kind)) || key === "account_sid" || key === "public_key",
        placeholder: secret && view && view.secret_set && view.carrier === kind ? "stored — leave empty to keep it" : null,
        "aria-describedby": hint ? id + "-hint" : null,
      });
      if (!secret && view && view.carrier === kind && view[key]) input.value = view[key];
      holder.appendChild(field(id, text, input, hint));
    }
  }

  function fillCarrier(view) {
    state.carrier = view;
    document.getElementById("carrier-kind").value = view ? view.carrier : "sim";
    showCarrierFields(view);
    document.getElementById("sending-numbers").value = view ? (view.sending_numbers || []).join("\n") : "";
    document.getElementById("opt-out-confirmation").value = view ? view.opt_out_confirmation || "" : "";
    document.getElementById("opt-in-confirmation").value = view ? view.opt_in_confirmation || "" : "";
    document.getElementById("help-text").value = view ? view.help_text || "" : "";
    const status = document.getElementById("carrier-status");
    status.textContent = view
      ? "Configured: " + view.carrier + ", " + (view.sending_numbers || []).length + " sending number(s); last saved " + tb.fmtTime(view.updated_at) +
        (view.secret_set && view.carrier !== "sim" ? "; the credential is stored (sealed) and never shown." : ".")
      : "No carrier is configured yet: nothing can be sent until one is saved.";
    const hooks = document.getElementById("carrier-webhooks");
    tb.clear(hooks);
    if (view && view.webhooks) {
      const entries = Object.entries(view.webhooks).sort();
      hooks.appendChild(el("h3", {}, "Webhook URLs to give the carrier"));
      hooks.appendChild(el("dl", { class: "facts" }, entries.flatMap(([name, url]) => {
        const full = /^https?:\/\//.test(url) ? url : new URL(url, location.origin).href;
        return [el("dt", {}, name), el("dd", {}, el("code", { class: "mono", "data-webhook": name }, full))];
      })));
      if (entries.some(([, url]) => !/^https?:\/\//.test(url))) {
        hooks.appendChild(el("p", { class: "hint" },
          "The server has no public URL configured, so these use this page's address; the carrier needs an address it can reach."));
      }
    }
  }

  async function loadCarrier() {
    try {
      fillCarrier(await tb.api("GET", "/v1/carrier"));
    } catch (err) {
      if (err instanceof tb.ApiError && err.status === 404) {
        fillCarrier(null);
        return;
      }
      throw err;
    }
  }

  async function saveCarrier(event) {
    event.preventDefault();
    await run(document.getElementById("carrier-save"), async () => {
      const kind = document.getElementById("carrier-kind").value;
      const body = {
        carrier: kind,
        sending_numbers: document.getElementById("sending-numbers").value
          .split(/[\n,;]+/).map((s) => s.trim()).filter(Boolean),
      };
      for (const [id, key] of CARRIER_FIELDS[kind]) {
        const value = document.getElementById(id).value.trim();
        if (value) body[key] = value;
      }
      for (const [id, key] of [["opt-out-confirmation", "opt_out_confirmation"], ["opt-in-confirmation", "opt_in_confirmation"], ["help-text", "help_text"]]) {
        const value = document.getElementById(id).value.trim();
        if (value) body[key] = value;
      }
      const view = await tb.api("PUT", "/v1/carrier", body);
      fillCarrier(view);
      tb.flash("Carrier settings saved (" + view.carrier + ").");
    }, document.getElementById("carrier-error"));
  }

  // ---------- Opt-outs ----------

  function buildOptOuts() {
    return section("opt-outs-section", "Opt-out list",
      el("p", { class: "hint" }, "Numbers on the list are never texted by this organization. Importing validates every number first: one bad row and nothing is stored."),
      el("form", { id: "opt-out-form", on: { submit: importOptOuts } },
        field("opt-out-file", "CSV file (a header row naming the phone column)",
          el("input", { id: "opt-out-file", type: "file", accept: ".csv,text/csv" })),
        field("opt-out-phones", "Or paste numbers (one per line)",
          el("textarea", { id: "opt-out-phones", rows: "4", spellcheck: "false", autocomplete: "off" })),
        el("div", { class: "actions" },
          el("button", { id: "opt-out-import", type: "submit", class: "primary" }, "Import opt-outs"),
          el("a", { id: "opt-out-export", class: "button secondary", href: "/v1/opt-outs", download: "opt-outs.csv" }, "Export the list (CSV)"))),
      el("div", { id: "opt-out-result", "aria-live": "polite" }));
  }

  async function importOptOuts(event) {
    event.preventDefault();
    const result = document.getElementById("opt-out-result");
    await run(document.getElementById("opt-out-import"), async () => {
      const fileInput = document.getElementById("opt-out-file");
      const file = fileInput.files && fileInput.files[0];
      const pasted = document.getElementById("opt-out-phones").value
        .split(/[\n,;]+/).map((s) => s.trim()).filter(Boolean);
      tb.clear(result);
      result.className = "";
      if (!file && !pasted.length) {
        result.appendChild(el("p", {}, "Choose a CSV file or paste numbers first."));
        return;
      }
      let summary;
      try {
        summary = file
          ? await tb.api("POST", "/v1/opt-outs", file, { headers: { "Content-Type": "text/csv" } })
          : await tb.api("POST", "/v1/opt-outs", { phones: pasted });
      } catch (err) {
        if (err instanceof tb.ApiError && (err.status === 422 || err.status === 415 || err.status === 413)) {
          result.className = "verdict bad";
          result.appendChild(el("p", {}, el("strong", {}, "Nothing was imported. "), err.message));
          tb.clearFlash();
          return;
        }
        throw err;
      }
      result.className = "verdict ok";
      result.appendChild(el("p", {},
        el("strong", {}, "Imported: "),
        tb.fmtNum(summary.imported) + " newly opted out, " + tb.fmtNum(summary.already_opted_out) +
        " already were, of " + tb.fmtNum(summary.total) + " distinct numbers."));
      fileInput.value = "";
      document.getElementById("opt-out-phones").value = "";
    });
  }

  // ---------- Webhooks ----------

  const WEBHOOK_STATUS_NOTE = {
    active: "Delivering",
    disabled: "Disabled",
    failing: "Failing: a delivery failed for the whole retry window, so the server disabled it. Fix the receiver, then enable it: delivery resumes with the event that failed.",
  };

  function buildWebhooks() {
    return section("webhooks-section", "Webhooks",
      el("p", { class: "hint" }, "Each subscription receives the organization's events (or the types you name), in order, signed after the Standard Webhooks specification. A receiver must be an https address on the internet."),
      el("div", { class: "table-wrap" },
        el("table", { id: "webhooks", class: "data" },
          el("thead", {}, el("tr", {},
            ["URL", "Events", "Description", "Status", "Delivered through", ""].map((h, i) => el("th", { scope: "col" }, i === 5 ? el("span", { class: "offscreen" }, "Actions") : h)))),
          el("tbody", {}))),
      el("div", { id: "webhook-secret", class: "one-time", hidden: true, "aria-live": "polite" }),
      el("h3", {}, "Add a webhook"),
      el("form", { id: "add-webhook", class: "inline-form", on: { submit: addWebhook } },
        field("webhook-url", "Receiver URL", el("input", { id: "webhook-url", type: "url", required: true, autocomplete: "off", maxlength: "2048", placeholder: "https://crm.example.org/textbank" })),
        field("webhook-types", "Event types", el("input", { id: "webhook-types", type: "text", autocomplete: "off", placeholder: "all; or e.g. OptOutRecorded, ReplyReceived" })),
        field("webhook-description", "Description", el("input", { id: "webhook-description", type: "text", autocomplete: "off", maxlength: "500" })),
        el("div", { class: "actions" }, el("button", { type: "submit", class: "primary" }, "Add webhook")),
        el("p", { id: "add-webhook-error", class: "field-error", "aria-live": "polite" })),
      el("div", { id: "webhook-deliveries", hidden: true }));
  }

  function showSecret(secret, title) {
    oneTimeValue(document.getElementById("webhook-secret"), {
      valueId: "webhook-secret-value", copyId: "copy-webhook-secret", value: secret,
      label: "Signing secret", title,
      note: "Verify each delivery's webhook-signature with it. It is shown only now; rotate it to get a new one.",
    });
  }

  async function loadWebhooks() {
    const answer = await tb.api("GET", "/v1/webhooks");
    state.webhooks = answer.webhooks || [];
    const body = tb.$("#webhooks tbody");
    tb.clear(body);
    for (const w of state.webhooks) {
      const act = (label, text, action) => el("button", {
        type: "button", class: "secondary", "aria-label": label + " " + w.url,
        on: { click: (e) => run(e.currentTarget, action) },
      }, text);
      body.appendChild(el("tr", { "data-webhook-id": w.webhook_id },
        el("td", { class: "mono" }, w.url),
        el("td", {}, w.event_types.length ? w.event_types.join(", ") : "all"),
        el("td", {}, str(w.description)),
        el("td", {},
          el("span", { class: "badge " + (w.status === "failing" ? "reason" : "status-" + w.status), title: WEBHOOK_STATUS_NOTE[w.status] || "" }, w.status),
          w.status === "failing" ? el("p", { class: "hint" }, "Since " + tb.fmtTime(w.failing_since) + ". " + WEBHOOK_STATUS_NOTE.failing) : null),
        el("td", {}, tb.fmtNum(w.delivered_through)),
        el("td", { class: "actions" },
          act("Show deliveries of", "Deliveries", () => loadDeliveries(w, null)),
          act("Send a test ping to", "Ping", () => ping(w)),
          act(w.enabled ? "Disable" : "Enable", w.enabled ? "Disable" : "Enable", () => setEnabled(w, !w.enabled)),
          act("Rotate the secret of", "Rotate secret", () => rotate(w)),
          act("Delete", "Delete", () => removeWebhook(w)))));
    }
    if (!state.webhooks.length) {
      body.appendChild(el("tr", {}, el("td", { colspan: "6", class: "muted" }, "No webhooks yet.")));
    }
  }

  async function addWebhook(event) {
    event.preventDefault();
    const form = event.currentTarget;
    await run(form.querySelector("button[type=submit]"), async () => {
      const types = document.getElementById("webhook-types").value
        .split(/[\s,;]+/).map((t) => t.trim()).filter(Boolean);
      const created = await tb.api("POST", "/v1/webhooks", {
        url: document.getElementById("webhook-url").value.trim(),
        event_types: types,
        description: document.getElementById("webhook-description").value.trim(),
      });
      form.reset();
      showSecret(created.secret, "The webhook's signing secret:");
      await loadWebhooks();
    }, document.getElementById("add-webhook-error"));
  }

  async function setEnabled(w, enabled) {
    await tb.api("PATCH", "/v1/webhooks/" + w.webhook_id, { enabled });
    tb.flash(enabled ? "Webhook enabled." : "Webhook disabled.");
    await loadWebhooks();
  }

  async function rotate(w) {
    if (!window.confirm("Replace the signing secret of " + w.url + "? Deliveries are signed with the new one from now on.")) return;
    const rotated = await tb.api("POST", "/v1/webhooks/" + w.webhook_id + "/rotate-secret");
    showSecret(rotated.secret, "The new signing secret:");
  }

  async function removeWebhook(w) {
    if (!window.confirm("Delete the webhook to " + w.url + " and its delivery record?")) return;
    await tb.api("DELETE", "/v1/webhooks/" + w.webhook_id);
    if (state.deliveriesOf && state.deliveriesOf.webhook_id === w.webhook_id) {
      document.getElementById("webhook-deliveries").hidden = true;
    }
    await loadWebhooks();
  }

  async function ping(w) {
    const delivery = await tb.api("POST", "/v1/webhooks/" + w.webhook_id + "/ping");
    const attempt = delivery.attempts[delivery.attempts.length - 1] || {};
    if (delivery.status === "succeeded") {
      tb.flash("Ping delivered (HTTP " + attempt.status_code + ", " + attempt.latency_ms + " ms).");
    } else {
      tb.showError(new Error("The ping failed: " + str(attempt.error)));
    }
    if (state.deliveriesOf && state.deliveriesOf.webhook_id === w.webhook_id) await loadDeliveries(w, null);
  }

  async function loadDeliveries(w, cursor) {
    state.deliveriesOf = w;
    const holder = document.getElementById("webhook-deliveries");
    const query = "?limit=50" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
    const page = await tb.api("GET", "/v1/webhooks/" + w.webhook_id + "/deliveries" + query);
    tb.clear(holder);
    holder.hidden = false;
    holder.appendChild(el("h3", {}, "Deliveries to " + w.url));
    const rows = page.deliveries.map((d) => {
      const last = d.attempts[d.attempts.length - 1] || {};
      return el("tr", { "data-delivery-id": d.delivery_id },
        el("td", {}, tb.fmtTime(d.created_at)),
        el("td", {}, d.event_type + (d.position ? " #" + d.position : "")),
        el("td", {}, el("span", { class: "badge status-" + (d.status === "succeeded" ? "delivered" : d.status) }, d.status)),
        el("td", {}, String(d.attempt_count)),
        el("td", {}, last.status_code ? "HTTP " + last.status_code : str(last.error)),
        el("td", {}, d.status === "pending" ? "next " + tb.fmtTime(d.next_attempt_at) : el("button", {
          type: "button", class: "secondary", "aria-label": "Send delivery " + d.delivery_id + " again",
          on: { click: (e) => run(e.currentTarget, async () => {
            const again = await tb.api("POST", "/v1/webhooks/" + w.webhook_id + "/deliveries/" + d.delivery_id + "/retry");
            tb.flash(again.status === "succeeded" ? "Delivered." : "Sent again; the receiver did not take it.");
            await loadDeliveries(w, cursor);
          }) },
        }, "Send again")));
    });
    holder.appendChild(el("div", { class: "table-wrap" },
      el("table", { id: "deliveries", class: "data" },
        el("thead", {}, el("tr", {},
          ["Created", "Event", "Status", "Attempts", "Last answer", ""].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows.length ? rows : [el("tr", {}, el("td", { colspan: "6", class: "muted" }, "No deliveries yet."))]))));
    if (page.next_cursor) {
      holder.appendChild(el("button", {
        type: "button", class: "secondary",
        on: { click: (e) => run(e.currentTarget, () => loadDeliveries(w, page.next_cursor)) },
      }, "Older deliveries"));
    }
  }

  // ---------- page ----------

  async function start() {
    const main = document.getElementById("main");
    tb.clear(main);
    main.appendChild(el("h1", {}, "Admin"));
    const parts = [];
    if (tb.can("manage_members")) {
      main.appendChild(buildMembers());
      main.appendChild(buildKeys());
      parts.push(loadMembers().then(loadKeys));
    }
    if (tb.can("configure_carrier")) {
      main.appendChild(buildCarrier());
      parts.push(loadCarrier());
    }
    if (tb.can("manage_opt_outs")) {
      main.appendChild(buildOptOuts());
    }
    if (tb.can("manage_webhooks")) {
      main.appendChild(buildWebhooks());
      parts.push(loadWebhooks());
    }
    if (!main.querySelector("section")) {
      main.appendChild(el("p", {}, "Your role has nothing to manage here."));
      return;
    }
    const results = await Promise.allSettled(parts);
    for (const r of results) {
      if (r.status === "rejected") tb.showError(r.reason);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
