// Tend console: small enhancements over plain forms. Every action works without this file.
"use strict";

(function () {
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function announce(text) {
    var live = document.getElementById("live");
    if (live) {
      live.textContent = text;
    }
  }

  // POST a form with fetch, the CSRF token in a header; resolves to the JSON answer.
  function post(form) {
    return fetch(form.action, {
      method: "POST",
      headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() },
      body: new FormData(form),
      credentials: "same-origin",
    }).then(function (response) {
      if (response.status === 401) {
        window.location.reload();  // signed out: the reload shows the sign-in page
        throw new Error("signed out");
      }
      return response.json().then(function (data) {
        if (!response.ok) {
          throw new Error(data.error || "the request failed");
        }
        return data;
      });
    });
  }

  // Reveal a phone number in place; the server writes the view to the audit log.
  function reveal(form) {
    var button = form.querySelector("button");
    var phone = document.getElementById("phone");
    button.disabled = true;
    post(form).then(function (data) {
      phone.textContent = data.phone;
      phone.setAttribute("data-revealed", "yes");
      form.remove();
      var hint = document.getElementById("reveal-hint");
      if (hint) {
        hint.textContent = "Shown to you; this view is in the audit log.";
      }
      announce("Phone number shown: " + data.phone);
    }).catch(function (error) {
      button.disabled = false;
      announce("Could not show the number: " + error.message);
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    if (form.classList.contains("js-reveal") && window.fetch) {
      event.preventDefault();
      reveal(form);
    }
  });
})();
