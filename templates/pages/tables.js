// Progressive enhancement: a filter box above each table marked "filterable" hides the rows of this page
// that do not contain the typed text. Pages work without it (their search forms filter on the server).
"use strict";
document.querySelectorAll("table.filterable").forEach(function (table, n) {
  var rows = Array.prototype.slice.call(table.rows, 1);
  if (rows.length < 2) { return; }
  var label = document.createElement("label"), box = document.createElement("input"), count = document.createElement("span");
  box.type = "search"; box.id = "table-filter-" + n; box.className = "table-filter";
  label.htmlFor = box.id; label.textContent = "Show rows on this page containing ";
  count.className = "table-filter-count"; count.setAttribute("aria-live", "polite");
  box.addEventListener("input", function () {
    var text = box.value.trim().toLowerCase(), shown = 0;
    rows.forEach(function (row) {
      var match = !text || row.textContent.toLowerCase().indexOf(text) !== -1;
      row.hidden = !match; shown += match ? 1 : 0;
    });
    count.textContent = text ? " " + shown + " of " + rows.length + " rows" : "";
  });
  var holder = document.createElement("p");
  holder.append(label, box, count);
  table.parentNode.insertBefore(holder, table);
});
