/* traceanalyzer report: sortable, filterable findings table. No network, no libraries. */
(function () {
  'use strict';
  var table = document.getElementById('findings');
  if (!table) { return; }
  var bodies = Array.prototype.slice.call(table.tBodies);
  var text = document.getElementById('f-text');
  var sev = document.getElementById('f-severity');
  var rule = document.getElementById('f-rule');
  var count = document.getElementById('f-count');

  function applyFilter() {
    var q = text.value.trim().toLowerCase();
    var s = sev.value;
    var r = rule.value;
    var shown = 0;
    bodies.forEach(function (b) {
      var main = b.rows[0];
      var ok = (!s || b.getAttribute('data-severity') === s) &&
               (!r || b.getAttribute('data-rule') === r) &&
               (!q || main.textContent.toLowerCase().indexOf(q) >= 0);
      b.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + ' of ' + bodies.length + ' findings shown';
  }

  function cellValue(body, index, numeric) {
    var cell = body.rows[0].cells[index];
    var v = cell.hasAttribute('data-v') ? cell.getAttribute('data-v') : cell.textContent;
    if (numeric) {
      var n = parseFloat(v);
      return isNaN(n) ? -Infinity : n;
    }
    return v.toLowerCase();
  }

  function sortBy(th) {
    var index = th.cellIndex;
    var numeric = th.getAttribute('data-type') === 'num';
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    Array.prototype.forEach.call(th.parentNode.cells, function (c) { c.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var keyed = bodies.map(function (b, i) { return [cellValue(b, index, numeric), i, b]; });
    keyed.sort(function (a, b) {
      if (a[0] < b[0]) { return asc ? -1 : 1; }
      if (a[0] > b[0]) { return asc ? 1 : -1; }
      return a[1] - b[1];
    });
    keyed.forEach(function (k) { table.appendChild(k[2]); });
    bodies = keyed.map(function (k) { return k[2]; });
  }

  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    if (!th.hasAttribute('data-key')) { return; }
    th.tabIndex = 0;
    th.addEventListener('click', function () { sortBy(th); });
    th.addEventListener('keydown', function (e) { if (e.key === 'Enter') { sortBy(th); } });
  });

  bodies.forEach(function (b) {
    var main = b.rows[0];
    var detail = b.rows[1];
    main.addEventListener('click', function () {
      detail.hidden = !detail.hidden;
      main.setAttribute('aria-expanded', String(!detail.hidden));
    });
  });

  [text, sev, rule].forEach(function (el) {
    el.addEventListener('input', applyFilter);
    el.addEventListener('change', applyFilter);
  });
  applyFilter();
}());
