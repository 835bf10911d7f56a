// Enrolling participants: only the chosen program's fields and columns are shown, a file too
// large is caught before it is sent, and an import's progress is followed from its JSON.
// Both pages work without this file (every program is shown; reload to see the progress).
"use strict";

(function () {
  function announce(text) {
    var live = document.getElementById("live");
    if (live) {
      live.textContent = text;
    }
  }

  // [data-program] elements belong to one program: shown only while it is the one chosen.
  function showProgram(select) {
    document.querySelectorAll("[data-program]").forEach(function (element) {
      element.hidden = element.getAttribute("data-program") !== select.value;
    });
  }

  function checkSize(form, event) {
    var input = form.querySelector("input[type=file][data-max-bytes]");
    var file = input && input.files && input.files[0];
    var limit = input ? parseInt(input.getAttribute("data-max-bytes"), 10) : 0;
    if (!file || file.size <= limit) {
      return;
    }
    event.preventDefault();
    var error = document.getElementById("file-size-error") || document.createElement("p");
    error.id = "file-size-error";
    error.className = "error";
    error.textContent = "This file is larger than " + Math.round(limit / 1048576) +
      " MB. Split it into smaller files and upload each one.";
    input.parentNode.appendChild(error);
    input.setAttribute("aria-describedby", error.id);
    input.focus();
  }

  function row(failure) {
    var tr = document.createElement("tr");
    [["Row", failure.row], ["Number", failure.phone], ["What to fix", failure.reason]]
      .forEach(function (cell) {
        var td = document.createElement("td");
        td.setAttribute("data-label", cell[0]);
        td.textContent = cell[1];
        tr.appendChild(td);
      });
    tr.children[1].className = "mono";
    return tr;
  }

  function finish(section, data) {
    var part = function (name) { return section.querySelector('[data-part="' + name + '"]'); };
    var rows = part("failure-rows");
    rows.textContent = "";
    data.failures.forEach(function (failure) { rows.appendChild(row(failure)); });
    part("failures").hidden = !data.failed;
    part("more").hidden = data.failed <= data.failures.length;
    part("all-good").hidden = Boolean(data.failed) || data.state !== "done";
    section.setAttribute("data-finished", "yes");
    announce(data.message + " " + data.enrolled + " enrolled, " + data.skipped +
      " already enrolled, " + data.failed + " could not be enrolled.");
    section.focus();
  }

  function show(section, data) {
    var bar = section.querySelector("progress");
    bar.max = Math.max(data.total, 1);
    bar.value = data.done;
    ["done", "enrolled", "skipped", "failed", "message"].forEach(function (name) {
      section.querySelector('[data-field="' + name + '"]').textContent = data[name];
    });
    section.querySelector('[data-field="message"]').classList.toggle(
      "error", data.stalled || data.state === "stopped");
    section.querySelector('[data-tone="failed"]').classList.toggle("count-failed",
      data.failed > 0);
    if (data.finished) {
      finish(section, data);
    }
  }

  // Poll the import's progress every second until it has finished (more slowly if stalled).
  function follow(section) {
    var url = section.getAttribute("data-progress-url");
    function poll() {
      fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (response.status === 401) {
            window.location.reload();  // signed out: the reload shows the sign-in page
            throw new Error("signed out");
          }
          return response.json().then(function (data) {
            if (!response.ok) {
              var failure = new Error(data.error || "the console did not answer");
              failure.final = response.status === 404;  // gone: asking again will not help
              throw failure;
            }
            return data;
          });
        })
        .then(function (data) {
          show(section, data);
          if (!data.finished) {
            window.setTimeout(poll, data.stalled ? 5000 : 1000);
          }
        })
        .catch(function (error) {
          var message = section.querySelector('[data-field="message"]');
          if (error.final) {
            message.textContent = error.message;
            return;
          }
          message.textContent = "Lost touch with the console (" + error.message +
            "); trying again…";
          window.setTimeout(poll, 5000);
        });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var select = document.querySelector("select[name=program]");
    if (select) {
      showProgram(select);
      select.addEventListener("change", function () { showProgram(select); });
    }
    document.querySelectorAll("form[enctype='multipart/form-data']").forEach(function (form) {
      form.addEventListener("submit", function (event) { checkSize(form, event); });
    });
    var run = document.querySelector(".import-run[data-finished=no]");
    if (run && window.fetch) {
      follow(run);
    }
  });
})();
