// Progressive enhancement for the Starling console: a page with data-refresh="N" fetches
// itself every N seconds and swaps its <main> in place, so a group page follows a rebalance
// without reloading. Without JavaScript the page is the same, only static. While the user is
// filling in a form (a field has focus, or has been changed) the page is left alone, so a
// refresh never throws away what they typed. A <details> with an id that is open stays open
// in the new content.
(function () {
  var secs = parseInt(document.body.getAttribute("data-refresh"), 10);
  if (!(secs > 0) || !window.fetch || !window.DOMParser) return;
  var edited = false;
  document.addEventListener("input", function () { edited = true; });
  document.addEventListener("change", function () { edited = true; });
  function busy() {
    var active = document.activeElement;
    return edited || (active && active.form !== undefined && active.form !== null);
  }
  function refresh() {
    if (document.hidden || busy()) return schedule();
    fetch(window.location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (text) {
        var next = new DOMParser().parseFromString(text, "text/html").querySelector("main");
        var main = document.querySelector("main");
        if (next && main && !busy()) {
          var open = {};
          Array.prototype.forEach.call(main.querySelectorAll("details[id]"), function (d) {
            if (d.open) open[d.id] = true;
          });
          Array.prototype.forEach.call(next.querySelectorAll("details[id]"), function (d) {
            if (open[d.id]) d.open = true;
          });
          main.replaceWith(next);
        }
      })
      .catch(function () {})
      .then(schedule);
  }
  function schedule() { window.setTimeout(refresh, secs * 1000); }
  schedule();
})();
