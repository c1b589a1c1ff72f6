// Live training runs: polls GET /training_runs/bulk_stats for the open runs
// shown and updates their cells (readings, beacons heard, time since the
// last reading, silent or receiving), so the person walking the room sees
// the badges being heard.
//
// No inline script or style (strict Content-Security-Policy), and values
// reach the page only as textContent.
"use strict";

window.stethoscope.livePage("open-runs", 2000, (table, { status, pollMs }) => {
  const statsUrl = new URL(table.dataset.statsUrl, document.baseURI);

  function rows() {
    return Array.from(table.tBodies[0].querySelectorAll("tr[data-run-id]"));
  }

  function setCell(row, field, text, title) {
    const cell = row.querySelector(`[data-field="${field}"]`);
    if (cell && cell.textContent !== text) {
      cell.textContent = text;
    }
    if (cell && title !== undefined) {
      cell.title = title;
    }
  }

  function sinceText(seconds) {
    if (seconds === null || seconds === undefined) {
      return "none yet";
    }
    if (seconds < 120) {
      return `${Math.round(seconds)} s ago`;
    }
    return `${Math.round(seconds / 60)} min ago`;
  }

  function stateText(run) {
    if (run.status === "completed") {
      return "Ended";
    }
    if (run.status === "cancelled") {
      return "Cancelled";
    }
    return run.silent ? "Silent" : "Receiving";
  }

  function update(run) {
    const row = table.querySelector(`tr[data-run-id="${run.id}"]`);
    if (!row) {
      return;
    }
    setCell(row, "readings", String(run.readings));
    setCell(row, "beacons", String(run.beacon_count), run.beacons.join(", "));
    setCell(row, "since", sinceText(run.seconds_since_last));
    setCell(row, "state", stateText(run));
    row.classList.toggle("silent", Boolean(run.silent));
    row.classList.toggle("ended", run.status !== "open");
    if (run.status !== "open") {
      for (const button of row.querySelectorAll("button")) {
        button.disabled = true;
      }
    }
  }

  async function poll() {
    const ids = rows().map((row) => row.dataset.runId);
    if (ids.length === 0) {
      window.stethoscope.setStatus(status, "static", "No open runs.");
      return false;
    }
    const url = new URL(statsUrl);
    url.searchParams.set("run_ids", ids.join(","));
    const body = await window.stethoscope.getJSON(url, "runs");
    for (const run of body.runs) {
      update(run);
    }
    return true;
  }

  window.stethoscope.poll(poll, {
    status,
    pollMs,
    maxBackoffMs: 30000,
    liveText: "Live: statistics update automatically.",
  });
});
