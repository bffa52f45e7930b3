// The metrics page: the messages chart (vendored Chart.js, data from the page's JSON
// script) and the live view (Server-Sent Events opened with the page's short-lived token).
// A file of its own: the Content-Security-Policy runs no inline script.

(function () {
  const COLOURS = {
    in: "#1f5fa8",
    out: "#6b4fa0",
    delivered: "#1f7a45",
    deferred: "#8a6d00",
    rejected: "#b3261e",
  };
  const data = document.getElementById("metrics-data");
  const canvas = document.getElementById("chart-messages");
  if (data && canvas) {
    const chart = JSON.parse(data.textContent);
    if (typeof Chart === "undefined") {
      document.getElementById("chart-status").textContent = "The chart library did not load.";
    } else {
      new Chart(canvas, {
        type: "line",
        data: {
          labels: chart.labels,
          datasets: Object.entries(chart.series).map(([name, values]) => ({
            label: name,
            data: values,
            borderColor: COLOURS[name],
            pointRadius: 0,
            borderWidth: 1.5,
          })),
        },
        options: {
          animation: false,
          maintainAspectRatio: false,
          scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
        },
      });
    }
  }

  const live = document.getElementById("metrics-live");
  if (!live || typeof EventSource === "undefined") return;
  const status = document.getElementById("metrics-live-status");
  const rows = document.getElementById("metrics-live-rows");
  const source = new EventSource(live.dataset.url);
  source.addEventListener("metrics", (event) => {
    const metrics = JSON.parse(event.data);
    rows.replaceChildren(
      ...Object.entries(metrics).map(([name, m]) => {
        const tr = document.createElement("tr");
        const value = m.type === "histogram" ? `${m.count} (sum ${m.sum.toFixed(1)})` : m.value;
        for (const text of [name, value]) {
          const td = document.createElement("td");
          td.textContent = String(text);
          tr.append(td);
        }
        return tr;
      }),
    );
    status.textContent = "Updated " + new Date().toLocaleTimeString();
  });
  source.addEventListener("end", () => {
    source.close();
    status.textContent = "The live view has ended: reload the page to continue.";
  });
  source.onerror = () => {
    source.close();
    status.textContent = "The live view is not available (reload the page for a new token).";
  };
})();
