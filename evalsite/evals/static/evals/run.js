// Run page: poll the progress endpoint until the run finishes, then reload; draw plotly charts.
(function () {
  "use strict";
  var card = document.getElementById("progress-card");
  if (card && card.dataset.finished !== "1") {
    var poll = function () {
      fetch(card.dataset.url, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (p) {
          document.getElementById("run-progress").value = p.percent;
          document.getElementById("progress-text").textContent =
            p.done + " / " + p.items + " items (" + p.ok + " ok, " + p.failed + " failed)";
          document.getElementById("waiting-note").textContent = p.waiting || "";
          var badge = document.getElementById("run-status");
          badge.textContent = p.status;
          badge.className = "badge " + p.status;
          if (p.device) { document.getElementById("run-device").textContent = p.device; }
          if (p.finished) { window.location.reload(); } else { setTimeout(poll, 2000); }
        })
        .catch(function () { setTimeout(poll, 5000); });
    };
    setTimeout(poll, 1500);
  }
  var data = document.getElementById("run-charts");
  if (!data || typeof Plotly === "undefined") { return; }
  var charts = JSON.parse(data.textContent);
  var layout = function (title, x, y) {
    return { title: { text: title, font: { size: 14 } }, margin: { l: 50, r: 10, t: 40, b: 45 },
             // plotly.js 3 draws only { text } axis titles (a bare string is dropped).
             xaxis: { title: { text: x } }, yaxis: { title: { text: y } } };
  };
  var cfg = { displaylogo: false, responsive: true };
  if (charts.pr.precision.length) {
    Plotly.newPlot("pr-chart", [{ x: charts.pr.recall, y: charts.pr.precision, mode: "lines",
      name: "mean PR" }], layout("Precision–recall curve, mean over images (pixels never pooled)", "recall", "precision"), cfg);
  }
  if (charts.fmeasure.length) {
    // PySODMetrics order: index k is the 8-bit threshold 255 - k.
    var thr = charts.fmeasure.map(function (_, k) { return 255 - k; });
    Plotly.newPlot("f-chart", [{ x: thr, y: charts.fmeasure, mode: "lines", name: "F" }],
      layout("Set mean F curve (β²=0.3); its peak is max F (set curve)", "threshold (0-255)", "F-measure, mean over images"), cfg);
  }
  if (charts.latency.length) {
    Plotly.newPlot("latency-chart", [{ x: charts.latency, type: "histogram" }],
      layout("Latency per image (n=" + charts.latency.length + ", warm-up excluded)",
        "total ms", "images"), cfg);
  }
})();
