// wireframe dashboard: live updates over Server-Sent Events, and the action buttons.
// No framework, no build step. The server renders every page (escaped); this script only
// swaps the live region for a fresh rendering and posts actions with the token.
"use strict";

(function () {
  const TOKEN_KEY = "wireframe-dashboard-token";
  let version = null;
  let loading = false;
  let again = false;

  function live() {
    return document.getElementById("live");
  }

  function flash(message, isError) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message;
    box.className = isError ? "error" : "ok";
  }

  function partialUrl() {
    const url = new URL(window.location.href);
    url.searchParams.set("partial", "1");
    return url.toString();
  }

  // Fetch the live region again and swap it in (one request at a time; one more if asked meanwhile).
  async function refresh() {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    try {
      const response = await fetch(partialUrl(), { credentials: "same-origin" });
      if (response.ok) {
        const region = live();
        region.innerHTML = await response.text();
        region.dataset.refreshed = String(Date.now());
      }
    } catch (err) {
      // the server went away for a moment; the event stream reconnects by itself
    } finally {
      loading = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }

  function listen() {
    if (!window.EventSource) return;
    const status = document.getElementById("live-status");
    const source = new EventSource("/events");
    source.addEventListener("open", function () {
      if (status) { status.textContent = "●"; status.className = "live-status on"; }
    });
    source.addEventListener("error", function () {
      if (status) { status.textContent = "○"; status.className = "live-status"; }
    });
    source.addEventListener("tick", function (event) {
      const data = JSON.parse(event.data);
      if (version !== null && data.version !== version) refresh();
      version = data.version;
    });
  }

  function token() {
    return window.sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function showUnlocked() {
    const mark = document.getElementById("unlocked");
    if (mark) mark.hidden = token() === "";
  }

  function setupUnlock() {
    const form = document.getElementById("unlock");
    if (!form) return;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const input = document.getElementById("token-input");
      window.sessionStorage.setItem(TOKEN_KEY, input.value);
      input.value = "";
      showUnlocked();
      flash("token kept for this tab", false);
    });
    showUnlocked();
  }

  // Action buttons: POST with the token in a header; the answer is JSON.
  async function act(form) {
    if (token() === "") {
      flash("enter the token first (top right) to use actions", true);
      return;
    }
    let response;
    try {
      response = await fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-Wireframe-Token": token() },
      });
    } catch (err) {
      flash("the dashboard did not answer", true);
      return;
    }
    let message;
    const type = response.headers.get("content-type") || "";
    if (type.indexOf("application/json") === 0) {
      message = (await response.json()).message;
    } else {
      message = await response.text();
    }
    flash(message, !response.ok);
    refresh();
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.classList.contains("action")) {
      event.preventDefault();
      act(form);
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    setupUnlock();
    listen();
  });
})();
