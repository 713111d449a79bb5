// Mask-overlay toggle for the thumbnail grid: swaps each thumbnail (and its link) between the
// plain web copy and the overlay copy; the choice is remembered per browser.
(function () {
  "use strict";
  var toggle = document.getElementById("overlay-toggle");
  if (!toggle) { return; }
  var KEY = "datasets.overlay";
  function apply(on) {
    document.querySelectorAll("#grid img[data-overlay]").forEach(function (img) {
      img.src = on ? img.dataset.overlay : img.dataset.plain;
    });
    document.querySelectorAll("#grid a[data-overlay-href]").forEach(function (a) {
      a.href = on ? a.dataset.overlayHref : a.dataset.plainHref;
    });
  }
  try { toggle.checked = window.localStorage.getItem(KEY) === "1"; } catch (e) { /* private mode */ }
  if (toggle.checked) { apply(true); }
  toggle.addEventListener("change", function () {
    apply(toggle.checked);
    try { window.localStorage.setItem(KEY, toggle.checked ? "1" : "0"); } catch (e) { /* ignore */ }
  });
})();
