// textbank: the inbox. Conversations newest activity first (those needing a
// reply by default), updated live over Server-Sent Events, and a thread view
// with delivery status, replies, canned responses, survey answers and the
// opt-out button. Staff see the org's conversations read-only.
(function () {
  "use strict";

  const tb = window.tb;
  const el = tb.el;
  const main = document.getElementById("main");
  const isTexter = tb.page.role === "texter";
  const PAGE_SIZE = 50;

  const state = {
    status: "needs_reply",
    items: new Map(), // conversation_id → list item
    nextCursor: null,
    loading: false,
    openId: null,
    thread: null,
    threadLoading: null,
    threadAgain: false,
    campaigns: new Map(), // campaign_id → Promise of the campaign
    texterNames: new Map(),
    replyInFlight: false,
    replyKey: null, // {conversationId, what, key}: reused when the same send is retried
    optOutConfirming: false,
    shownCount: null, // messages in the thread as last drawn
    generation: 0,
  };

  const ui = {};

  // ---- layout ----------------------------------------------------------

  function build() {
    tb.clear(main);
    ui.needsReply = el("button", {
      type: "button", id: "filter-needs-reply", class: "filter", "aria-pressed": "true",
      on: { click: () => setFilter("needs_reply") },
    }, "Needs reply");
    ui.all = el("button", {
      type: "button", id: "filter-all", class: "filter", "aria-pressed": "false",
      on: { click: () => setFilter("all") },
    }, "All");
    ui.list = el("ul", { id: "conversation-list", class: "conversation-list", "aria-label": "Conversations" });
    ui.listStatus = el("p", { id: "list-status", class: "list-status", role: "status", "aria-live": "polite" });
    ui.more = el("button", {
      type: "button", id: "load-more", class: "button load-more", hidden: true,
      on: { click: loadMore },
    }, "Load more");
    ui.listPane = el("div", { class: "inbox-list", id: "inbox-list" },
      el("div", { class: "inbox-list-head" },
        el("h1", { id: "inbox-title" }, isTexter ? "Inbox" : "Conversations"),
        el("div", { class: "filters", role: "group", "aria-label": "Show" }, ui.needsReply, ui.all)),
      isTexter ? null : el("p", { class: "read-only-note" }, "Read-only: replies are sent by the conversation's texter."),
      ui.listStatus, ui.list, ui.more);
    ui.thread = el("section", { id: "thread", class: "thread", "aria-label": "Conversation", tabindex: "-1" });
    ui.root = el("div", { class: "inbox" }, ui.listPane, ui.thread);
    main.appendChild(ui.root);
    renderThreadPlaceholder();
  }

  function setFilter(status) {
    if (state.status === status) return;
    state.status = status;
    ui.needsReply.setAttribute("aria-pressed", String(status === "needs_reply"));
    ui.all.setAttribute("aria-pressed", String(status === "all"));
    const url = new URL(location.href);
    if (status === "all") url.searchParams.set("status", "all");
    else url.searchParams.delete("status");
    history.replaceState(null, "", url);
    loadFirstPage();
  }

  // ---- the list --------------------------------------------------------

  function listPath(cursor) {
    let path = "/v1/conversations?status=" + state.status + "&limit=" + PAGE_SIZE;
    if (cursor) path += "&cursor=" + encodeURIComponent(cursor);
    return path;
  }

  // A page can be answered after the live stream already pushed a newer
  // version of one of its rows: the newer one stays.
  function keepNewer(item) {
    const known = state.items.get(item.conversation_id);
    if (!known || (known.updated_position || 0) <= (item.updated_position || 0)) {
      state.items.set(item.conversation_id, item);
    }
  }

  async function loadFirstPage() {
    state.generation += 1;
    const generation = state.generation;
    state.items = new Map();
    state.nextCursor = null;
    ui.listStatus.textContent = "Loading…";
    renderList();
    try {
      const page = await tb.api("GET", listPath(null));
      if (generation !== state.generation) return;
      (page.conversations || []).forEach(keepNewer);
      state.nextCursor = page.next_cursor || null;
      ui.listStatus.textContent = "";
      renderList();
    } catch (err) {
      if (generation !== state.generation) return;
      ui.listStatus.textContent = "The conversations could not be loaded.";
      tb.showError(err);
    }
  }

  async function mergeFirstPage() {
    const generation = state.generation;
    try {
      const page = await tb.api("GET", listPath(null));
      if (generation !== state.generation) return;
      (page.conversations || []).forEach(keepNewer);
      renderList();
    } catch (err) {
      // The stream and the next action bring the list up to date anyway.
    }
  }

  async function loadMore() {
    if (!state.nextCursor || state.loading) return;
    state.loading = true;
    ui.more.disabled = true;
    const generation = state.generation;
    try {
      const page = await tb.api("GET", listPath(state.nextCursor));
      if (generation !== state.generation) return;
      (page.conversations || []).forEach(keepNewer);
      state.nextCursor = page.next_cursor || null;
      renderList();
    } catch (err) {
      tb.showError(err);
    } finally {
      state.loading = false;
      ui.more.disabled = false;
    }
  }

  // The server's order: newest latest message (by log position) first.
  function sorted() {
    return Array.from(state.items.values()).sort((a, b) =>
      (b.last_position || 0) - (a.last_position || 0) ||
      (b.updated_position || 0) - (a.updated_position || 0));
  }

  function contactName(item) {
    const name = [item.first_name, item.last_name].filter((s) => s && s.trim()).join(" ");
    return name || item.phone;
  }

  function renderList() {
    const focusedId = document.activeElement && document.activeElement.closest
      ? (document.activeElement.closest("li.conversation") || {}).dataset
      : null;
    const refocus = focusedId && focusedId.conversationId;
    tb.clear(ui.list);
    const items = sorted();
    items.forEach((item) => ui.list.appendChild(listItem(item)));
    ui.more.hidden = !state.nextCursor;
    if (!items.length && !ui.listStatus.textContent) {
      ui.list.appendChild(el("li", { class: "conversation-empty" },
        state.status === "needs_reply" ? "Nothing needs a reply right now." : "No conversations yet."));
    }
    if (refocus) {
      const button = tb.$('li.conversation[data-conversation-id="' + CSS.escape(refocus) + '"] .conversation-open', ui.list);
      if (button) button.focus({ preventScroll: true });
    }
  }

  function listItem(item) {
    const classes = ["conversation"];
    if (item.needs_reply) classes.push("needs-reply");
    if (item.opted_out) classes.push("opted-out");
    if (item.unread_count > 0) classes.push("unread");
    const open = item.conversation_id === state.openId;
    if (open) classes.push("active");
    const last = item.last_message || {};
    const who = last.direction === "inbound" ? "Them: " : "You: ";
    const badges = el("span", { class: "badges" },
      item.unread_count > 0
        ? el("span", { class: "badge badge-unread", "aria-label": item.unread_count + " unread" }, String(item.unread_count))
        : null,
      item.needs_reply ? el("span", { class: "badge badge-needs-reply" }, "Needs reply") : null,
      item.opted_out ? el("span", { class: "badge badge-opted-out" }, "Opted out") : null,
      item.holder === "escalated" ? el("span", { class: "badge badge-escalated" }, "Escalated") : null,
      item.holder === "pool" ? el("span", { class: "badge" }, "Released") : null,
      (item.tags || []).map((tag) => el("span", { class: "badge badge-tag" }, tag.name)));
    const texter = !isTexter && state.texterNames.get(item.texter_id);
    return el("li", { class: classes.join(" "), data: { conversationId: item.conversation_id } },
      el("button", {
        type: "button", class: "conversation-open", "aria-current": open ? "true" : null,
        on: { click: () => openConversation(item.conversation_id, true) },
      },
        el("span", { class: "conversation-top" },
          el("span", { class: "conversation-name" }, contactName(item)),
          el("time", { class: "conversation-time", datetime: last.at, title: tb.fmtTime(last.at) }, tb.fmtAgo(last.at))),
        el("span", { class: "conversation-sub" },
          el("span", { class: "conversation-phone" }, item.phone),
          " · ",
          el("span", { class: "conversation-campaign" }, item.campaign_name || "Campaign"),
          texter ? [" · ", el("span", { class: "conversation-texter" }, texter)] : null),
        el("span", { class: "conversation-preview", data: { direction: last.direction } },
          el("span", { class: "visually-hidden" }, last.direction === "inbound" ? "Last message from them: " : "Last message from you: "),
          el("span", { "aria-hidden": "true" }, who), last.body || ""),
        badges));
  }

  // A change pushed by the server: upsert, re-sort, refresh the open thread.
  function onStreamEvent(name, item) {
    if (name === "conversation_removed" && item && item.conversation_id) {
      // Reassigned, released or escalated: no longer this texter's.
      state.items.delete(item.conversation_id);
      if (item.conversation_id === state.openId) closeConversation();
      else renderList();
      return;
    }
    if (name !== "conversation" || !item || !item.conversation_id) return;
    const known = state.items.get(item.conversation_id);
    if (known && (known.updated_position || 0) > (item.updated_position || 0)) return;
    if (state.status === "needs_reply" && !item.needs_reply && item.conversation_id !== state.openId) {
      state.items.delete(item.conversation_id);
    } else {
      state.items.set(item.conversation_id, item);
    }
    renderList();
    if (item.conversation_id === state.openId) {
      loadThread(item.conversation_id);
      if (isTexter && item.unread_count > 0 && !document.hidden) markRead(item.conversation_id);
    }
  }

  // ---- the thread ------------------------------------------------------

  function renderThreadPlaceholder() {
    tb.clear(ui.thread);
    ui.root.classList.remove("thread-open");
    ui.thread.appendChild(el("p", { class: "thread-placeholder" }, "Choose a conversation to read it."));
  }

  function campaign(campaignId) {
    if (!state.campaigns.has(campaignId)) {
      const promise = tb.api("GET", "/v1/campaigns/" + encodeURIComponent(campaignId)).catch((err) => {
        state.campaigns.delete(campaignId);
        throw err;
      });
      state.campaigns.set(campaignId, promise);
    }
    return state.campaigns.get(campaignId);
  }

  function openConversation(id, focus) {
    if (state.openId !== id) {
      state.replyKey = null;
      state.optOutConfirming = false;
      state.thread = null;
      state.shownCount = null;
    }
    state.openId = id;
    const url = new URL(location.href);
    url.searchParams.set("conversation", id);
    history.replaceState(null, "", url);
    ui.root.classList.add("thread-open");
    renderList();
    tb.clear(ui.thread).appendChild(el("p", { class: "thread-placeholder" }, "Loading…"));
    loadThread(id).then(() => {
      if (focus && state.openId === id) ui.thread.focus({ preventScroll: true });
    });
    if (isTexter) markRead(id);
  }

  function closeConversation() {
    const id = state.openId;
    state.openId = null;
    state.thread = null;
    const url = new URL(location.href);
    url.searchParams.delete("conversation");
    history.replaceState(null, "", url);
    renderThreadPlaceholder();
    if (id && state.status === "needs_reply") {
      const item = state.items.get(id);
      if (item && !item.needs_reply) state.items.delete(id);
    }
    renderList();
    const button = id && tb.$('li.conversation[data-conversation-id="' + CSS.escape(id) + '"] .conversation-open', ui.list);
    if (button) button.focus();
  }

  async function markRead(id) {
    try {
      await tb.api("POST", "/v1/conversations/" + encodeURIComponent(id) + "/read");
      const item = state.items.get(id);
      if (item && item.unread_count) {
        state.items.set(id, Object.assign({}, item, { unread_count: 0 }));
        renderList();
      }
    } catch (err) {
      // Not worth interrupting the texter: the count stays as it was.
    }
  }

  // Loads the thread; calls while one is loading coalesce into one more.
  async function loadThread(id) {
    if (state.threadLoading) {
      state.threadAgain = true;
      return state.threadLoading;
    }
    state.threadLoading = (async () => {
      do {
        state.threadAgain = false;
        try {
          const thread = await tb.api("GET", "/v1/conversations/" + encodeURIComponent(id));
          if (state.openId !== id) return;
          let details = null;
          try {
            details = await campaign(thread.campaign_id);
          } catch (err) {
            details = null;
          }
          if (state.openId !== id) return;
          state.thread = thread;
          renderThread(thread, details);
        } catch (err) {
          if (state.openId !== id) return;
          tb.showError(err);
          if (!state.thread) {
            tb.clear(ui.thread).append(backButton(), el("p", { class: "thread-placeholder" }, "This conversation could not be loaded."));
          }
          return;
        }
      } while (state.threadAgain && state.openId === id);
    })().finally(() => { state.threadLoading = null; });
    return state.threadLoading;
  }

  function backButton() {
    return el("button", { type: "button", id: "thread-back", class: "button thread-back", on: { click: closeConversation } }, "← Back");
  }

  const KIND_LABELS = {
    initial: "First message",
    reply: "Reply",
    opt_out_confirmation: "Automatic opt-out confirmation",
    opt_in_confirmation: "Automatic opt-in confirmation",
    help: "Automatic help text",
  };
  const KEYWORD_LABELS = {
    opt_out: "Opt-out keyword",
    opt_in: "Opt-in keyword",
    help: "Help keyword",
    likely_opt_out: "May mean stop",
  };
  const STATUS_LABELS = {
    pending: "Pending",
    submitted: "Sent to carrier",
    retrying: "Retrying",
    failed: "Failed",
    unknown: "Unknown",
    cancelled: "Cancelled",
    queued: "Queued",
    sending: "Sending",
    sent: "Sent",
    delivered: "Delivered",
    undelivered: "Undelivered",
  };

  function renderThread(thread, details) {
    // Keep what the texter is typing across live refreshes.
    const draft = tb.$("#reply-body", ui.thread);
    const draftText = draft ? draft.value : "";
    const hadFocus = document.activeElement && ui.thread.contains(document.activeElement) ? document.activeElement.id : null;
    const cannedChoice = tb.$("#canned-select", ui.thread);
    const cannedValue = cannedChoice ? cannedChoice.value : "";
    const item = state.items.get(thread.conversation_id);
    const name = item ? contactName(item) : thread.phone;

    tb.clear(ui.thread);
    const head = el("header", { class: "thread-head" },
      backButton(),
      el("div", { class: "thread-title" },
        el("h2", { id: "thread-name" }, name),
        el("p", { class: "thread-sub" }, thread.phone,
          details ? [" · ", details.name] : (item && item.campaign_name ? [" · ", item.campaign_name] : null))),
      thread.opted_out ? el("span", { class: "badge badge-opted-out" }, "Opted out") : null,
      thread.holder === "escalated" ? el("span", { class: "badge badge-escalated" }, "Escalated") : null,
      (thread.tags || []).map((tag) => el("span", { class: "badge badge-tag" }, tag.name)));
    ui.thread.appendChild(head);
    if (thread.escalation_reason) {
      ui.thread.appendChild(el("p", { class: "thread-notice", id: "escalation-notice" },
        "Escalated to staff: " + thread.escalation_reason));
    }

    if (thread.opted_out) {
      ui.thread.appendChild(el("p", { class: "thread-notice thread-opted-out", id: "opted-out-notice" },
        "Opted out: this number gets no more texts."));
    } else if (thread.needs_opt_out_review) {
      ui.thread.appendChild(el("div", { class: "thread-warning", id: "opt-out-review", role: "note" },
        el("strong", null, "This reply may mean stop — decide."),
        " If they want no more texts, use “Mark opted out” below."));
    }

    const list = el("ol", { class: "messages", id: "messages", "aria-label": "Messages" });
    (thread.messages || []).forEach((message) => list.appendChild(messageNode(message)));
    if (!(thread.messages || []).length) list.appendChild(el("li", { class: "messages-empty" }, "No messages yet."));
    ui.thread.appendChild(list);

    const canReply = isTexter && !thread.opted_out;
    if (canReply) ui.thread.appendChild(replyNode(thread, details, draftText, cannedValue));
    ui.thread.appendChild(surveyNode(thread, details));
    if (canReply) ui.thread.appendChild(optOutNode(thread));
    if (isTexter && thread.holder === "texter") ui.thread.appendChild(escalateNode(thread));

    // Newest message in view (the list scrolls on its own on wide screens);
    // the page itself moves only when the thread opens or grows.
    list.scrollTop = list.scrollHeight;
    const count = (thread.messages || []).length;
    const grew = state.shownCount === null || count > state.shownCount;
    state.shownCount = count;
    const last = list.lastElementChild;
    if (grew && !hadFocus && last && last.scrollIntoView && window.matchMedia("(max-width: 760px)").matches) {
      last.scrollIntoView({ block: "nearest" });
    }
    if (hadFocus) {
      const again = document.getElementById(hadFocus);
      if (again && ui.thread.contains(again)) again.focus({ preventScroll: true });
    }
  }

  function messageNode(message) {
    const outbound = message.direction === "outbound";
    const meta = [];
    meta.push(el("time", { datetime: message.at }, tb.fmtTime(message.at)));
    if (outbound) {
      const status = message.status || "pending";
      const label = (STATUS_LABELS[status] || status) + (message.error_code ? " (error " + message.error_code + ")" : "");
      meta.push(" · ", el("span", { class: "message-status status-" + status, data: { status } }, label));
      if (message.kind && message.kind !== "initial" && message.kind !== "reply") {
        meta.push(" · ", el("span", { class: "message-kind" }, KIND_LABELS[message.kind] || message.kind));
      }
    } else if (message.keyword) {
      meta.push(" · ", el("span", { class: "message-keyword keyword-" + message.keyword }, KEYWORD_LABELS[message.keyword] || message.keyword));
    }
    return el("li", {
      class: "message message-" + message.direction,
      data: { direction: message.direction, messageId: message.message_id, status: outbound ? message.status || "pending" : null },
    },
      el("span", { class: "visually-hidden" }, outbound ? "You: " : "Them: "),
      el("p", { class: "message-text" }, message.body),
      el("p", { class: "message-meta" }, meta));
  }

  // ---- survey ----------------------------------------------------------

  function surveyNode(thread, details) {
    const questions = (details && Array.isArray(details.questions)) ? details.questions : [];
    const answers = new Map((thread.answers || []).map((a) => [a.question_id, a]));
    const section = el("section", { class: "survey", id: "survey", "aria-labelledby": "survey-title" },
      el("h3", { id: "survey-title" }, "Survey"));
    if (!questions.length) {
      if (!answers.size) return el("div", { hidden: true });
      answers.forEach((a) => section.appendChild(el("p", null, a.question_id + ": " + a.answer)));
      return section;
    }
    questions.forEach((question, index) => {
      const current = answers.get(question.id);
      const fieldId = "answer-" + index;
      if (!isTexter || thread.opted_out) {
        section.appendChild(el("p", { class: "survey-row", data: { questionId: question.id } },
          el("span", { class: "survey-question" }, question.text + (/[?:.!]$/.test(question.text) ? " " : ": ")),
          el("strong", null, current ? current.answer : "—")));
        return;
      }
      const control = (question.answers && question.answers.length)
        ? el("select", { id: fieldId, class: "survey-answer", data: { questionId: question.id } },
          el("option", { value: "" }, "—"),
          question.answers.map((a) => el("option", { value: a, selected: current && current.answer === a }, a)))
        : el("input", { id: fieldId, class: "survey-answer", type: "text", maxlength: "200", value: current ? current.answer : null, data: { questionId: question.id } });
      const save = el("button", { type: "button", class: "button survey-save", data: { questionId: question.id } }, "Save");
      const saved = el("span", { class: "survey-saved", "aria-live": "polite" }, current ? "Saved" : "");
      save.addEventListener("click", () => saveAnswer(thread.conversation_id, question.id, control, save, saved));
      control.addEventListener("change", () => { saved.textContent = ""; });
      section.appendChild(el("div", { class: "survey-row", data: { questionId: question.id } },
        el("label", { for: fieldId }, question.text), el("div", { class: "survey-controls" }, control, save, saved)));
    });
    return section;
  }

  async function saveAnswer(conversationId, questionId, control, button, saved) {
    const answer = control.value.trim();
    if (!answer) {
      saved.textContent = "Choose an answer first";
      return;
    }
    if (button.disabled) return;
    button.disabled = true;
    try {
      await tb.api("POST", "/v1/conversations/" + encodeURIComponent(conversationId) + "/answers", { question_id: questionId, answer });
      saved.textContent = "Saved";
      if (state.openId === conversationId) loadThread(conversationId);
    } catch (err) {
      tb.showError(err);
      saved.textContent = "";
    } finally {
      button.disabled = false;
    }
  }

  // ---- replying --------------------------------------------------------

  function replyNode(thread, details, draftText, cannedValue) {
    const canned = (details && details.script && Array.isArray(details.script.canned_responses)) ? details.script.canned_responses : [];
    const textarea = el("textarea", {
      id: "reply-body", name: "body", rows: "3", maxlength: "1600", class: "reply-body",
      "aria-describedby": "reply-segments",
    });
    textarea.value = draftText || "";
    const counter = el("p", { id: "reply-segments", class: "reply-segments", "aria-live": "polite" });
    const updateCounter = () => {
      const info = tb.segments(textarea.value);
      counter.textContent = info.characters
        ? info.characters + " characters · " + info.segments + (info.segments === 1 ? " segment" : " segments") + " · " + info.encoding
        : "";
    };
    updateCounter();
    const sendButton = el("button", { type: "button", id: "reply-send", class: "button button-primary" }, "Send reply");
    textarea.addEventListener("input", updateCounter);
    textarea.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        if (!e.repeat) sendReply(thread.conversation_id, { body: textarea.value }, sendButton);
      }
    });
    sendButton.addEventListener("click", () => sendReply(thread.conversation_id, { body: textarea.value }, sendButton));

    const form = el("section", { class: "reply", id: "reply", "aria-labelledby": "reply-title" },
      el("h3", { id: "reply-title", class: "visually-hidden" }, "Reply"),
      el("label", { for: "reply-body" }, "Your reply"),
      textarea,
      el("div", { class: "reply-row" }, counter, sendButton),
      el("p", { class: "reply-hint" }, "Ctrl+Enter sends."));

    if (canned.length) {
      const select = el("select", { id: "canned-select", class: "canned-select" },
        canned.map((c, index) => el("option", { value: String(index), title: c.body, selected: String(index) === cannedValue }, c.title)));
      const preview = el("p", { class: "canned-preview", id: "canned-preview" });
      const showPreview = () => {
        const chosen = canned[Number(select.value)];
        preview.textContent = chosen ? chosen.body : "";
      };
      select.addEventListener("change", showPreview);
      showPreview();
      const cannedButton = el("button", { type: "button", id: "canned-send", class: "button" }, "Send canned reply");
      cannedButton.addEventListener("click", () =>
        sendReply(thread.conversation_id, { canned_response_id: Number(select.value) }, cannedButton));
      form.appendChild(el("div", { class: "canned" },
        el("label", { for: "canned-select" }, "Canned response"),
        el("div", { class: "canned-row" }, select, cannedButton),
        preview));
    }
    return form;
  }

  function replyButtons() {
    return ["#reply-send", "#canned-send"].map((s) => tb.$(s, ui.thread)).filter(Boolean);
  }

  // One click, one message: buttons are disabled while a reply is in flight;
  // a retry of the very same reply reuses its Idempotency-Key.
  async function sendReply(conversationId, payload, button) {
    if (state.replyInFlight || button.disabled) return;
    if (payload.body !== undefined) {
      payload = { body: payload.body.trim() };
      if (!payload.body) {
        tb.showError(new Error("Type a reply first."));
        return;
      }
    }
    const what = JSON.stringify(payload);
    if (!state.replyKey || state.replyKey.conversationId !== conversationId || state.replyKey.what !== what) {
      state.replyKey = { conversationId, what, key: tb.uuid() };
    }
    const key = state.replyKey.key;
    state.replyInFlight = true;
    replyButtons().forEach((b) => { b.disabled = true; });
    const body = Object.assign({}, payload, { clicked_at: tb.serverNow() });
    try {
      await tb.api("POST", "/v1/conversations/" + encodeURIComponent(conversationId) + "/messages", body, {
        headers: { "Idempotency-Key": key },
      });
      tb.clearFlash();
      state.replyKey = null;
      const textarea = tb.$("#reply-body", ui.thread);
      if (textarea && payload.body !== undefined) textarea.value = "";
      state.replyInFlight = false;
      if (state.openId === conversationId) await loadThread(conversationId);
      const again = tb.$("#reply-body", ui.thread);
      if (again) again.focus({ preventScroll: true });
    } catch (err) {
      state.replyInFlight = false;
      tb.showError(replyError(err));
      if (err && ["opted_out", "campaign_not_open"].includes(err.code) && state.openId === conversationId) {
        loadThread(conversationId);
      }
    } finally {
      state.replyInFlight = false;
      replyButtons().forEach((b) => { b.disabled = false; });
    }
  }

  function replyError(err) {
    if (!err) return new Error("The reply was not sent.");
    const nextOpen = err.next_open || (err.details && err.details.next_open);
    switch (err.code) {
      case "opted_out":
        return new Error("Not sent: this number has opted out.");
      case "quiet_hours":
        return new Error("Not sent: it is outside texting hours for this contact." +
          (nextOpen ? " Sending reopens at " + tb.fmtTime(nextOpen) + " (your time)." : ""));
      case "campaign_not_open":
        return new Error("Not sent: the campaign is paused or closed.");
      default:
        return err;
    }
  }

  // ---- opt-out ---------------------------------------------------------

  function optOutNode(thread) {
    const box = el("section", { class: "opt-out", id: "opt-out", "aria-label": "Opt out" });
    const render = () => {
      tb.clear(box);
      if (!state.optOutConfirming) {
        box.appendChild(el("button", {
          type: "button", id: "opt-out-button", class: "button button-danger",
          on: { click: () => { state.optOutConfirming = true; render(); tb.$("#opt-out-cancel", box).focus(); } },
        }, "Mark opted out"));
        return;
      }
      const confirmButton = el("button", { type: "button", id: "opt-out-confirm", class: "button button-danger" }, "Yes, opt them out");
      confirmButton.addEventListener("click", async () => {
        if (confirmButton.disabled) return;
        confirmButton.disabled = true;
        try {
          await tb.api("POST", "/v1/conversations/" + encodeURIComponent(thread.conversation_id) + "/opt-out", {});
          state.optOutConfirming = false;
          tb.flash("Opted out: " + thread.phone + " gets no more texts.");
          if (state.openId === thread.conversation_id) loadThread(thread.conversation_id);
        } catch (err) {
          tb.showError(err);
          confirmButton.disabled = false;
        }
      });
      box.append(
        el("p", { class: "opt-out-question", id: "opt-out-question" },
          "Opt " + thread.phone + " out of all texts from " + (tb.page.orgName || "your organization") +
          "? They get one confirmation text and nothing after it."),
        el("div", { class: "opt-out-actions" }, confirmButton,
          el("button", {
            type: "button", id: "opt-out-cancel", class: "button",
            on: { click: () => { state.optOutConfirming = false; render(); tb.$("#opt-out-button", box).focus(); } },
          }, "Cancel")));
    };
    render();
    return box;
  }

  // A texter hands a hostile, legal or press reply to staff, with a reason.
  function escalateNode(thread) {
    const reason = el("input", {
      id: "escalate-reason", type: "text", maxlength: "500",
      placeholder: "Why staff should take it", "aria-label": "Reason to escalate",
    });
    const button = el("button", { type: "button", id: "escalate-button", class: "button" }, "Escalate to staff");
    button.addEventListener("click", async () => {
      if (button.disabled || !reason.value.trim()) { reason.focus(); return; }
      button.disabled = true;
      try {
        await tb.api("POST", "/v1/conversations/" + encodeURIComponent(thread.conversation_id) + "/escalate",
          { reason: reason.value.trim() });
        tb.flash("Escalated: staff will take it from here.");
        state.items.delete(thread.conversation_id);
        if (state.openId === thread.conversation_id) closeConversation();
      } catch (err) {
        tb.showError(err);
        button.disabled = false;
      }
    });
    return el("section", { class: "escalate", id: "escalate", "aria-label": "Escalate" }, reason, button);
  }

  // ---- start -----------------------------------------------------------

  async function loadTexterNames() {
    if (isTexter || !tb.can("manage_members")) return;
    try {
      const answer = await tb.api("GET", "/v1/members");
      (answer.members || []).forEach((m) => state.texterNames.set(m.member_id, m.name));
      renderList();
    } catch (err) {
      // Names are a nicety; ids stay hidden without them.
    }
  }

  function start() {
    build();
    const params = new URLSearchParams(location.search);
    if (params.get("status") === "all") {
      state.status = "all";
      ui.needsReply.setAttribute("aria-pressed", "false");
      ui.all.setAttribute("aria-pressed", "true");
    }
    loadFirstPage();
    loadTexterNames();
    // The stream pushes changes from the moment it is open; a change made
    // between the first page's read and that moment is picked up by reading
    // the first page again once the stream is open.
    const source = tb.stream("/v1/conversations/stream", onStreamEvent);
    source.addEventListener("open", mergeFirstPage);
    const wanted = params.get("conversation");
    if (wanted) openConversation(wanted, false);
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && state.openId && ui.root.classList.contains("thread-open") &&
        !(e.target && e.target.closest && e.target.closest("textarea, input, select"))) {
        if (window.matchMedia("(max-width: 760px)").matches) closeConversation();
      }
    });
  }

  start();
})();
