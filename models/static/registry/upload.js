// Upload form: post by XHR so the browser can report upload progress, check the size limit
// before sending anything, and show the server's errors without losing the chosen file.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
  var bar = document.getElementById("upload-progress");
  var statusLine = document.getElementById("upload-status");
  var errors = document.getElementById("upload-errors");
  var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10);

  function showErrors(list) {
    errors.textContent = "";
    list.forEach(function (text) {
      var li = document.createElement("li");
      li.textContent = text;
      errors.appendChild(li);
    });
  }

  form.addEventListener("submit", function (event) {
    var file = form.elements.file && form.elements.file.files[0];
    if (file && maxBytes && file.size > maxBytes) {
      event.preventDefault();
      showErrors([file.name + " is " + (file.size / 1048576).toFixed(1) + " MB; the upload limit is " +
                  (maxBytes / 1048576).toFixed(0) + " MB."]);
      return;
    }
    event.preventDefault();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    bar.hidden = false;
    bar.value = 0;
    showErrors([]);
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        bar.value = Math.round((e.loaded / e.total) * 100);
        statusLine.textContent = "Uploading… " + bar.value + "%";
      }
    });
    xhr.upload.addEventListener("load", function () {
      statusLine.textContent = "Uploaded; checking the file…";
    });
    xhr.addEventListener("load", function () {
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
      if (body && body.redirect) { window.location.href = body.redirect; return; }
      bar.hidden = true;
      statusLine.textContent = "";
      showErrors(body && body.errors ? body.errors : ["Upload failed (HTTP " + xhr.status + ")."]);
    });
    xhr.addEventListener("error", function () {
      bar.hidden = true;
      showErrors(["The upload was interrupted (network error); try again."]);
    });
    xhr.send(new FormData(form));
  });
})();
