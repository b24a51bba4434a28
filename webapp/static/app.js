// Behaviour lives here, never inline, so the Content-Security-Policy can forbid inline script.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // htmx sends the CSRF token as a header on every request that changes something.
  document.addEventListener("htmx:configRequest", function (event) {
    var method = (event.detail.verb || "get").toUpperCase();
    if (method !== "GET" && method !== "HEAD") {
      event.detail.headers["X-CSRFToken"] = csrfToken();
    }
  });

  // A fragment may carry a fresh token (after sign-in); keep the meta tag current.
  document.addEventListener("htmx:afterSwap", function () {
    var fresh = document.querySelector("[data-csrf-refresh]");
    if (fresh) {
      document.querySelector('meta[name="csrf-token"]').setAttribute("content", fresh.getAttribute("data-csrf-refresh"));
      fresh.removeAttribute("data-csrf-refresh");
    }
    focusFirstError();
  });

  function focusFirstError() {
    var invalid = document.querySelector("[aria-invalid='true']");
    if (invalid) { invalid.focus(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.documentElement.classList.add("js");
    document.querySelectorAll("[data-autosubmit]").forEach(function (el) {
      el.addEventListener("change", function () { el.form.submit(); });
    });
    focusFirstError();
    revealCurrentTab();
  });

  // On a phone the business tabs scroll sideways: if the current one is cut off, bring it into
  // view (sideways only, so a reload that restores the page further down is not scrolled back up).
  function revealCurrentTab() {
    document.querySelectorAll(".subnav .wrap").forEach(function (strip) {
      var current = strip.querySelector('[aria-current="page"]');
      if (!current) { return; }
      var tab = current.getBoundingClientRect();
      var box = strip.getBoundingClientRect();
      if (tab.right > box.right) {
        strip.scrollLeft += tab.right - box.right + 24;
      } else if (tab.left < box.left) {
        strip.scrollLeft -= box.left - tab.left + 24;
      }
    });
  }

  // Copy-to-clipboard buttons: <button data-copy="text">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button || !navigator.clipboard) { return; }
    event.preventDefault();
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
      var original = button.textContent;
      button.textContent = button.getAttribute("data-copied") || "Copied";
      setTimeout(function () { button.textContent = original; }, 1500);
    });
  });

  // Confirmation for destructive buttons: <button data-confirm="Are you sure?">.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  }, true);

  // "Use maximum" at the till fills the points field with the allowed maximum.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-fill-target]");
    if (!button) { return; }
    event.preventDefault();
    var input = document.getElementById(button.getAttribute("data-fill-target"));
    if (input) {
      input.value = button.getAttribute("data-fill-value");
      input.dispatchEvent(new Event("input", { bubbles: true }));
    }
  });
})();
