// Chatwoot dashboard app → Rebound panel (served by app/sidebar/links.py, chatwoot_page).
//
// Chatwoot posts a JSON *string* to this frame on load and on request:
//   {"event": "appContext", "data": {"conversation": {...}, "contact": {...}, "currentAgent": {id, name, email}}}
// (chatwoot/chatwoot app/javascript/dashboard/components/widgets/DashboardApp/Frame.vue).
// The message is unauthenticated, so this page only forwards it: the server checks it against
// Chatwoot's API, spends the single-use page token, and answers the panel's URL.
(function () {
  "use strict";
  var root = document.getElementById("rebound-chatwoot");
  var status = document.getElementById("status");
  var retry = document.getElementById("retry");
  var allowed = (root.dataset.chatwootOrigin || "").split(" ").filter(Boolean);
  var sent = false; // the page token works once: one context per page load

  function originAllowed(origin) {
    if (!allowed.length) return true; // no origin configured: the server's check is all there is
    return allowed.some(function (pattern) {
      if (pattern.indexOf("://*.") === -1) return origin === pattern;
      var parts = pattern.split("://*.");
      return origin.indexOf(parts[0] + "://") === 0 && origin.slice(-(parts[1].length + 1)) === "." + parts[1];
    });
  }

  function fail(message) {
    status.textContent = message;
    status.className = "error";
    retry.hidden = false;
  }

  function claimFrom(payload) {
    var data = payload && payload.data;
    if (!data || payload.event !== "appContext") return null;
    var conversation = data.conversation || {};
    var contact = data.contact || (conversation.meta && conversation.meta.sender) || {};
    var agent = data.currentAgent || {};
    if (!conversation.id || !contact.email || !agent.id) return null;
    return {
      page: root.dataset.pageToken,
      conversation_id: conversation.id,
      email: contact.email,
      agent_id: agent.id,
      agent_name: agent.name || null
    };
  }

  function onMessage(event) {
    if (sent || typeof event.data !== "string" || !originAllowed(event.origin)) return;
    var payload;
    try { payload = JSON.parse(event.data); } catch (e) { return; }
    var claim = claimFrom(payload);
    if (!claim) {
      if (payload && payload.event === "appContext") fail("Open a conversation with a contact who has an email address.");
      return;
    }
    sent = true;
    status.textContent = "Checking the conversation with Chatwoot…";
    fetch(root.dataset.contextUrl, {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify(claim),
      credentials: "omit"
    }).then(function (response) {
      return response.json().then(function (body) { return {ok: response.ok, body: body}; });
    }).then(function (result) {
      if (result.ok && result.body.panel_url) {
        window.location.replace(result.body.panel_url);
      } else {
        fail((result.body.error && result.body.error.message) || "Rebound could not open the panel.");
      }
    }).catch(function () {
      fail("Rebound could not be reached.");
    });
  }

  window.addEventListener("message", onMessage);
  retry.addEventListener("click", function () { window.location.reload(); });
  // The load event may have fired before this listener existed: ask Chatwoot again.
  if (window.parent !== window) window.parent.postMessage("chatwoot-dashboard-app:fetch-info", "*");
  else fail("Open this page from Chatwoot's conversation view (Dashboard apps).");
}());
