// Small enhancements; every page also works without them.
//  - a subject <select data-filters="TOPIC-SELECT-ID"> narrows the topic list;
//  - the study timer (Start / Pause / Resume) fills in the time fields of the form;
//  - forms with data-confirm ask before they are sent;
//  - an error summary takes the focus, so keyboard and screen-reader users land on it;
//  - a table wider than its box becomes a labelled, focusable scroll region with a hint, and
//    the cells of a table.cards get their column's name (shown as a card on a phone);
//  - on a task: S starts, pauses and resumes the timer, C marks correct, W marks wrong.
(function () {
  "use strict";

  function filterTopics(subjectSelect) {
    var topic = document.getElementById(subjectSelect.getAttribute("data-filters"));
    if (!topic) { return; }
    var subject = subjectSelect.value;
    var groups = topic.querySelectorAll("optgroup");
    for (var i = 0; i < groups.length; i++) {
      var show = !subject || groups[i].getAttribute("data-subject") === subject;
      groups[i].hidden = !show;
      groups[i].disabled = !show;
    }
    var chosen = topic.options[topic.selectedIndex];
    if (chosen && chosen.value && subject && chosen.getAttribute("data-subject") !== subject) {
      topic.value = "";
    }
  }

  function setUpFilters() {
    var selects = document.querySelectorAll("select[data-filters]");
    for (var i = 0; i < selects.length; i++) {
      (function (s) {
        s.addEventListener("change", function () { filterTopics(s); });
        filterTopics(s);
      })(selects[i]);
    }
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function clock(ms) {
    var total = Math.floor(ms / 1000);
    var h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    return (h ? h + ":" + pad(m) : pad(m)) + ":" + pad(s);
  }

  function setUpTimer() {
    var display = document.getElementById("timer");
    if (!display) { return; }
    var key = "smartstudy-timer-" + display.getAttribute("data-task");
    var start = document.getElementById("timer-start");
    var pause = document.getElementById("timer-pause");
    var resume = document.getElementById("timer-resume");
    var status = document.getElementById("timer-status");
    var minutes = document.getElementById("f-minutes");
    var seconds = document.getElementById("f-seconds");
    var form = document.getElementById("complete-form");
    var typed = Boolean((minutes && minutes.value) || (seconds && seconds.value));
    var state = { elapsed: 0, since: null, started: false };
    try {
      var saved = JSON.parse(window.localStorage.getItem(key) || "null");
      if (saved) { state = saved; }
    } catch (e) { /* private mode: the timer simply does not survive a reload */ }

    function save() {
      try { window.localStorage.setItem(key, JSON.stringify(state)); } catch (e) { /* ignore */ }
    }
    function elapsed() {
      return state.elapsed + (state.since ? Date.now() - state.since : 0);
    }
    function fill() {
      if (typed || !minutes || !seconds) { return; }
      // Whole seconds, as the clock shows them (at least 1: a task takes some time).
      var total = Math.max(1, Math.floor(elapsed() / 1000));
      minutes.value = String(Math.floor(total / 60));
      seconds.value = String(total % 60);
    }
    function show() {
      display.textContent = clock(elapsed());
      start.hidden = state.started;
      pause.hidden = !state.since;
      resume.hidden = !state.started || Boolean(state.since);
      display.classList.toggle("running", Boolean(state.since));
      if (state.started) { fill(); }
    }
    function say(text) { if (status) { status.textContent = text; } }

    start.addEventListener("click", function () {
      state = { elapsed: 0, since: Date.now(), started: true };
      save();
      show();
      pause.focus();
      say("Timer running.");
      var headers = { "X-CSRF-Token": display.getAttribute("data-csrf") };
      window.fetch(display.getAttribute("data-start-url"), {
        method: "POST", headers: headers, credentials: "same-origin"
      }).catch(function () { /* the start time is a nicety; the result counts */ });
    });
    pause.addEventListener("click", function () {
      state.elapsed = elapsed();
      state.since = null;
      save();
      show();
      resume.focus();
      say("Paused at " + clock(state.elapsed) + ".");
    });
    resume.addEventListener("click", function () {
      state.since = Date.now();
      save();
      show();
      pause.focus();
      say("Timer running.");
    });
    [minutes, seconds].forEach(function (input) {
      // Typed values win over the clock; emptying both fields hands them back to it.
      if (input) {
        input.addEventListener("input", function () {
          typed = Boolean((minutes && minutes.value) || (seconds && seconds.value));
        });
      }
    });
    if (form) {
      form.addEventListener("submit", function () {
        if (state.started) {
          fill();
          try { window.localStorage.removeItem(key); } catch (e) { /* ignore */ }
        }
      });
    }
    show();
    window.setInterval(function () { if (state.since) { show(); } }, 250);
  }

  function labelOf(cell) {
    var copy = cell.cloneNode(true);
    var hidden = copy.querySelectorAll("[aria-hidden=true]");
    for (var i = 0; i < hidden.length; i++) { hidden[i].parentNode.removeChild(hidden[i]); }
    return copy.textContent.replace(/\s+/g, " ").trim();
  }

  function cardLabels(table) {
    var heads = table.querySelectorAll("thead th");
    var rows = table.querySelectorAll("tbody tr");
    for (var r = 0; r < rows.length; r++) {
      var cells = rows[r].children;
      for (var c = 0; c < cells.length && c < heads.length; c++) {
        cells[c].setAttribute("data-label", labelOf(heads[c]));
      }
    }
  }

  function tableName(wrap) {
    var caption = wrap.querySelector("caption");
    var section = wrap.closest("section, details");
    var heading = section && section.querySelector("h2, h3, summary");
    var text = caption || heading;
    return text ? text.textContent.replace(/\s+/g, " ").trim() : "Table";
  }

  function markScrolling(wrap) {
    var scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
    var hint = wrap.previousElementSibling;
    var hasHint = hint && hint.classList.contains("scroll-hint");
    wrap.classList.toggle("scrolls", scrolls);
    if (scrolls) {
      wrap.setAttribute("tabindex", "0");
      wrap.setAttribute("role", "region");
      wrap.setAttribute("aria-label", tableName(wrap) + " (scrolls sideways)");
      if (!hasHint) {
        hint = document.createElement("p");
        hint.className = "scroll-hint";
        hint.setAttribute("aria-hidden", "true");
        hint.textContent = "More columns to the right: scroll sideways \u2192";
        wrap.parentNode.insertBefore(hint, wrap);
      }
    } else {
      wrap.removeAttribute("tabindex");
      wrap.removeAttribute("role");
      wrap.removeAttribute("aria-label");
      if (hasHint) { hint.parentNode.removeChild(hint); }
    }
  }

  function setUpTables() {
    var cards = document.querySelectorAll("table.cards");
    for (var i = 0; i < cards.length; i++) { cardLabels(cards[i]); }
    var wraps = document.querySelectorAll(".table-wrap");
    function markAll() {
      for (var j = 0; j < wraps.length; j++) { markScrolling(wraps[j]); }
    }
    markAll();
    window.addEventListener("resize", markAll);
    // Tables inside a closed <details> have no width until it is opened.
    var details = document.querySelectorAll("details");
    for (var k = 0; k < details.length; k++) { details[k].addEventListener("toggle", markAll); }
  }

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function setUpShortcuts() {
    var start = document.getElementById("timer-start");
    if (!start) { return; }
    var keys = {
      s: function () {
        var buttons = ["timer-start", "timer-pause", "timer-resume"];
        for (var i = 0; i < buttons.length; i++) {
          var b = document.getElementById(buttons[i]);
          if (b && !b.hidden) { b.click(); return; }
        }
      },
      c: function () { document.getElementById("mark-correct").click(); },
      w: function () { document.getElementById("mark-wrong").click(); }
    };
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || event.repeat || typing(event.target)) { return; }
      var action = keys[(event.key || "").toLowerCase()];
      if (action) {
        event.preventDefault();
        action();
      }
    });
  }

  function setUpConfirm() {
    var forms = document.querySelectorAll("form[data-confirm]");
    for (var i = 0; i < forms.length; i++) {
      forms[i].addEventListener("submit", function (event) {
        if (!window.confirm(this.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    }
  }

  function focusErrors() {
    var summary = document.querySelector(".error-summary");
    if (summary) {
      if (!summary.hasAttribute("tabindex")) { summary.setAttribute("tabindex", "-1"); }
      summary.focus();
    }
  }

  function init() {
    setUpFilters();
    setUpTimer();
    setUpConfirm();
    setUpTables();
    setUpShortcuts();
    focusErrors();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
