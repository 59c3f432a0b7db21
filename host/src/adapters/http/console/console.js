// The console's only script: keeps a page current. A page that names what it shows in
// data-watch (a JSON URL) is reloaded when that JSON changes, checked every 2 seconds.
(function () {
  "use strict";
  var body = document.body;
  var watch = body && body.getAttribute("data-watch");
  if (!watch) return;
  var last = null;
  function check() {
    fetch(watch, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (text === null) return;
        if (last !== null && text !== last) { window.location.reload(); return; }
        last = text;
      })
      .catch(function () {});
  }
  check();
  window.setInterval(check, 2000);
})();
