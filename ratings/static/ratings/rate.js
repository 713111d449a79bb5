// Rating page: keyboard-first pairwise / absolute rating with synchronized zoom and pan.
// A choice key shows the next task at once (it is already held and its images preloaded) and
// puts the vote in an outbox kept in localStorage under its task's token; the outbox drains in
// batches (api/votes, idempotent per token) with backoff, survives a reload, and while it cannot
// drain (offline, session expired) the page says so and hands out no further task.
// A key only ever rates the task on screen when it was pressed; a key within DOUBLE_PRESS_MS of
// a task appearing is taken for an accidental double press and ignored, with a visible flash.
// The page's GET leases nothing: holding too few tasks, the script POSTs to the lease URL.
(function () {
  "use strict";
  const root = document.getElementById("rate");
  if (!root) return;
  let state = JSON.parse(document.getElementById("rate-state").textContent);
  const mode = root.dataset.mode;
  const votesUrl = root.dataset.votes;
  const leaseUrl = root.dataset.lease;
  const startForm = document.getElementById("start");
  const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  const BACKGROUNDS = [["checker", "checkerboard"], ["black", "black"], ["white", "white"], ["photo", "dimmed photo"]];
  const ZOOMS = [1, 2, 4];
  const DEPTH = 8;  // tasks held: the one on screen and those rated ahead of the saves (one round trip of keys)
  const DOUBLE_PRESS_MS = 150;
  const OUTBOX_KEY = "evalsite.rate.outbox";
  const OUTBOX_MAX = 40;  // beyond this many unsaved votes the page stops and says why
  let bgIndex = 0;
  let view = { scale: 1, x: 0, y: 0 };
  let shownAt = performance.now();
  let leasing = false;
  let flushing = false;
  let retryMs = 0;
  let retryTimer = null;
  let stalled = "";  // why the outbox cannot drain; no task is handed out while set
  let queue = [];  // held tasks not rated here yet; queue[0] is on screen
  const panes = Array.from(root.querySelectorAll(".pane"));
  const reasonsBox = document.getElementById("reasons");
  const helpBox = document.getElementById("help");
  const savingBox = document.getElementById("saving");
  const flashBox = document.getElementById("flash");
  const errorBox = document.getElementById("error");
  const preloaded = {};
  // Key-to-next-task times (ms) for the rating bench: key press to the next task painted.
  window.rateTimings = window.rateTimings || [];

  function loadOutbox() {
    try {
      const stored = JSON.parse(window.localStorage.getItem(OUTBOX_KEY) || "{}");
      return stored && typeof stored === "object" && !Array.isArray(stored) ? stored : {};
    } catch (err) { return {}; }
  }
  let outbox = loadOutbox();  // token → vote, in insertion order
  function saveOutbox() {
    try { window.localStorage.setItem(OUTBOX_KEY, JSON.stringify(outbox)); }
    catch (err) { stalled = stalled || "this browser cannot keep unsaved votes (storage full or off)"; }
  }
  function pendingCount() { return Object.keys(outbox).length; }

  // Each held task's cutouts are fetched and decoded ahead; showing the task puts these very
  // elements on screen, so a key costs a DOM swap and a frame, not a fetch and a decode.
  function preload(task) {
    if (!task || preloaded[task.token]) return;
    const images = {};
    Object.keys(task.images).forEach(function (slot) {
      const img = new Image();
      img.src = task.images[slot];
      if (slot !== "photo") img.decode().catch(function () {});  // the photo: only behind "b"
      images[slot] = img;
    });
    preloaded[task.token] = images;
  }

  function place(pane, slot, task) {
    const old = pane.querySelector(".cut");
    const ready = preloaded[task.token] && preloaded[task.token][slot];
    if (ready && !ready.isConnected) {
      ready.className = "cut";
      ready.alt = old.alt;
      old.replaceWith(ready);
      return ready;
    }
    old.src = task.images[slot];
    return old;
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
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json" },
      body: JSON.stringify(payload),
    }).then(function (response) {
      const json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
      if (response.redirected || !json) {
        // The login page answered: the session is gone.
        const err = new Error("your session has expired: log in again (in another tab) to save them");
        err.permanent = true;
        throw err;
      }
      return response.json().then(function (body) {
        if (!response.ok) {
          const err = new Error((body.error && body.error.message) || ("error " + response.status));
          err.status = response.status;
          throw err;
        }
        return body;
      });
    });
  }

  function showProgress() {
    if (state.progress) {
      // Votes waiting in the outbox count as done: the rater did them.
      const done = state.progress.done + pendingCount();
      document.getElementById("progress").textContent = Math.min(done, state.progress.total) + " of " + state.progress.total;
    }
  }

  function showSaving() {
    const n = pendingCount();
    root.dataset.pending = String(n);
    if (stalled) {
      savingBox.textContent = "not saved: " + n + " vote" + (n === 1 ? "" : "s") + " waiting — " + stalled;
      savingBox.className = "saving stalled";
    } else if (n) {
      savingBox.textContent = "saving " + n + "…";
      savingBox.className = "saving busy";
    } else {
      savingBox.textContent = "saved";
      savingBox.className = "saving";
    }
  }

  function flash(text) {
    flashBox.textContent = text;
    flashBox.hidden = false;
    flashBox.classList.remove("flash");
    void flashBox.offsetWidth;  // restart the animation
    flashBox.classList.add("flash");
  }

  // Merge a server state: tasks held there and not rated here join the queue, in order.
  // Replies can arrive out of order (a lease and a flush in flight together): a reply older than
  // the newest one merged is ignored, and a task rated on this page never joins again, even from
  // a reply computed before its vote was stored.
  let sent = 0;
  let merged = 0;
  const rated = {};
  function merge(body, seq) {
    if (seq !== undefined) {
      if (seq < merged) return;
      merged = seq;
    }
    state = body;
    const known = {};
    queue.forEach(function (t) { known[t.token] = true; });
    (body.queue || []).forEach(function (t) {
      if (!known[t.token] && !outbox[t.token] && !rated[t.token]) { queue.push(t); known[t.token] = true; }
    });
    // A task the server no longer holds for us (lease expired and taken) leaves the queue,
    // except the one on screen, whose vote would still be stored late.
    const held = {};
    (body.queue || []).forEach(function (t) { held[t.token] = true; });
    queue = queue.filter(function (t, i) { return held[t.token] || (i === 0 && t === queue[0]); });
    queue.forEach(preload);
  }

  function show(pressedAt) {
    const task = stalled ? null : queue[0];
    if (task && state.mode && state.mode !== mode) {
      // The next task is in a campaign of the other mode: its page (the GET shows the lease).
      window.location.reload();
      return;
    }
    const waiting = !task && (stalled || pendingCount() > 0 || leasing || state.available);
    document.getElementById("panes").hidden = !task;
    root.querySelector(".choices").hidden = !task;
    document.getElementById("done").hidden = !!task || waiting;
    document.getElementById("waiting").hidden = !!task || !waiting;
    document.getElementById("waiting").textContent = stalled
      ? "Rating paused until your votes are saved."
      : "Loading the next task…";
    if (startForm) startForm.hidden = true;
    if (!task) {
      root.dataset.token = "";
    } else if (root.dataset.token !== task.token) {
      root.dataset.token = task.token;
      document.getElementById("ctx").src = task.images.thumb;
      const tap = document.getElementById("tap");
      if (tap && task.images.tap) tap.src = task.images.tap;
      const cuts = panes.map(function (pane) {
        pane.querySelector(".bgphoto").src = task.images.photo;
        pane.querySelector(".nosubject").hidden = !(task.empty && task.empty[pane.dataset.slot]);
        return place(pane, pane.dataset.slot, task);
      });
      delete preloaded[task.token];
      reasonsBox.querySelectorAll("input").forEach(function (box) { box.checked = false; });
      resetView();
      shownAt = performance.now();
      if (pressedAt !== undefined) {
        Promise.all(cuts.map(function (img) { return img.decode().catch(function () {}); })).then(function () {
          requestAnimationFrame(function () { window.rateTimings.push(performance.now() - pressedAt); });
        });
      }
    }
    queue.slice(1).forEach(preload);
    showProgress();
    showSaving();
  }

  function fail(err) {
    errorBox.textContent = err.message;
    errorBox.hidden = false;
  }

  // Lease more tasks when few are held and no flush (whose reply tops up too) is on its way.
  function topUp() {
    if (leasing || flushing || stalled || pendingCount() || !state.available || queue.length >= DEPTH - 1) return;
    leasing = true;
    const seq = ++sent;
    // Holding nothing (a first visit), lease two: the first task shows sooner, and the top-up
    // behind it leases the rest while the rater looks at it.
    const depth = queue.length ? DEPTH : 2;
    const before = queue.length;
    post(leaseUrl, { depth: depth }).then(function (body) {
      errorBox.hidden = true;
      merge(body, seq);
    }).catch(function (err) {
      fail("Could not fetch a task: " + err.message);
      if (!queue.length && startForm) startForm.hidden = false;
    }).finally(function () {
      leasing = false;
      show();
      if (queue.length > before) topUp();  // only while leasing brings tasks: never a loop
    });
  }

  function scheduleRetry() {
    retryMs = Math.min(retryMs ? retryMs * 2 : 1000, 30000);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(flush, retryMs);
  }

  function flush() {
    if (flushing) return;
    const tokens = Object.keys(outbox);
    if (!tokens.length) { topUp(); return; }
    flushing = true;
    const votes = tokens.slice(0, 64).map(function (t) { return outbox[t]; });
    const seq = ++sent;
    post(votesUrl, { votes: votes, depth: DEPTH }).then(function (body) {
      const refused = [];
      body.results.forEach(function (r) {
        delete outbox[r.token];  // saved, or refused for good (the reason is shown)
        if (r.error) refused.push(r.error);
      });
      saveOutbox();
      retryMs = 0;
      stalled = "";
      errorBox.hidden = !refused.length;
      if (refused.length) errorBox.textContent = refused.length + " vote(s) could not be stored: " + refused.join("; ");
      merge(body.state, seq);
    }).catch(function (err) {
      if (err.status === 400) {
        // A malformed batch is never accepted: drop it rather than retry it forever.
        votes.forEach(function (v) { delete outbox[v.token]; });
        saveOutbox();
        fail("Votes refused by the server: " + err.message);
      } else {
        stalled = err.permanent ? err.message
          : (navigator.onLine === false ? "offline; retrying" : "the server did not answer; retrying");
        scheduleRetry();
      }
    }).finally(function () {
      flushing = false;
      show();
      if (!stalled && pendingCount()) flush();
      else topUp();
    });
  }

  function rate(vote) {
    const task = queue[0];
    const pressedAt = performance.now();
    if (!task || stalled) {
      if (stalled) flash("Paused: your earlier votes are not saved yet");
      return;
    }
    if (pressedAt - shownAt < DOUBLE_PRESS_MS) {
      flash("Too quick — that key was ignored (taken for a double press)");
      return;
    }
    if (pendingCount() >= OUTBOX_MAX) {
      stalled = stalled || "too many votes waiting; retrying";
      show();
      return;
    }
    vote.token = task.token;
    vote.seconds = (pressedAt - shownAt) / 1000;
    vote.reasons = Array.from(reasonsBox.querySelectorAll("input:checked")).map(function (b) { return b.value; });
    outbox[task.token] = vote;
    rated[task.token] = true;
    saveOutbox();
    queue.shift();
    show(pressedAt);
    flush();
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
    if ((mode === "pairwise" || mode === "instances") && CHOICE_KEYS[key]) { if (!ev.repeat) rate({ choice: CHOICE_KEYS[key] }); }
    else if (mode === "absolute" && /^[1-5]$/.test(key)) { if (!ev.repeat) rate({ score: Number(key) }); }
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
    b.addEventListener("click", function () { rate({ choice: b.dataset.choice }); });
  });
  root.querySelectorAll("button[data-score]").forEach(function (b) {
    b.addEventListener("click", function () { rate({ score: Number(b.dataset.score) }); });
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

  window.addEventListener("online", function () { if (pendingCount()) { clearTimeout(retryTimer); flush(); } });
  merge(state);
  show();
  flush();  // votes a reload left in the outbox go first; with none, this tops the queue up
})();
