// The dashboard's two charts, from the page's JSON block (never from strings built into
// script). Chart.js is vendored under /static/vendor; no animation, so what a screenshot or
// a reader sees is the final picture.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  new Chart(document.getElementById("chart-categories"), {
    type: "bar",
    data: {
      labels: data.by_category.labels,
      datasets: [
        { label: "ROAS", data: data.by_category.roas, backgroundColor: "#1a73e8", yAxisID: "roas" },
        {
          label: "Conversions",
          data: data.by_category.conversions,
          backgroundColor: "#f2b134",
          yAxisID: "conversions",
        },
      ],
    },
    options: {
      plugins: { title: { display: true, text: "ROAS and conversions by site category" } },
      scales: {
        roas: { type: "linear", position: "left", beginAtZero: true, title: { display: true, text: "ROAS" } },
        conversions: {
          type: "linear",
          position: "right",
          beginAtZero: true,
          ticks: { precision: 0 },
          grid: { drawOnChartArea: false },
          title: { display: true, text: "Conversions" },
        },
      },
    },
  });

  new Chart(document.getElementById("chart-daily"), {
    type: "line",
    data: {
      labels: data.daily.labels,
      datasets: [
        { label: "Impressions", data: data.daily.impressions, borderColor: "#90a4ae", yAxisID: "count" },
        { label: "Clicks", data: data.daily.clicks, borderColor: "#1a73e8", yAxisID: "count" },
        { label: "Conversions", data: data.daily.conversions, borderColor: "#f2b134", yAxisID: "count" },
      ],
    },
    options: {
      plugins: { title: { display: true, text: "Daily trend" } },
      scales: { count: { type: "linear", beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
  document.body.dataset.charts = "ready";
})();
