// Draws every chart on the page: a <div data-figure="ID"> and, in
// <script type="application/json" id="ID">, the figure built on the server.
// When the window's width changes, each chart is drawn again from that figure, not resized
// in place: a legend that wrapped onto two rows at phone width keeps the margins it needed
// there after a resize, and ends up over the plot.
(function () {
  "use strict";
  function figureOf(el) {
    var source = document.getElementById(el.getAttribute("data-figure"));
    return source ? JSON.parse(source.textContent) : null;
  }
  function draw(el) {
    var fig = figureOf(el);
    if (!fig || !window.Plotly) { return; }
    var config = fig.config || {};
    config.responsive = false;
    el.removeAttribute("data-rendered");
    window.Plotly.newPlot(el, fig.data, fig.layout, config).then(function () {
      el.setAttribute("data-rendered", "true");
    });
  }
  function drawAll() {
    var all = document.querySelectorAll("[data-figure]");
    for (var i = 0; i < all.length; i++) { draw(all[i]); }
  }
  var width = window.innerWidth;
  var pending = null;
  window.addEventListener("resize", function () {
    if (window.innerWidth === width) { return; }
    width = window.innerWidth;
    window.clearTimeout(pending);
    pending = window.setTimeout(function () { drawAll(); }, 150);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
