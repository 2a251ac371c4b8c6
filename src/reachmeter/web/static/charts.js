/* Draws every chart container ([data-spec] names the element holding its Vega-Lite spec). */
(function () {
  "use strict";
  function draw(root) {
    if (!window.vegaEmbed) { return; }
    root.querySelectorAll("[data-spec]").forEach(function (box) {
      if (box.dataset.drawn) { return; }
      var source = document.getElementById(box.dataset.spec);
      if (!source) { return; }
      box.dataset.drawn = "1";
      window.vegaEmbed(box, JSON.parse(source.textContent), { actions: false, renderer: "svg" })
        .then(function () { box.dataset.rendered = "1"; })
        .catch(function (error) { box.textContent = "The chart could not be drawn: " + error; });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.target); });
})();
