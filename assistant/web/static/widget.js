/* KI-Rollen-Assistent widget loader: a floating chat button that opens the assistant in an iframe.
   Paste <script src="https://<assistant-host>/widget.js" data-token="<JWT>" defer></script> into an
   intranet page; the token (signed by the intranet: sub, groups, exp) decides which documents the
   employee may see. Without it the widget answers from documents for everyone. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__kiRollenAssistent) { return; }
  window.__kiRollenAssistent = true;
  var base = script.src.replace(/\/widget\.js(\?.*)?$/, "");
  var lang = (navigator.language || "de").slice(0, 2) === "en" ? "en" : "de";
  var label = lang === "en" ? "Ask the AI assistant" : "KI-Assistent fragen";

  var button = document.createElement("button");
  button.type = "button";
  button.id = "ki-assistent-button";
  button.setAttribute("aria-label", label);
  button.setAttribute("aria-expanded", "false");
  button.title = label;
  // An inline icon: an emoji needs a font the intranet PCs may not have.
  button.innerHTML = '<svg width="28" height="28" viewBox="0 0 24 24" fill="none" stroke="currentColor" ' +
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">' +
    '<path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/></svg>';
  button.style.cssText = "position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;" +
    "border:none;background:#2563eb;color:#fff;cursor:pointer;display:flex;align-items:center;justify-content:center;" +
    "box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000";

  var panel = document.createElement("div");
  panel.id = "ki-assistent-panel";
  // 380x600 on a desktop; on a phone the whole screen above the button.
  var phone = window.matchMedia && window.matchMedia("(max-width: 480px)").matches;
  panel.style.cssText = (phone
      ? "position:fixed;left:0;right:0;top:0;bottom:84px;width:100vw;"
      : "position:fixed;right:20px;bottom:88px;width:min(380px,calc(100vw - 24px));" +
        "height:min(600px,calc(100vh - 100px));border-radius:12px;") +
    "display:none;overflow:hidden;box-shadow:0 8px 30px rgba(0,0,0,.3);background:#fff;" +
    "z-index:2147483000";
  var frame = null;
  var blocked = lang === "en" ? "This assistant is not enabled for this page."
    : "Dieser Assistent ist für diese Seite nicht freigegeben.";

  // The assistant answers only pages of the origins it lists (ASSISTANT_EMBED_ORIGINS). Ask
  // first: a page that is not listed gets one line instead of a broken frame.
  function checkAllowed(done) {
    if (!window.fetch) { done(true); return; }
    fetch(base + "/api/embed-check", { mode: "cors", credentials: "omit" })
      .then(function (response) { done(response.ok); })
      .catch(function (error) {
        console.warn("KI-Rollen-Assistent: " + window.location.origin + " is not in the " +
          "assistant's ASSISTANT_EMBED_ORIGINS (or the assistant is unreachable): " + error);
        done(false);
      });
  }

  function showBlocked() {
    var line = document.createElement("p");
    line.id = "ki-assistent-blocked";
    line.textContent = blocked;
    line.style.cssText = "margin:0;padding:16px;font:15px system-ui,sans-serif;color:#1f2937";
    panel.style.height = "auto";
    panel.style.bottom = "88px";
    panel.style.top = "auto";
    panel.appendChild(line);
  }

  button.addEventListener("click", function () {
    var open = panel.style.display === "none";
    if (open && frame === null) {
      frame = false;  // checking
      checkAllowed(function (allowed) {
        if (!allowed) { showBlocked(); return; }
        openFrame();
      });
    }
    panel.style.display = open ? "block" : "none";
    button.setAttribute("aria-expanded", String(open));
  });

  function openFrame() {
    frame = document.createElement("iframe");
    frame.id = "ki-assistent-frame";
    frame.title = label;
    // The intranet passes the signed-in employee as a short-lived token: data-token="<JWT>".
    // It travels in the fragment: browsers never send that to a server, so the token stays out
    // of access logs and Referer headers; the chat reads it on load.
    var token = script.getAttribute("data-token");
    frame.src = base + "/embed/" + (token ? "#token=" + encodeURIComponent(token) : "");
    frame.style.cssText = "width:100%;height:100%;border:0";
    panel.appendChild(frame);
  }

  function mount() { document.body.appendChild(panel); document.body.appendChild(button); }
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
