// The queue page: its size chart (vendored Chart.js, data from the page's JSON script) and
// an auto-refresh that waits while messages are ticked. A file of its own: the
// Content-Security-Policy runs no inline script.

(function () {
  const table = () => document.getElementById("queue-table");

  // htmx refreshes #queue-table every 10 s; not while someone is choosing messages.
  document.body.addEventListener("htmx:beforeRequest", (event) => {
    const box = table();
    if (box && event.detail.elt === box && box.querySelector("input[name=ids]:checked")) {
      event.preventDefault();
    }
  });

  const data = document.getElementById("queue-sizes");
  const canvas = document.getElementById("chart-queue-size");
  if (!data || !canvas) return;
  const sizes = JSON.parse(data.textContent);
  if (!sizes.length) return;
  if (typeof Chart === "undefined") {
    document.getElementById("chart-status").textContent = "The chart library did not load.";
    return;
  }
  new Chart(canvas, {
    type: "line",
    data: {
      labels: sizes.map((s) => s.at.slice(11)),
      datasets: [
        {
          label: "Messages waiting",
          data: sizes.map((s) => s.size),
          borderColor: "#8a6d00",
          backgroundColor: "rgba(138, 109, 0, 0.15)",
          fill: true,
          pointRadius: 0,
        },
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
})();
