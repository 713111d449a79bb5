// Rating page: keyboard-first pairwise / absolute rating with synchronized zoom and pan.
// State comes from the page (json_script) and from each submit's reply (current + upcoming);
// the upcoming task's images are fetched ahead so the next task shows without waiting.
// The page's GET leases nothing: holding no task (or none preloaded) while work is available,
// the script POSTs to the lease URL once (the "Start rating" form does it without script).
(function () {
  "use strict";
  const root = document.getElementById("rate");
  if (!root) return;
  let state = JSON.parse(document.getElementById("rate-state").textContent);
  const mode = root.dataset.mode;
  const submitUrl = root.dataset.submit;
  const leaseUrl = root.dataset.lease;
  const startForm = document.getElementById("start");
  const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  const BACKGROUNDS = [["checker", "checkerboard"], ["black", "black"], ["white", "white"], ["photo", "dimmed photo"]];
  const ZOOMS = [1, 2, 4];
  let bgIndex = 0;
  let view = { scale: 1, x: 0, y: 0 };
  let shownAt = performance.now();
  let busy = false;
  let leasing = false;
  const panes = Array.from(root.querySelectorAll(".pane"));
  const reasonsBox = document.getElementById("reasons");
  const helpBox = document.getElementById("help");

  function preload(task) {
    if (!task) return;
    Object.values(task.images).forEach(function (url) { const img = new Image(); img.src = url; });
  }

  function applyView() {
    panes.forEach(function (pane) {
      pane.querySelector(".view").style.transform =
        "translate(" + view.x + "px," + view.y + "px) scale(" + view.scale + ")";
    });
    document.getElementById("zoom-level").textContent = (Math.round(view.scale * 10) / 10) + "×";
    root.dataset.zoom = String(view.scale);
  }

  function resetView() { view = { scale: 1, x: 0, y: 0 }; applyView(); }

  function post(url, payload) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(payload),
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.error || ("error " + response.status));
        return body;
      });
    });
  }

  function showProgress() {
    if (state.progress) {
      document.getElementById("progress").textContent = state.progress.done + " of " + state.progress.total;
    }
  }

  function show() {
    const task = state.current;
    if (task && state.mode !== mode) {
      // The next task is in a campaign of the other mode: its page (the GET shows the lease).
      window.location.reload();
      return;
    }
    document.getElementById("error").hidden = true;
    document.getElementById("panes").hidden = !task;
    root.querySelector(".choices").hidden = !task;
    document.getElementById("done").hidden = !!task || state.available;
    if (startForm) startForm.hidden = true;
    if (!task) {
      root.dataset.token = "";
    } else {
      root.dataset.token = task.token;
      document.getElementById("ctx").src = task.images.thumb;
      panes.forEach(function (pane) {
        pane.querySelector(".cut").src = task.images[pane.dataset.slot];
        pane.querySelector(".bgphoto").src = task.images.photo;
      });
      reasonsBox.querySelectorAll("input").forEach(function (box) { box.checked = false; });
      resetView();
      preload(state.upcoming);
    }
    showProgress();
    shownAt = performance.now();
  }

  // Lease the next task(s): once on load when the page holds none, or none preloaded.
  function lease() {
    if (leasing) return;
    leasing = true;
    const had = state.current ? state.current.token : null;
    post(leaseUrl, {}).then(function (body) {
      if (!had && !state.current) {
        state = body;
        show();
      } else if (had && state.current && state.current.token === had && body.current && body.current.token === had) {
        // Same task on screen: only the preloaded one and the counts are new.
        state.upcoming = body.upcoming;
        state.progress = body.progress;
        state.available = body.available;
        preload(state.upcoming);
        showProgress();
      } // else a submit answered meanwhile, and its state is newer
    }).catch(function (err) {
      const box = document.getElementById("error");
      box.textContent = "Could not fetch a task: " + err.message;
      box.hidden = false;
      if (!state.current && startForm) startForm.hidden = false;
    }).finally(function () { leasing = false; });
  }

  function submit(payload) {
    if (busy || !state.current) return;
    busy = true;
    payload.token = state.current.token;
    payload.seconds = (performance.now() - shownAt) / 1000;
    payload.reasons = Array.from(reasonsBox.querySelectorAll("input:checked")).map(function (b) { return b.value; });
    root.classList.add("busy");
    post(submitUrl, payload).then(function (body) {
      state = body;
      show();
    }).catch(function (err) {
      const box = document.getElementById("error");
      box.textContent = "Could not save: " + err.message + " — press the key again.";
      box.hidden = false;
    }).finally(function () { busy = false; root.classList.remove("busy"); });
  }

  function cycleBackground() {
    bgIndex = (bgIndex + 1) % BACKGROUNDS.length;
    root.dataset.bg = BACKGROUNDS[bgIndex][0];
    document.getElementById("bg-name").textContent = BACKGROUNDS[bgIndex][1];
  }

  function cycleZoom() {
    const next = ZOOMS.find(function (z) { return z > view.scale + 1e-6; }) || 1;
    const rect = panes[0].querySelector(".stage").getBoundingClientRect();
    // Zoom on the centre of the pane, where the subject usually is.
    view = { scale: next, x: rect.width / 2 * (1 - next), y: rect.height / 2 * (1 - next) };
    applyView();
  }

  const CHOICE_KEYS = { "1": "left", "2": "right", "3": "tie", "4": "both_bad" };
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const key = ev.key;
    if (mode === "pairwise" && CHOICE_KEYS[key]) { submit({ choice: CHOICE_KEYS[key] }); }
    else if (mode === "absolute" && /^[1-5]$/.test(key)) { submit({ score: Number(key) }); }
    else if (key === "z") { cycleZoom(); }
    else if (key === "b") { cycleBackground(); }
    else if (key === "r") { reasonsBox.hidden = !reasonsBox.hidden; }
    else if (key === "?") { helpBox.hidden = !helpBox.hidden; }
    else if (key === "Escape") { helpBox.hidden = true; reasonsBox.hidden = true; }
    else if (!reasonsBox.hidden) {
      const box = reasonsBox.querySelector('input[data-hotkey="' + key + '"]');
      if (!box) return;
      box.checked = !box.checked;
    } else { return; }
    ev.preventDefault();
  });

  root.querySelectorAll("button[data-choice]").forEach(function (b) {
    b.addEventListener("click", function () { submit({ choice: b.dataset.choice }); });
  });
  root.querySelectorAll("button[data-score]").forEach(function (b) {
    b.addEventListener("click", function () { submit({ score: Number(b.dataset.score) }); });
  });

  // Synchronized zoom (wheel, around the cursor) and pan (drag) over every pane.
  panes.forEach(function (pane) {
    const stage = pane.querySelector(".stage");
    stage.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      const rect = stage.getBoundingClientRect();
      const cx = ev.clientX - rect.left, cy = ev.clientY - rect.top;
      const factor = ev.deltaY < 0 ? 1.25 : 0.8;
      const scale = Math.min(16, Math.max(1, view.scale * factor));
      const k = scale / view.scale;
      view = { scale: scale, x: cx - (cx - view.x) * k, y: cy - (cy - view.y) * k };
      if (scale === 1) { view.x = 0; view.y = 0; }
      applyView();
    }, { passive: false });
    let drag = null;
    stage.addEventListener("pointerdown", function (ev) {
      drag = { x: ev.clientX - view.x, y: ev.clientY - view.y };
      stage.setPointerCapture(ev.pointerId);
    });
    stage.addEventListener("pointermove", function (ev) {
      if (!drag) return;
      view.x = ev.clientX - drag.x; view.y = ev.clientY - drag.y;
      applyView();
    });
    stage.addEventListener("pointerup", function () { drag = null; });
    stage.addEventListener("dblclick", resetView);
  });

  show();
  if (state.available && (!state.current || !state.upcoming)) lease();
})();
