// Attribute labelling page: keyboard-first Monk swatch + perceived gender per photo.
// State comes from the page (json_script) and each submit's reply (current + upcoming).
// The page's GET leases nothing: holding no photo (or none preloaded) while work is available,
// the script POSTs to the lease URL once (the "Start labelling" form does it without script).
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
  let leasing = false;
  const startForm = document.getElementById("attr-start");

  function post(url, payload) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(payload)
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error((body.error && body.error.message) || "could not save"); }
        return body;
      });
    });
  }

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
    document.getElementById("attr-done").hidden = !!task || state.available;
    if (startForm) startForm.hidden = true;
    root.dataset.token = task ? task.token : "";
    if (task) {
      document.getElementById("attr-img").src = task.photo;
      preload(state.upcoming);
    }
    showProgress();
    shownAt = performance.now();
    refresh();
  }

  function preload(task) { if (task) { const img = new Image(); img.src = task.photo; } }

  function showProgress() {
    if (state.progress) {
      document.getElementById("attr-progress").textContent = state.progress.done + " of " + state.progress.total;
    }
  }

  // Lease the next photo(s): once on load when the page holds none, or none preloaded.
  function lease() {
    if (leasing) return;
    leasing = true;
    const had = state.current ? state.current.token : null;
    post(root.dataset.lease, {}).then(function (body) {
      if (!had && !state.current) {
        state = body; show();
      } else if (had && state.current && state.current.token === had && body.current && body.current.token === had) {
        state.upcoming = body.upcoming; state.progress = body.progress; state.available = body.available;
        preload(state.upcoming); showProgress();
      } // else a submit answered meanwhile, and its state is newer
    }).catch(function (err) {
      const box = document.getElementById("attr-error");
      box.textContent = "Could not fetch a photo: " + String(err.message || err); box.hidden = false;
      if (!state.current && startForm) startForm.hidden = false;
    }).finally(function () { leasing = false; });
  }

  function submit(t, g) {
    if (busy || !state.current) return;
    busy = true; refresh();
    post(root.dataset.submit, { token: state.current.token, skin_tone: t, perceived_gender: g,
                                seconds: (performance.now() - shownAt) / 1000 }).then(function (body) {
      busy = false;
      state = body; show();
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
  if (state.available && (!state.current || !state.upcoming)) lease();
}());
