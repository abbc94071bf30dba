/* Line charts for the student page and the school overview (Chart.js, vendored).
   Each canvas[data-chart] names a json_script element holding {labels, values[, interventions]};
   a table with the same numbers sits beside it in a <details>, for screen readers and print. */
(function () {
  "use strict";
  var lang = document.documentElement.lang === "bn" ? "bn-BD" : "en-GB";
  // Week starts are calendar dates: format them in UTC so no time zone shifts the day.
  var dateFormat = new Intl.DateTimeFormat(lang, { day: "numeric", month: "short", timeZone: "UTC" });
  var numberFormat = new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });

  function weekLabel(iso) {
    var parts = iso.split("-");
    return dateFormat.format(new Date(Date.UTC(+parts[0], +parts[1] - 1, +parts[2])));
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof Chart === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var datasets = [{
      label: canvas.dataset.label,
      data: data.values,
      borderColor: canvas.dataset.kind === "risk" ? "#a0001c" : "#0b5394",
      backgroundColor: canvas.dataset.kind === "risk" ? "rgba(160,0,28,0.12)" : "rgba(11,83,148,0.12)",
      fill: true,
      spanGaps: true,
      pointRadius: 2,
      tension: 0.2
    }];
    var marked = (data.interventions || []).some(function (v) { return v !== null; });
    if (marked && canvas.dataset.markerLabel) {
      datasets.push({
        label: canvas.dataset.markerLabel,
        data: data.interventions,
        type: "line",
        showLine: false,
        pointStyle: "triangle",
        pointRadius: 7,
        borderColor: "#7a4100",
        backgroundColor: "#7a4100"
      });
    }
    Chart.defaults.font.family = "'Noto Sans Bengali', system-ui, sans-serif";
    Chart.defaults.color = "#1f2933";
    new Chart(canvas, {
      type: "line",
      data: { labels: data.labels.map(weekLabel), datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          y: { min: 0, max: 100, ticks: { callback: function (v) { return numberFormat.format(v) + "%"; } } },
          x: { ticks: { maxRotation: 0, autoSkipPadding: 12 } }
        },
        plugins: {
          legend: { display: datasets.length > 1 },
          tooltip: { callbacks: { label: function (c) { return c.dataset.label + ": " + numberFormat.format(c.parsed.y); } } }
        }
      }
    });
  }

  document.querySelectorAll("canvas[data-chart]").forEach(draw);
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
  // Printed pages show the tables behind the charts.
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details.table-fallback").forEach(function (d) { d.open = true; });
  });
})();
