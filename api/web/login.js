// Sign-in and invite pages: the only pages for people without a session.
(function () {
  "use strict";

  const errorNode = document.getElementById("login-error");
  const showError = (message) => { errorNode.textContent = message; };

  // Only paths inside the app: `next` must not send people to another site.
  function nextPath() {
    const next = new URLSearchParams(location.search).get("next") || "";
    return /^\/app(\/[A-Za-z0-9\-_/]*)?$/.test(next) ? next : "/app";
  }

  async function submitOnce(form, button, action) {
    if (button.disabled) return;
    button.disabled = true;
    showError("");
    try {
      await action();
    } catch (err) {
      if (err.code === "too_many_attempts") {
        showError("Too many failed attempts. Wait a few minutes and try again.");
      } else {
        showError(err.message || String(err));
      }
      button.disabled = false;
    }
  }

  const login = document.getElementById("login-form");
  if (login) {
    const email = document.getElementById("email");
    const password = document.getElementById("password");
    const button = document.getElementById("sign-in");
    email.focus();
    login.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!email.value.trim() || !password.value) {
        showError("Enter your email and password.");
        return;
      }
      submitOnce(login, button, async () => {
        await tb.api("POST", "/v1/sessions", { email: email.value.trim(), password: password.value }, { noRedirect: true });
        location.assign(nextPath());
      });
    });
  }

  const invite = document.getElementById("invite");
  if (invite) {
    const token = invite.dataset.token;
    const who = document.getElementById("invite-who");
    const form = document.getElementById("invite-form");
    const password = document.getElementById("new-password");
    const confirm = document.getElementById("confirm-password");
    const button = document.getElementById("set-password");
    tb.api("GET", "/v1/invites/" + encodeURIComponent(token), null, { noRedirect: true })
      .then((view) => {
        who.textContent = (view.password_reset
          ? `${view.name} (${view.email}): this is a password reset for ${view.org_name}. ` +
            `A new password replaces the old one and signs you out everywhere else. `
          : `${view.name} (${view.email}): set a password to join ${view.org_name} as ${view.role}. `) +
          `This link works until ${tb.fmtTime(view.expires_at)}.`;
        form.hidden = false;
        password.focus();
      })
      .catch(() => {
        who.textContent = "This invite link is not valid: it may have been used already or have expired. Ask your admin for a new one.";
      });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (password.value !== confirm.value) {
        showError("The two passwords differ.");
        return;
      }
      submitOnce(form, button, async () => {
        await tb.api("POST", "/v1/invites/" + encodeURIComponent(token), { password: password.value }, { noRedirect: true });
        location.assign("/app");
      });
    });
  }
})();
