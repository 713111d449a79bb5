// Upload progress: polls the import's JSON endpoint (counts from the database) once a second
// until the worker has finished, then reloads once to show the report.
(function () {
  "use strict";
  var box = document.getElementById("import");
  if (!box || box.dataset.finished === "1") { return; }
  var bar = document.getElementById("import-bar");
  var count = document.getElementById("import-count");
  var status = document.getElementById("import-status");
  var phase = document.getElementById("import-phase");
  function poll() {
    fetch(box.dataset.progressUrl, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (p) {
        bar.max = Math.max(p.total, 1);
        bar.value = p.processed;
        count.textContent = p.processed + " / " + p.total + " items processed";
        status.textContent = p.status;
        status.className = "badge " + p.status;
        phase.textContent = p.phase;
        if (p.finished) { window.location.reload(); } else { window.setTimeout(poll, 1000); }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  poll();
})();
