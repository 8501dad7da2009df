// The console's only script: progressive enhancement over pages that work without it.
// Search as you type, a refresh's progress until it finishes, and copy buttons.
"use strict";

(function () {
  function fetchPage(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } }).then(function (response) {
      return response.text().then(function (text) {
        return { ok: response.ok, doc: new DOMParser().parseFromString(text, "text/html") };
      });
    });
  }

  function swap(doc, ids) {
    ids.forEach(function (id) {
      var fresh = doc.getElementById(id);
      var current = document.getElementById(id);
      if (fresh && current) current.replaceWith(fresh);
    });
  }

  // Search as you type: the form's results region is replaced by the same page's, and the
  // address follows, so the link an agent copies is the list they see.
  function liveSearch(form) {
    var timer = null;
    var latest = 0;
    var target = form.getAttribute("data-live");
    function run() {
      var params = new URLSearchParams(new FormData(form));
      params.delete("cursor");
      var url = form.getAttribute("action") + "?" + params.toString();
      var ticket = ++latest;
      fetchPage(url).then(function (page) {
        if (ticket !== latest) return;
        swap(page.doc, [target]);
        history.replaceState(null, "", url);
      });
    }
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(run, 200);
    });
  }

  // A refresh's progress: polled until it finishes, then the page's health, history, timeline
  // and diagnosis are replaced by fresh ones, with no reload.
  function followRefresh(box) {
    var url = box.getAttribute("data-refresh-status");
    var text = box.querySelector("[data-progress-text]");
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (status) {
          text.textContent = status.text;
          if (!status.done) {
            setTimeout(poll, 700);
            return;
          }
          box.classList.add(status.succeeded ? "done" : "failed");
          var page = location.pathname;
          fetchPage(page).then(function (fresh) {
            swap(fresh.doc, ["health", "history", "timeline", "diagnosis", "tell", "actions", "accounts", "coverage"]);
            history.replaceState(null, "", page);
          });
        })
        .catch(function () { setTimeout(poll, 2000); });
    }
    poll();
  }

  function copyButton(button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        button.textContent = "Copied";
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-live]").forEach(liveSearch);
    document.querySelectorAll("[data-refresh-status]").forEach(followRefresh);
    document.querySelectorAll("button[data-copy]").forEach(copyButton);
  });
})();
