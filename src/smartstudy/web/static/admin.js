// The admin models page: the training runs table follows its runs without a reload (issue 16).
//  - "Train now" is sent in the background: the page stays, its notice is read out in the
//    polite live region #runs-live and the new run appears in the table;
//  - while a run is queued or running, the rows of <table data-live="URL"> (JSON:
//    {runs, active}) are read every 2 s, updated in place (matched by data-run) and new runs
//    are added on top;
//  - when a run it watched ends, #runs-live says so ("Training finished: 3 versions stored." /
//    "Training failed: ..."); polling stops when nothing is queued or running, or on an error.
// Without this script the form posts and the page shows the run after the redirect.
(function () {
  "use strict";

  var INTERVAL_MS = 2000;
  var CELLS = ["run-started", "run-status", "num run-took", "small run-summary"];

  function element(tag, className, value) {
    var el = document.createElement(tag);
    if (className) { el.className = className; }
    el.textContent = value || "";
    return el;
  }

  function fill(row, run) {
    row.setAttribute("data-status", run.status);
    row.querySelector(".run-started").textContent = run.started;
    var status = row.querySelector(".run-status");
    status.textContent = "";
    status.appendChild(element("span", "badge " + run.badge, run.status));
    if (run.attempts > 1) {
      status.appendChild(document.createTextNode(" "));
      status.appendChild(element("span", "small", "attempt " + run.attempts));
    }
    row.querySelector(".run-took").textContent = run.took;
    var summary = row.querySelector(".run-summary");
    summary.textContent = run.summary;
    if (run.error) {
      summary.appendChild(document.createElement("br"));
      summary.appendChild(element("span", "error-text", run.error));
    }
  }

  function newRow(run) {
    var row = document.createElement("tr");
    row.setAttribute("data-run", run.id);
    for (var i = 0; i < CELLS.length; i++) { row.appendChild(element("td", CELLS[i])); }
    return row;
  }

  function setUp() {
    var table = document.querySelector("table[data-live]");
    var live = document.getElementById("runs-live");
    if (!table || !live || !window.fetch) { return; }
    var body = table.tBodies[0];
    var watched = {};     // run id -> true: seen queued or running, its end is announced
    var announceNew = false;  // after "Train now": a new run's end is announced however fast
    var timer = null;

    function rows() {
      var found = {};
      var all = body.querySelectorAll("tr[data-run]");
      for (var i = 0; i < all.length; i++) { found[all[i].getAttribute("data-run")] = all[i]; }
      return found;
    }

    function show(rowsShown) {
      // The table is hidden (and "No training has run yet." shown) until there is a run.
      var wrap = document.getElementById("training-runs-wrap");
      var empty = document.getElementById("training-runs-empty");
      if (rowsShown && wrap) { wrap.hidden = false; }
      if (rowsShown && empty) { empty.hidden = true; }
    }

    function update(data) {
      var known = rows();
      var said = [];
      var before = body.firstChild;
      for (var i = 0; i < data.runs.length; i++) {
        var run = data.runs[i];
        var row = known[run.id];
        var isNew = !row;
        if (isNew) {
          row = newRow(run);
          body.insertBefore(row, before);  // in the server's order: newest first
        }
        var announce = isNew && announceNew;
        if (isNew) { announceNew = false; }
        before = row.nextSibling;
        fill(row, run);
        if (run.active) {
          watched[run.id] = true;
        } else if (watched[run.id] || announce) {
          delete watched[run.id];
          if (run.outcome) { said.push(run.outcome); }
        }
      }
      show(data.runs.length > 0);
      if (said.length) { live.textContent = said.join(" "); }
    }

    function schedule(delay) {
      if (timer !== null) { window.clearTimeout(timer); }
      timer = window.setTimeout(poll, delay);
    }

    function poll() {
      timer = null;
      window.fetch(table.getAttribute("data-live"), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        cache: "no-store"
      }).then(function (response) {
        var type = response.headers.get("content-type") || "";
        if (!response.ok || type.indexOf("application/json") !== 0) {
          throw new Error("status " + response.status);
        }
        return response.json();
      }).then(function (data) {
        update(data);
        if (data.active) { schedule(INTERVAL_MS); } else { watched = {}; }
      }).catch(function () {
        live.textContent = "Live updates of the training runs stopped: reload the page to see the latest.";
      });
    }

    function trainInBackground(form) {
      var button = form.querySelector("button[type=submit]");
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        if (button) { button.disabled = true; }
        window.fetch(form.action, {
          method: "POST",
          credentials: "same-origin",
          body: new URLSearchParams(new FormData(form))
        }).then(function (response) {
          if (!response.ok) { throw new Error("status " + response.status); }
          var done = new URL(response.url).searchParams.get("done");
          return response.text().then(function (html) {
            // The server's notice on the page it redirected to: queued, or nothing new.
            var page = new DOMParser().parseFromString(html, "text/html");
            var notice = page.querySelector("main .notice");
            live.textContent = notice ? notice.textContent : "";
            if (done === "training") {
              announceNew = true;
              schedule(0);
            }
          });
        }).catch(function (error) {
          live.textContent = "Training was not started (" + error.message + "): reload the page and try again.";
        }).then(function () {
          if (button) { button.disabled = false; }
        });
      });
    }

    var train = document.querySelector("form[data-train]");
    if (train) { trainInBackground(train); }
    var all = body.querySelectorAll("tr[data-run]");
    for (var i = 0; i < all.length; i++) {
      var status = all[i].getAttribute("data-status");
      if (status === "queued" || status === "running") { watched[all[i].getAttribute("data-run")] = true; }
    }
    if (Object.keys(watched).length) { schedule(INTERVAL_MS); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
