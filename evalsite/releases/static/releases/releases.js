// Release pages: leaderboard plot, report figures (JSON from json_script), pending-report polling.
(function () {
  "use strict";
  var draw = function (el, fig) {
    if (typeof Plotly === "undefined" || !el) { return; }
    Plotly.newPlot(el, fig.data || [], fig.layout || {}, { displaylogo: false, responsive: true });
  };
  var lb = document.getElementById("leaderboard-plot-data");
  if (lb) { draw(document.getElementById("leaderboard-plot"), JSON.parse(lb.textContent)); }
  var figs = document.getElementById("report-figures");
  if (figs) {
    JSON.parse(figs.textContent).forEach(function (f) { draw(document.getElementById(f.id), f.figure); });
  }
  var pending = document.getElementById("report-pending");
  if (pending && pending.dataset.status !== "failed") {
    var poll = function () {
      fetch(pending.dataset.url, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (d) {
          if (d.status === "done" || d.status === "failed") { window.location.reload(); }
          else { setTimeout(poll, 2000); }
        })
        .catch(function () { setTimeout(poll, 5000); });
    };
    setTimeout(poll, 1500);
  }
})();
