// Fairness tab: one forest plot per metric (group means with bootstrap intervals, overall line).
(function () {
  "use strict";
  var node = document.getElementById("fairness-plot");
  if (!node || typeof Plotly === "undefined") { return; }
  var plot = JSON.parse(node.textContent);
  var cfg = { displaylogo: false, responsive: true };
  plot.metrics.forEach(function (m) {
    var target = document.getElementById("forest-" + m.key);
    if (!target) { return; }
    var groups = plot.groups.slice().reverse();  // first group on top
    var labels = groups.map(function (g) { return g.label + " (n=" + g.n + ")"; });
    var means = groups.map(function (g) { return g.metrics[m.key].mean; });
    var plus = groups.map(function (g) {
      var c = g.metrics[m.key].ci; return c[1] === null ? 0 : c[1] - g.metrics[m.key].mean;
    });
    var minus = groups.map(function (g) {
      var c = g.metrics[m.key].ci; return c[0] === null ? 0 : g.metrics[m.key].mean - c[0];
    });
    var colours = groups.map(function (g) {
      return g.metrics[m.key].flagged ? "#c0392b" : (g.too_small ? "#9aa" : "#2c5d8a");
    });
    var symbols = groups.map(function (g) { return g.too_small ? "circle-open" : "circle"; });
    var overall = plot.overall[m.key];
    Plotly.newPlot(target, [{
      type: "scatter", mode: "markers", x: means, y: labels, name: m.label,
      marker: { color: colours, symbol: symbols, size: 9 },
      error_x: { type: "data", symmetric: false, array: plus, arrayminus: minus, color: "#567" },
      hovertemplate: "%{y}: %{x:.3f}<extra></extra>"
    }], {
      title: { text: m.label + (m.lower_is_better ? " (lower is better)" : ""), font: { size: 14 } },
      margin: { l: 170, r: 10, t: 40, b: 40 }, showlegend: false,
      // plotly.js 3 draws only { text } axis titles (a bare string is dropped).
      xaxis: { title: { text: m.label + " (group mean, 95 % interval)" }, zeroline: false },
      yaxis: { title: { text: "group" }, automargin: true, tickfont: { size: 11 } },
      shapes: overall === null ? [] : [{ type: "line", x0: overall, x1: overall, yref: "paper",
        y0: 0, y1: 1, line: { dash: "dash", color: "#888" } }]
    }, cfg);
  });
}());
