// The reports dashboard: draws its DMARC charts from GET /api/reports/dmarc/summary with
// the vendored Chart.js (static/vendor, no CDN). A file of its own: the
// Content-Security-Policy runs no inline script.

(function () {
  const box = document.getElementById("report-charts");
  const status = document.getElementById("chart-status");
  if (!box) return;
  if (typeof Chart === "undefined") {
    status.textContent = "The chart library did not load.";
    return;
  }
  const PASS = "#2e9e5b";
  const FAIL = "#d64545";

  function daily(data) {
    return new Chart(document.getElementById("chart-daily"), {
      type: "bar",
      data: {
        labels: data.map((d) => d.day),
        datasets: [
          { label: "Passed DMARC", data: data.map((d) => d.pass), backgroundColor: PASS },
          { label: "Failed DMARC", data: data.map((d) => d.fail), backgroundColor: FAIL },
        ],
      },
      options: {
        animation: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
      },
    });
  }

  function alignment(data) {
    return new Chart(document.getElementById("chart-alignment"), {
      type: "doughnut",
      data: {
        labels: ["SPF and DKIM", "SPF only", "DKIM only", "Neither"],
        datasets: [
          {
            data: [data.both, data.spfOnly, data.dkimOnly, data.none],
            backgroundColor: [PASS, "#6cbf84", "#9fd4ad", FAIL],
          },
        ],
      },
      options: { animation: false },
    });
  }

  fetch(box.dataset.summaryUrl, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  })
    .then((response) => {
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      return response.json();
    })
    .then(({ data }) => {
      daily(data.daily);
      alignment(data.alignment);
      status.textContent = data.daily.length ? "" : "No DMARC reports yet.";
      box.dataset.days = String(data.daily.length);
      box.dataset.loaded = "true";
    })
    .catch((error) => {
      status.textContent = `The charts could not be loaded (${error.message}).`;
      box.dataset.loaded = "error";
    });
})();
