// textbank: the texter's send screen. One contact at a time, one click (or
// one Enter) sends exactly one message through the click-token flow. The
// next contacts are prefetched so the texter never waits.
(function () {
  "use strict";

  const tb = window.tb;
  const el = tb.el;
  const main = document.getElementById("main");

  const QUEUE_LIMIT = 20;
  const REFILL_BELOW = 5;
  // A token this close to its expiry is not shown (fetch fresh ones).
  const EXPIRY_MARGIN_MS = 15000;
  // The server refuses a click that arrives sooner than ~250 ms after the
  // message was presented; the button waits a little longer than that.
  const MIN_SHOWN_MS = 300;
  const CHECK_EXPIRY_EVERY_MS = 10000;

  const state = {
    campaigns: [],
    campaign: null,
    buffer: [], // queue items not yet shown
    current: null, // the item on screen
    handled: new Set(), // phones sent or skipped in this session
    inFlight: false,
    enterArmed: true,
    fetching: null, // the pending queue fetch (a Promise)
    fetchStartedAt: 0,
    lastRemaining: null,
    consumedSinceFetch: 0,
    hold: null,
    campaignStatus: null,
    sessionSent: 0,
    baselineSent: null,
    clicksStarted: 0,
    enableTimer: null,
    reopenTimer: null,
    generation: 0, // bumps when the campaign changes: stale answers are dropped
  };

  // ---- DOM -------------------------------------------------------------

  const ui = {};

  function build() {
    tb.clear(main);
    ui.picker = el("div", { class: "send-picker", id: "campaign-picker", hidden: true });
    ui.title = el("h1", { class: "send-title", id: "send-title" }, "Send");
    ui.progress = el("p", { id: "progress", class: "send-progress", "aria-live": "polite" }, "");
    ui.status = el("div", { id: "send-status", class: "send-status", role: "status", "aria-live": "polite" });
    // Messages that failed after the click (the carrier refused them, or
    // there was none): the texter should know, and may tell staff.
    ui.failures = el("p", { id: "send-failures", class: "send-status send-status-notice", hidden: true }, "");
    ui.name = el("h2", { id: "contact-name", class: "contact-name" }, "");
    ui.meta = el("p", { id: "contact-meta", class: "contact-meta" }, "");
    ui.body = el("div", { id: "message-body", class: "message-body", "aria-label": "Message to send" }, "");
    ui.segments = el("p", { id: "segments", class: "segments" }, "");
    ui.button = el("button", {
      id: "send-button", class: "send-button", type: "button", disabled: true,
      on: { click: onClick },
    }, "Send");
    ui.hint = el("p", { class: "send-hint", id: "send-hint" }, "Press Enter or click Send. One press sends one message.");
    ui.empty = el("div", { id: "send-empty", class: "send-empty", hidden: true });
    ui.card = el("article", {
      id: "contact-card", class: "contact-card", "aria-labelledby": "contact-name",
      data: { state: "empty" },
    }, ui.name, ui.meta, ui.body, ui.segments, ui.button, ui.hint, ui.empty);
    main.appendChild(el("section", { class: "send-page", "aria-labelledby": "send-title" },
      el("div", { class: "send-head" }, ui.title, ui.progress),
      ui.picker, ui.status, ui.failures, ui.card));
  }

  function setState(name) {
    ui.card.dataset.state = name;
  }

  function setStatus(text, kind) {
    tb.clear(ui.status);
    ui.status.className = "send-status" + (kind ? " send-status-" + kind : "");
    if (text) ui.status.appendChild(el("p", null, text));
  }

  function focusSend() {
    if (!ui.button.disabled && !ui.button.hidden) ui.button.focus({ preventScroll: true });
  }

  // ---- progress --------------------------------------------------------

  function remainingNow() {
    const onScreen = (state.current ? 1 : 0) + state.buffer.length;
    if (state.lastRemaining === null) return onScreen;
    return Math.max(onScreen, state.lastRemaining - state.consumedSinceFetch);
  }

  function renderProgress() {
    const sent = (state.baselineSent || 0) + state.sessionSent;
    ui.progress.textContent = tb.fmtNum(sent) + " sent · " + tb.fmtNum(remainingNow()) + " remaining";
  }

  // ---- queue -----------------------------------------------------------

  // When a queue item stops being usable, on this browser's clock: the
  // server's token lifetime counted from when the answer arrived here.
  function localExpiry(item, receivedAt) {
    const ttl = new Date(item.expires_at).getTime() - new Date(item.presented_at).getTime();
    return receivedAt + (Number.isFinite(ttl) ? ttl : 0);
  }

  function usable(item) {
    return item.localExpiresAt - Date.now() > EXPIRY_MARGIN_MS;
  }

  // Fetches the queue once at a time; concurrent callers share the answer.
  function fetchQueue() {
    if (state.fetching) return state.fetching;
    const generation = state.generation;
    const campaign = state.campaign;
    state.fetchStartedAt = Date.now();
    const consumedBefore = state.consumedSinceFetch;
    // A click in flight while the queue is read may or may not be in its
    // count of sent messages: such an answer leaves the count as it was.
    const clicksBefore = state.clicksStarted;
    const noClickInFlight = !state.inFlight;
    const path = "/v1/texter/queue?campaign_id=" + encodeURIComponent(campaign.campaign_id) +
      "&limit=" + QUEUE_LIMIT;
    state.fetching = tb.api("GET", path).then((queue) => {
      if (generation !== state.generation) return null;
      const receivedAt = Date.now();
      const onScreen = state.current ? state.current.phone : null;
      const fresh = (queue.messages || [])
        .filter((item) => item.phone !== onScreen && !state.handled.has(item.phone))
        .map((item) => Object.assign(item, { receivedAt, localExpiresAt: localExpiry(item, receivedAt) }));
      state.buffer = fresh;
      state.lastRemaining = queue.remaining;
      // The server's count of this texter's sent messages, as of this fetch;
      // clicks since then are added on screen.
      if (typeof queue.sent === "number" && noClickInFlight && state.clicksStarted === clicksBefore) {
        state.baselineSent = queue.sent - state.sessionSent;
      }
      // Clicks answered while this fetch ran may or may not be in its count;
      // count them as not (the next fetch corrects it).
      state.consumedSinceFetch = Math.max(0, state.consumedSinceFetch - consumedBefore);
      state.hold = queue.hold || null;
      state.campaignStatus = queue.campaign_status || null;
      renderFailures(queue.failed || 0);
      return queue;
    }).finally(() => {
      state.fetching = null;
    });
    return state.fetching;
  }

  // Refill in the background when the buffer runs low.
  function maybeRefill() {
    if (state.buffer.length >= REFILL_BELOW || state.fetching) return;
    if (state.lastRemaining !== null && remainingNow() <= state.buffer.length + (state.current ? 1 : 0)) {
      // Everything left is already here.
      return;
    }
    fetchQueue().then(() => {
      if (!state.current && !state.inFlight) showNext();
      else renderProgress();
    }).catch(() => {
      // A background refill failing is not worth an alarm: the next one retries.
    });
  }

  // ---- showing a contact -----------------------------------------------

  function takeNext() {
    while (state.buffer.length) {
      const item = state.buffer.shift();
      if (state.handled.has(item.phone)) continue;
      if (!usable(item)) continue;
      return item;
    }
    return null;
  }

  async function showNext() {
    clearTimeout(state.enableTimer);
    let item = takeNext();
    if (!item) {
      state.current = null;
      renderWaiting();
      try {
        await fetchQueue();
      } catch (err) {
        tb.showError(err);
        renderProblem("The queue could not be loaded.");
        return;
      }
      if (state.current) return; // another path showed one meanwhile
      item = takeNext();
    }
    if (!item) {
      renderNothing();
      return;
    }
    render(item);
    maybeRefill();
  }

  function render(item) {
    state.current = item;
    if (!item.idempotencyKey) item.idempotencyKey = tb.uuid();
    const name = [item.first_name, item.last_name].filter((s) => s && s.trim()).join(" ") || "(no name)";
    ui.name.textContent = name;
    tb.clear(ui.meta);
    if (item.local_time) {
      ui.meta.appendChild(document.createTextNode("Their local time: " + localClock(item.local_time)));
    }
    ui.body.textContent = item.body;
    const encoding = item.encoding === "ucs2" || item.encoding === "UCS-2" || item.encoding === "Ucs2" ? "UCS-2" : "GSM-7";
    const chars = Array.from(item.body || "").length;
    ui.segments.textContent = item.segments + (item.segments === 1 ? " segment" : " segments") +
      " · " + encoding + " · " + chars + " characters";
    ui.card.dataset.contactPhone = item.phone;
    showCardParts(true);
    renderProgress();
    // Enabled once a person could have read it (the server's too_fast rule).
    const wait = Math.max(0, MIN_SHOWN_MS - (Date.now() - item.receivedAt));
    ui.button.disabled = true;
    setState(wait > 0 ? "sending" : "ready");
    const enable = () => {
      if (state.current !== item || state.inFlight) return;
      ui.button.disabled = false;
      setState("ready");
      focusSend();
    };
    if (wait > 0) state.enableTimer = setTimeout(enable, wait);
    else enable();
  }

  // The recipient's wall clock as the server gave it (with its own offset).
  function localClock(iso) {
    const match = /T(\d{2}):(\d{2})/.exec(iso || "");
    if (!match) return "—";
    const date = new Date(Date.UTC(2000, 0, 1, Number(match[1]), Number(match[2])));
    return new Intl.DateTimeFormat(undefined, { timeStyle: "short", timeZone: "UTC" }).format(date);
  }

  function showCardParts(visible) {
    [ui.name, ui.meta, ui.body, ui.segments, ui.button, ui.hint].forEach((node) => { node.hidden = !visible; });
    ui.empty.hidden = visible;
    if (!visible) {
      ui.button.disabled = true;
      ui.name.textContent = "";
      tb.clear(ui.meta);
      ui.body.textContent = "";
      ui.segments.textContent = "";
      delete ui.card.dataset.contactPhone;
    }
  }

  function renderWaiting() {
    showCardParts(false);
    tb.clear(ui.empty).appendChild(el("p", { class: "send-loading" }, "Loading the next contact…"));
    setState("sending");
  }

  function renderProblem(text) {
    showCardParts(false);
    setState("empty");
    tb.clear(ui.empty).append(
      el("p", null, text),
      el("button", { type: "button", id: "reload-queue", class: "button", on: { click: reload } }, "Try again"),
    );
  }

  // Nothing to show: held (quiet hours, paused) or done for now.
  function renderNothing() {
    state.current = null;
    showCardParts(false);
    renderProgress();
    clearTimeout(state.reopenTimer);
    const hold = state.hold;
    tb.clear(ui.empty);
    if (hold) {
      setState("held");
      const lines = [holdText(hold)];
      if (hold.next_open) {
        lines.push("Sending reopens at " + tb.fmtTime(hold.next_open) + " (your time).");
        const wait = new Date(hold.next_open).getTime() - Date.now() + 5000;
        if (wait > 0 && wait < 24 * 3600 * 1000) state.reopenTimer = setTimeout(reload, wait);
      }
      setStatus(lines.join(" "), "held");
      ui.empty.appendChild(el("p", null, "Nothing can be sent right now."));
      ui.empty.appendChild(el("button", { type: "button", id: "check-again", class: "button", on: { click: reload } }, "Check again"));
      return;
    }
    setState("empty");
    if (state.lastRemaining === 0 || state.lastRemaining === null) {
      setStatus(state.sessionSent > 0 ? "Done: you have texted all your contacts." : "You have no contacts waiting to be texted.", "done");
      ui.empty.appendChild(el("p", null, "Ask for more contacts to keep going."));
      ui.empty.appendChild(el("button", {
        type: "button", id: "request-more", class: "button button-primary", on: { click: requestMore },
      }, "Get more contacts"));
      const button = tb.$("#request-more", ui.empty);
      if (button) button.focus({ preventScroll: true });
    } else {
      // Contacts remain but none could be offered (e.g. all were just sent).
      setStatus("Your remaining contacts are not ready yet.", null);
      ui.empty.appendChild(el("button", { type: "button", id: "check-again", class: "button", on: { click: reload } }, "Check again"));
    }
  }

  function renderFailures(failed) {
    ui.failures.hidden = failed === 0;
    ui.failures.textContent = failed === 0 ? "" :
      tb.fmtNum(failed) + " of your messages in this campaign could not be delivered. Contacts whose message never reached a carrier " +
      "are back in your queue; tell your campaign's staff if this keeps happening.";
  }

  function holdText(hold) {
    switch (hold.code) {
      case "no_carrier":
        return "Sending is on hold: your organization has no text-message carrier set up. " +
          "An owner or admin must set one up before anything can be sent.";
      case "quiet_hours":
        return "It is outside texting hours for your remaining contacts.";
      case "campaign_not_open": {
        const status = state.campaignStatus;
        if (status === "paused") return "This campaign is paused; sending is closed for now.";
        if (status) return "This campaign is " + status + "; sending is closed.";
        return "This campaign is not open for sending.";
      }
      default:
        return hold.message || "Sending is on hold.";
    }
  }

  // ---- sending ---------------------------------------------------------

  function onClick() {
    send();
  }

  function isFormControl(target) {
    if (!target || !target.closest) return false;
    if (target === ui.button) return false;
    return Boolean(target.closest("input, select, textarea, button, a, [contenteditable]"));
  }

  function onKeyDown(e) {
    if (e.key !== "Enter" || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    if (isFormControl(e.target)) return;
    if (!ui.card || ui.card.dataset.state === "empty" || ui.card.dataset.state === "held") return;
    // The key is ours: never let the browser also "click" the focused button.
    e.preventDefault();
    if (e.repeat || !state.enterArmed) return;
    if (ui.button.disabled || state.inFlight || !state.current) return;
    state.enterArmed = false;
    send();
  }

  function onKeyUp(e) {
    if (e.key === "Enter") state.enterArmed = true;
  }

  async function send() {
    const item = state.current;
    if (!item || state.inFlight || ui.button.disabled) return;
    state.inFlight = true;
    state.clicksStarted += 1;
    ui.button.disabled = true;
    setState("sending");
    const clickedAt = tb.serverNow();
    let result = null;
    let error = null;
    try {
      result = await tb.api("POST", "/v1/messages", { click_token: item.click_token, clicked_at: clickedAt }, {
        headers: { "Idempotency-Key": item.idempotencyKey },
      });
    } catch (err) {
      error = err;
    }
    state.inFlight = false;
    if (state.current !== item) return; // the campaign changed meanwhile
    if (result) {
      tb.clearFlash();
      setStatus("", null);
      consume(item, true);
      showNext();
      return;
    }
    await refused(item, error);
  }

  function consume(item, sent) {
    state.handled.add(item.phone);
    state.consumedSinceFetch += 1;
    if (sent) state.sessionSent += 1;
    state.current = null;
  }

  function contactName(item) {
    return [item.first_name, item.last_name].filter(Boolean).join(" ") || "this contact";
  }

  async function refused(item, err) {
    const code = err && err.code;
    switch (code) {
      case "opted_out":
        consume(item, false);
        setStatus("Skipped " + contactName(item) + ": they opted out of texts.", "notice");
        showNext();
        return;
      case "already_messaged":
        consume(item, false);
        setStatus("Skipped " + contactName(item) + ": they were already texted.", "notice");
        showNext();
        return;
      case "token_used":
        consume(item, false);
        setStatus("Skipped " + contactName(item) + ": this message was already sent.", "notice");
        showNext();
        return;
      case "too_fast":
        setStatus("Take a moment to read the message, then send it.", "notice");
        reenable(item);
        return;
      case "token_expired":
        setStatus("That contact's message had expired; loading fresh ones.", "notice");
        await refetchAll();
        return;
      case "quiet_hours": {
        const nextOpen = err.next_open || (err.details && err.details.next_open);
        let text = "It is now outside texting hours for " + contactName(item) + ".";
        if (nextOpen) text += " Sending reopens at " + tb.fmtTime(nextOpen) + " (your time).";
        setStatus(text, "held");
        await refetchAll(text);
        return;
      }
      case "campaign_not_open":
        state.campaignStatus = null;
        await refetchAll();
        return;
      case "no_carrier":
        setStatus("Not sent: your organization has no text-message carrier set up.", "held");
        await refetchAll();
        return;
      default:
        tb.showError(err || new Error("The message was not sent."));
        if (!err || err.status === 0 || err.status >= 500 || err.status === 429 || err.status === 409) {
          // Not sent (or not known to be): the same click can be retried
          // with the same Idempotency-Key, which never sends twice.
          reenable(item);
        } else {
          // The token is no good for this texter any more (not assigned,
          // invalid): start again from the server's queue.
          await refetchAll();
        }
    }
  }

  function reenable(item) {
    if (state.current !== item) return;
    ui.button.disabled = false;
    setState("ready");
    focusSend();
  }

  // Drops everything on screen and starts from a fresh queue.
  async function refetchAll(keepStatus) {
    state.current = null;
    state.buffer = [];
    renderWaiting();
    try {
      if (state.fetching) await state.fetching.catch(() => null);
      await fetchQueue();
    } catch (err) {
      tb.showError(err);
      renderProblem("The queue could not be loaded.");
      return;
    }
    const item = takeNext();
    if (item) {
      if (!keepStatus && state.hold === null) setStatus("", null);
      render(item);
      maybeRefill();
    } else {
      renderNothing();
    }
  }

  function reload() {
    tb.clearFlash();
    setStatus("", null);
    refetchAll();
  }

  async function requestMore() {
    const button = tb.$("#request-more");
    if (button) button.disabled = true;
    try {
      const answer = await tb.api("POST", "/v1/campaigns/" + encodeURIComponent(state.campaign.campaign_id) + "/assignments/request", {});
      if (answer && answer.assigned === 0) {
        setStatus("There are no more contacts to hand out in this campaign right now.", "done");
        if (button) button.disabled = false;
        return;
      }
      setStatus(answer ? "You got " + tb.fmtNum(answer.assigned) + " more contacts." : "", "notice");
      state.lastRemaining = null;
      await refetchAll(true);
    } catch (err) {
      if (err.code === "campaign_not_open" || err.code === "conflict") {
        await refetchAll();
        if (!state.hold) tb.showError(err);
      } else {
        tb.showError(err);
      }
      const again = tb.$("#request-more");
      if (again) again.disabled = false;
    }
  }

  // Tokens go stale while a texter is away: swap in fresh ones quietly.
  function checkExpiry() {
    if (state.inFlight || !state.current) return;
    if (!usable(state.current)) {
      refetchAll(true);
      return;
    }
    state.buffer = state.buffer.filter(usable);
    maybeRefill();
  }

  // ---- campaign choice -------------------------------------------------

  async function selectCampaign(campaign) {
    state.generation += 1;
    const generation = state.generation;
    clearTimeout(state.reopenTimer);
    Object.assign(state, {
      campaign, buffer: [], current: null, handled: new Set(), inFlight: false, fetching: null,
      lastRemaining: null, consumedSinceFetch: 0, hold: null, campaignStatus: null,
      sessionSent: 0, baselineSent: null,
    });
    ui.title.textContent = campaign.name;
    document.title = "Send · " + campaign.name;
    setStatus("", null);
    renderProgress();
    await showNext();
  }

  function renderPicker(active, selectedId) {
    tb.clear(ui.picker);
    if (active.length < 2) {
      ui.picker.hidden = true;
      return;
    }
    ui.picker.hidden = false;
    const select = el("select", {
      id: "campaign-select", name: "campaign_id",
      on: {
        change: (e) => {
          const chosen = active.find((c) => c.campaign_id === e.target.value);
          if (!chosen) return;
          const url = new URL(location.href);
          url.searchParams.set("campaign_id", chosen.campaign_id);
          history.replaceState(null, "", url);
          remember(chosen.campaign_id);
          selectCampaign(chosen);
        },
      },
    }, active.map((c) => el("option", { value: c.campaign_id, selected: c.campaign_id === selectedId }, c.name)));
    ui.picker.append(el("label", { for: "campaign-select" }, "Campaign"), select);
  }

  // The last campaign chosen here (the nav's link carries no campaign).
  const STORE_KEY = "textbank.send.campaign";
  function remember(id) {
    try { localStorage.setItem(STORE_KEY, id); } catch (err) { /* private mode */ }
  }
  function remembered() {
    try { return localStorage.getItem(STORE_KEY); } catch (err) { return null; }
  }

  async function start() {
    build();
    document.addEventListener("keydown", onKeyDown);
    document.addEventListener("keyup", onKeyUp);
    window.addEventListener("blur", () => { state.enterArmed = true; });
    setInterval(checkExpiry, CHECK_EXPIRY_EVERY_MS);

    let campaigns;
    try {
      campaigns = (await tb.api("GET", "/v1/campaigns")).campaigns || [];
    } catch (err) {
      tb.showError(err);
      renderProblem("Your campaigns could not be loaded.");
      const retry = tb.$("#reload-queue");
      if (retry) retry.addEventListener("click", () => location.reload());
      return;
    }
    const active = campaigns.filter((c) => c.status === "active");
    state.campaigns = active;
    if (!active.length) {
      ui.title.textContent = "Send";
      showCardParts(false);
      const paused = campaigns.filter((c) => c.status === "paused").map((c) => c.name);
      setState(paused.length ? "held" : "empty");
      setStatus(paused.length
        ? "No campaign is open for sending right now (paused: " + paused.join(", ") + "). Check back later."
        : "No campaign is open for sending right now. Check back later.", "held");
      tb.clear(ui.empty).appendChild(el("button", {
        type: "button", id: "check-again", class: "button", on: { click: () => location.reload() },
      }, "Check again"));
      ui.progress.hidden = true;
      return;
    }
    const wanted = new URLSearchParams(location.search).get("campaign_id");
    const chosen = active.find((c) => c.campaign_id === wanted) ||
      active.find((c) => c.campaign_id === remembered()) || active[0];
    renderPicker(active, chosen.campaign_id);
    if (active.length > 1 && wanted !== chosen.campaign_id) {
      const url = new URL(location.href);
      url.searchParams.set("campaign_id", chosen.campaign_id);
      history.replaceState(null, "", url);
    }
    await selectCampaign(chosen);
  }

  start();
})();
