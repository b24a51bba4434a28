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

  // The till's price-list filter: hides the items whose name does not contain what was typed
  // (the list is the server's; without JavaScript every item stays listed).
  document.addEventListener("input", function (event) {
    var box = event.target.closest("[data-item-filter]");
    if (!box) { return; }
    var list = document.querySelector(box.getAttribute("data-item-filter"));
    if (!list) { return; }
    var wanted = box.value.trim().toLowerCase();
    list.querySelectorAll("[data-item-name]").forEach(function (row) {
      row.hidden = wanted !== "" && row.getAttribute("data-item-name").indexOf(wanted) === -1;
    });
  });
})();

// A change that did not reach the server (no connection, a timeout, a server error) must never
// fail silently: say so next to the form and leave the form as it was. Its idempotency key is
// unchanged, so pressing the button again records the change at most once.
(function () {
  "use strict";

  function isChange(detail) {
    var verb = ((detail.requestConfig && detail.requestConfig.verb) || "get").toUpperCase();
    return verb !== "GET" && verb !== "HEAD";
  }

  function formOf(elt) {
    return (elt && (elt.closest("form") || elt)) || document.body;
  }

  function bannerFor(form) {
    var banner = form.previousElementSibling;
    if (banner && banner.classList.contains("connection-banner")) { return banner; }
    banner = document.createElement("div");
    banner.className = "alert alert-error connection-banner";
    banner.setAttribute("role", "alert");
    form.parentNode.insertBefore(banner, form);
    return banner;
  }

  function serverMessage(xhr) {
    if (!xhr || !xhr.responseText || xhr.status < 500) { return ""; }
    var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
    var alert = page.querySelector("#error-message, .error-page p:not(.eyebrow)");
    return alert ? alert.textContent.replace(/\s+/g, " ").trim() : "";
  }

  function show(event) {
    var detail = event.detail || {};
    if (!isChange(detail)) { return; }
    var form = formOf(detail.elt);
    var holder = form.closest("[data-connection-error]") || document.body;
    var message = serverMessage(detail.xhr) || holder.getAttribute("data-connection-error");
    var banner = bannerFor(form);
    banner.textContent = message;
    banner.hidden = false;
  }

  document.addEventListener("htmx:sendError", show);
  document.addEventListener("htmx:timeout", show);
  document.addEventListener("htmx:responseError", function (event) {
    if (event.detail.xhr && event.detail.xhr.status >= 500) { show(event); }
  });
  // The next answer that arrives clears the warning of that form.
  document.addEventListener("htmx:afterRequest", function (event) {
    var detail = event.detail || {};
    if (!detail.successful || !isChange(detail)) { return; }
    var form = formOf(detail.elt);
    var banner = form.previousElementSibling;
    if (banner && banner.classList.contains("connection-banner")) { banner.remove(); }
  });
})();

// Leaving a page cancels its pending htmx requests (a dashboard panel still loading): that is no
// error, but htmx would report each cancelled request as one in the console.
(function () {
  "use strict";
  var pending = new Set();
  document.addEventListener("htmx:beforeSend", function (event) {
    if (event.detail.xhr) { pending.add(event.detail.xhr); }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.xhr) { pending.delete(event.detail.xhr); }
  });
  function forget() {
    pending.forEach(function (xhr) { xhr.onabort = null; });
  }
  window.addEventListener("beforeunload", forget);
  window.addEventListener("pagehide", forget);
})();
