// Telemetry -> Troubleshoot delivery: opens the event stream of
// GET /api/troubleshoot/delivery/{recipient}?token= and adds one row per step.
// The stream ends after its "verdict" event; the source is closed then, or EventSource
// would reconnect and run it all again. A token opens one stream: the page's own serves
// the first run, each later run asks for a new one.
(function () {
  "use strict";
  const form = document.getElementById("troubleshoot-form");
  if (!form) return;
  const body = document.querySelector("#troubleshoot-steps tbody");
  const status = document.getElementById("troubleshoot-status");
  let source = null;
  let pageToken = form.dataset.token;

  function freshToken() {
    if (pageToken) {
      const token = pageToken;
      pageToken = null;
      return Promise.resolve(token);
    }
    return fetch(form.dataset.tokenUrl, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) throw new Error("token " + response.status);
      return response.json().then(function (body) { return body.data; });
    });
  }

  function row(cells, outcome) {
    const tr = document.createElement("tr");
    tr.className = "step-" + outcome;
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }

  // Each run has a number: a token that arrives after a newer run started, or events of
  // a source a newer run replaced, are ignored.
  let runs = 0;

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const run = ++runs;
    if (source) source.close();
    source = null;
    body.replaceChildren();
    const recipient = document.getElementById("troubleshoot-recipient").value.trim();
    status.textContent = "Running…";
    status.className = "";
    freshToken().then(function (token) {
      if (run !== runs) return;
      stream(run, form.dataset.stream.replace("RECIPIENT", encodeURIComponent(recipient)) +
        "?token=" + encodeURIComponent(token));
    }, function () {
      if (run !== runs) return;
      status.textContent = "No troubleshooting token could be had (reload the page).";
    });
  });

  function stream(run, url) {
    const events = new EventSource(url);
    source = events;
    events.addEventListener("step", function (e) {
      if (run !== runs) return;
      const step = JSON.parse(e.data);
      row([step.step, step.outcome, step.detail, String(step.elapsedMs)], step.outcome);
    });
    events.addEventListener("verdict", function (e) {
      events.close();
      if (run !== runs) return;
      const verdict = JSON.parse(e.data);
      status.textContent = verdict.outcome.toUpperCase() + ": " + verdict.detail +
        " (" + verdict.elapsedMs + " ms)";
      status.className = "verdict-" + verdict.outcome;
    });
    events.onerror = function () {
      if (events.readyState !== EventSource.CLOSED) events.close();
      if (run === runs && status.textContent === "Running…") {
        status.textContent = "The stream failed (token expired? reload the page).";
      }
    };
  }
  if (document.getElementById("troubleshoot-recipient").value) form.requestSubmit();
})();
