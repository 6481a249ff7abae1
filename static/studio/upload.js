// The clip upload with progress: the file is sent with XMLHttpRequest so the page can show how
// much has gone (a clip may be up to the upload limit), a file over the limit is refused
// before a byte is sent, and the server's answer is followed as a plain form post would be.
// Both the upload and the sample clip's button show that they are busy (disabled, a label
// saying what runs, aria-busy) so a second press cannot start a second clip.
(function () {
  "use strict";

  // A form's submit button while its request runs; `false` puts it back.
  function busy(form, on) {
    const button = form.querySelector("button[type=submit]");
    if (!button) return;
    if (!button.dataset.idleLabel) button.dataset.idleLabel = button.textContent;
    button.disabled = on;
    button.textContent = on ? button.dataset.busyLabel : button.dataset.idleLabel;
    form.setAttribute("aria-busy", String(on));
    button.setAttribute("aria-busy", String(on));
  }

  // The sample clip is a plain form post that takes a few seconds (the clip is made on the
  // server); the page stays busy until the next page arrives.
  document.querySelectorAll("form[data-busy-form]").forEach((f) =>
    f.addEventListener("submit", () => busy(f, true)));
  // Back from the next page (bfcache): the button works again.
  window.addEventListener("pageshow", () =>
    document.querySelectorAll("form[aria-busy=true]").forEach((f) => busy(f, false)));

  const form = document.querySelector("form.upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  const input = form.querySelector("input[type=file]");
  const maxBytes = Number(form.dataset.maxBytes || 0);
  const status = document.createElement("div");
  status.className = "upload-status";
  status.setAttribute("aria-live", "polite");
  status.hidden = true;
  status.innerHTML = '<progress class="progress" max="100" value="0"></progress>' +
    '<span class="progress-label"></span>';
  form.appendChild(status);
  const bar = status.querySelector("progress");
  const label = status.querySelector(".progress-label");
  const error = document.createElement("div");
  error.className = "alert alert-error";
  error.setAttribute("role", "alert");
  error.hidden = true;
  form.insertBefore(error, form.firstChild);

  const megabytes = (n) => (n / 1048576).toFixed(1) + " MB";
  function fail(message) {
    error.innerHTML = "<b>Upload refused:</b> ";
    error.appendChild(document.createTextNode(message));
    error.hidden = false;
    status.hidden = true;
    busy(form, false);
  }

  form.addEventListener("submit", function (event) {
    const file = input.files && input.files[0];
    if (!file) return; // the server says what is missing
    event.preventDefault();
    error.hidden = true;
    if (maxBytes && file.size > maxBytes) {
      fail("the file is too large (" + megabytes(file.size) + "): clips may be at most " +
        megabytes(maxBytes) + "; upload a shorter clip");
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      bar.value = Math.round((100 * e.loaded) / e.total);
      label.textContent = "Uploading " + megabytes(e.loaded) + " of " + megabytes(e.total);
    });
    xhr.upload.addEventListener("load", function () {
      bar.removeAttribute("value"); // indeterminate while the server checks the clip
      label.textContent = "Checking the clip (decoding its first frames)...";
    });
    xhr.addEventListener("load", function () {
      const type = xhr.getResponseHeader("Content-Type") || "";
      if (type.indexOf("application/json") === 0) {
        let message = "the server refused the upload (HTTP " + xhr.status + ")";
        try { message = JSON.parse(xhr.responseText).error || message; } catch (e) { /* keep */ }
        fail(message);
      } else if (xhr.status < 400 && xhr.responseURL && xhr.responseURL !== form.action) {
        window.location.assign(xhr.responseURL); // the clip's page, as a form post lands
      } else {
        document.open(); // the page re-rendered with the server's reason
        document.write(xhr.responseText);
        document.close();
      }
    });
    xhr.addEventListener("error", function () {
      fail("the upload was interrupted: check the connection and try again");
    });
    busy(form, true);
    status.hidden = false;
    bar.value = 0;
    label.textContent = "Uploading 0.0 MB of " + megabytes(file.size);
    xhr.send(new FormData(form));
  });
})();
