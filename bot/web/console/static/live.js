// Tend console: pages that keep themselves current (the inbox, a conversation) and the reply box.
// Without this file the pages still work: reload to see what is new.
"use strict";

(function () {
  // Refresh each [data-refresh] element from its [data-source] every N seconds, while the tab
  // is visible; a failed fetch (signed out, network) is retried at the next turn.
  function keepCurrent(element) {
    var seconds = parseInt(element.getAttribute("data-refresh"), 10) || 5;
    var source = element.getAttribute("data-source");
    var last = element.innerHTML;
    function refresh() {
      if (document.hidden) {
        return;
      }
      fetch(source, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.status === 401 || response.redirected) {
            window.location.reload();
            return null;
          }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html !== null && html !== undefined && html !== last) {
            var atBottom = element.scrollHeight - element.scrollTop - element.clientHeight < 40;
            element.innerHTML = html;
            last = html;
            element.setAttribute("data-updated", new Date().toISOString());
            if (atBottom) {
              element.scrollTop = element.scrollHeight;
            }
          }
        })
        .catch(function () {});
    }
    window.setInterval(refresh, seconds * 1000);
  }

  // Characters and SMS segments as the coach types (GSM-7: 160, or 153 per part; else 70/67).
  var GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡" +
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€";
  function describe(text) {
    var gsm = true;
    var length = 0;
    for (var i = 0; i < text.length; i++) {
      var ch = text.charAt(i);
      if (GSM.indexOf(ch) < 0) {
        gsm = false;
      }
      length += "^{}\\[~]|€".indexOf(ch) >= 0 ? 2 : 1;
    }
    if (!gsm) {
      length = text.length;
    }
    var single = gsm ? 160 : 70;
    var part = gsm ? 153 : 67;
    var segments = length <= single ? 1 : Math.ceil(length / part);
    return text.length + " characters, " + segments + (segments === 1 ? " text" : " texts") +
      (gsm ? "" : " (special characters: shorter texts)");
  }

  function counter(area) {
    var output = area.form.querySelector(".js-counter");
    function update() {
      output.textContent = area.value ? describe(area.value) : "";
    }
    area.addEventListener("input", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(keepCurrent);
    document.querySelectorAll("textarea.js-count").forEach(counter);
    document.querySelectorAll(".js-use-reply").forEach(function (button) {
      button.addEventListener("click", function () {
        var area = button.form.querySelector("textarea");
        area.value = button.getAttribute("data-body");
        area.dispatchEvent(new Event("input"));
        area.focus();
      });
    });
    var thread = document.getElementById("thread");
    if (thread) {
      thread.scrollTop = thread.scrollHeight;
    }
  });
})();
