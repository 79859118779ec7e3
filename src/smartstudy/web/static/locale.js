// Sign-up: the browser's time zone and language go with the form, so dates are shown on the
// student's clock from the first page. Fills <input data-browser="time-zone|locale">; without
// JavaScript the fields stay empty and the server uses UTC and en-GB.
(function () {
  "use strict";

  function browserTimeZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      return "";
    }
  }

  function browserLocale() {
    return (navigator.languages && navigator.languages[0]) || navigator.language || "";
  }

  function fill() {
    var values = { "time-zone": browserTimeZone(), "locale": browserLocale() };
    var inputs = document.querySelectorAll("input[data-browser]");
    for (var i = 0; i < inputs.length; i++) {
      var value = values[inputs[i].getAttribute("data-browser")];
      if (value && !inputs[i].value) { inputs[i].value = value; }
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fill);
  } else {
    fill();
  }
})();
