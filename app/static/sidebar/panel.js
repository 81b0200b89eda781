// The panel's only script, loaded with htmx (the panel works without either).
// After each swap: keep the htmx request header in step with the token the new fragment carries
// (the server refreshes it on every response), and move keyboard focus to what just changed.
(function () {
  "use strict";
  document.addEventListener("htmx:afterSettle", function () {
    var panel = document.getElementById("panel");
    if (!panel) { return; }
    var token = panel.getAttribute("data-panel-token");
    if (token) {
      document.body.setAttribute("hx-headers", JSON.stringify({"X-Panel-Token": token}));
    }
    var target = panel.querySelector("[data-focus]");
    var result = document.getElementById("panel-result");
    if (!target && result && result.textContent.trim()) { target = result; }
    if (target) { target.focus(); }
  });
})();
