// Small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // "/" focuses the search box of the page (if any), Esc closes open menus and dialogs.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
    if (event.key === "/" && !typing) {
      var search = document.querySelector("main [data-search]") || document.querySelector("[data-search]");
      if (search) { event.preventDefault(); search.focus(); }
    } else if (event.key === "Escape") {
      document.querySelectorAll("details.dropdown[open]").forEach(function (d) { d.removeAttribute("open"); });
    }
  });

  // Dangerous actions ask once.
  document.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    var message = (submitter && submitter.dataset.confirm) || event.target.dataset.confirm;
    if (message && !window.confirm(message)) { event.preventDefault(); }
  }, true);

  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-autosubmit]")) { event.target.form.requestSubmit(); }
  });

  document.addEventListener("focusin", function (event) {
    if (event.target.matches("[data-select-on-focus]")) { event.target.select(); }
  });

  document.addEventListener("click", function (event) {
    var copy = event.target.closest("[data-copy]");
    if (!copy) { return; }
    var source = document.querySelector(copy.dataset.copy);
    if (!source) { return; }
    source.select();
    var done = function () { copy.textContent = "Copied"; };
    if (navigator.clipboard) { navigator.clipboard.writeText(source.value).then(done, function () { document.execCommand("copy"); done(); }); }
    else { document.execCommand("copy"); done(); }
  });

  document.addEventListener("click", function (event) {
    if (!event.target.matches("[data-theme-toggle]")) { return; }
    var root = document.documentElement;
    var dark = root.dataset.theme === "dark" ||
      (root.dataset.theme !== "light" && window.matchMedia("(prefers-color-scheme: dark)").matches);
    root.dataset.theme = dark ? "light" : "dark";
    document.cookie = "theme=" + root.dataset.theme + ";path=/;max-age=31536000;samesite=lax";
  });

  // Live logs follow the tail unless the reader scrolled up.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var log = document.getElementById("job-log");
    if (log) { log.dataset.follow = String(log.scrollHeight - log.scrollTop - log.clientHeight < 40); }
  });
  document.addEventListener("htmx:oobAfterSwap", function () {
    var log = document.getElementById("job-log");
    if (log && log.dataset.follow !== "false") { log.scrollTop = log.scrollHeight; }
  });
})();
