// Attribute labelling page: keyboard-first Monk swatch + perceived gender per photo.
// State comes from the page (json_script) and each submit's reply (current + upcoming).
(function () {
  "use strict";
  const root = document.getElementById("attr");
  if (!root) return;
  let state = JSON.parse(document.getElementById("attr-state").textContent);
  const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  const TONE_KEYS = { "1": "1", "2": "2", "3": "3", "4": "4", "5": "5", "6": "6", "7": "7", "8": "8", "9": "9", "0": "10", "u": "unknown" };
  const GENDER_KEYS = { "w": "woman", "m": "man", "o": "other", "g": "unknown" };
  let tone = null;
  let gender = null;
  let shownAt = performance.now();
  let busy = false;

  function mark(selector, attr, value) {
    root.querySelectorAll(selector).forEach(function (b) {
      b.setAttribute("aria-checked", b.dataset[attr] === value ? "true" : "false");
    });
  }

  function refresh() {
    mark("[data-tone]", "tone", tone);
    mark("[data-gender]", "gender", gender);
    document.getElementById("attr-submit").disabled = !(tone && gender) || busy;
    document.getElementById("attr-chosen").textContent =
      (tone ? "tone " + tone : "pick a tone") + " · " + (gender ? gender : "pick a gender");
  }

  function show() {
    const task = state.current;
    tone = null; gender = null;
    document.getElementById("attr-error").hidden = true;
    document.getElementById("attr-task").hidden = !task;
    document.getElementById("attr-done").hidden = !!task;
    root.dataset.token = task ? task.token : "";
    if (task) {
      document.getElementById("attr-img").src = task.photo;
      if (state.upcoming) { const img = new Image(); img.src = state.upcoming.photo; }
    }
    if (state.progress) {
      document.getElementById("attr-progress").textContent = state.progress.done + " of " + state.progress.total;
    }
    shownAt = performance.now();
    refresh();
  }

  function submit(t, g) {
    if (busy || !state.current) return;
    busy = true; refresh();
    fetch(root.dataset.submit, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ token: state.current.token, skin_tone: t, perceived_gender: g,
                             seconds: (performance.now() - shownAt) / 1000 })
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (res) {
      busy = false;
      if (!res.ok) { throw new Error(res.body.error || "could not save"); }
      state = res.body; show();
    }).catch(function (err) {
      busy = false; refresh();
      const box = document.getElementById("attr-error");
      box.textContent = String(err.message || err); box.hidden = false;
    });
  }

  function confirm() { if (tone && gender) submit(tone, gender); }

  root.addEventListener("click", function (ev) {
    const b = ev.target.closest("button");
    if (!b) return;
    if (b.dataset.tone) { tone = b.dataset.tone; refresh(); }
    else if (b.dataset.gender) { gender = b.dataset.gender; refresh(); }
    else if (b.id === "attr-submit") { confirm(); }
    else if (b.id === "attr-none") { submit("not_applicable", "not_applicable"); }
  });

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const k = ev.key.toLowerCase();
    if (k in TONE_KEYS) { tone = TONE_KEYS[k]; refresh(); ev.preventDefault(); }
    else if (k in GENDER_KEYS) { gender = GENDER_KEYS[k]; refresh(); ev.preventDefault(); }
    else if (k === "enter") { confirm(); ev.preventDefault(); }
    else if (k === "n") { submit("not_applicable", "not_applicable"); ev.preventDefault(); }
    else if (k === "backspace") { tone = null; gender = null; refresh(); ev.preventDefault(); }
    else if (k === "?") { const h = document.getElementById("attr-help"); h.hidden = !h.hidden; }
  });

  show();
}());
