// Live "Recent readings": polls GET /rssi_readings?after=<last id> and adds
// the new rows to the top of the table, and charts how many arrived per poll.
//
// No inline script or style anywhere: the page is served under a strict
// Content-Security-Policy. Data from gateways (badge, gateway and beacon ids
// are any printable ASCII, "<" included) only ever reaches the page as
// textContent, never as markup.
"use strict";

(() => {
  const table = document.getElementById("readings");
  if (!table) {
    return;
  }
  const tbody = table.tBodies[0];
  const status = document.getElementById("live-status");
  const sinceLoad = document.getElementById("readings-since-load");
  const canvas = document.getElementById("readings-chart");

  const feedUrl = new URL(table.dataset.feedUrl, document.baseURI);
  const maxRows = Number.parseInt(table.dataset.maxRows, 10) || 50;
  const pollMs = Number.parseInt(table.dataset.pollMs, 10) || 2000;
  // Catch up on a backlog (a tab that slept, a burst of posts) a page at a
  // time, but within bounds: only the newest maxRows are shown anyway.
  const pageLimit = Number.parseInt(table.dataset.pageLimit, 10) || 100;
  const maxPagesPerPoll = 10;
  const maxBackoffMs = 30000;

  let lastId = Number.parseInt(table.dataset.lastId, 10) || 0;
  let failures = 0;
  let totalNew = 0;

  // ---- times -------------------------------------------------------------

  const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
  const dateAndTime = new Intl.DateTimeFormat(undefined, {
    dateStyle: "medium",
    timeStyle: "medium",
  });
  const fullTime = new Intl.DateTimeFormat(undefined, {
    dateStyle: "full",
    timeStyle: "long",
  });

  function isToday(date) {
    const now = new Date();
    return (
      date.getFullYear() === now.getFullYear() &&
      date.getMonth() === now.getMonth() &&
      date.getDate() === now.getDate()
    );
  }

  // Rewrites a <time datetime="ISO-8601 UTC"> in the viewer's local time:
  // the time alone for today, with the date otherwise; the full form as a
  // tooltip.
  function localise(timeElement) {
    const date = new Date(timeElement.dateTime);
    if (Number.isNaN(date.getTime())) {
      return;
    }
    timeElement.textContent = (isToday(date) ? timeOnly : dateAndTime).format(date);
    timeElement.title = fullTime.format(date);
  }

  // ---- rows --------------------------------------------------------------

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) {
      td.className = className;
    }
    td.textContent = text;
    return td;
  }

  function beaconText(beacons) {
    // Strongest (nearest) first, ties by id: the same order as the server.
    return Object.entries(beacons || {})
      .sort(([a, rssiA], [b, rssiB]) => rssiB - rssiA || (a < b ? -1 : a > b ? 1 : 0))
      .map(([beacon, rssi]) => `${beacon} ${rssi}`)
      .join(", ");
  }

  function readingRow(reading) {
    const row = document.createElement("tr");
    row.dataset.id = String(reading.id);
    row.className = "fresh";
    row.append(cell(String(reading.id), "num"));

    const when = document.createElement("td");
    const time = document.createElement("time");
    time.dateTime = reading.observed_at;
    time.textContent = reading.observed_at;
    localise(time);
    when.append(time);
    row.append(when);

    row.append(cell(reading.badge_id, "ident"));
    row.append(cell(reading.pi_id, "ident"));
    row.append(cell(beaconText(reading.beacons), "beacons"));
    return row;
  }

  // Readings come in id order (oldest first); the table is newest first.
  function addRows(readings) {
    if (readings.length === 0) {
      return;
    }
    for (const empty of tbody.querySelectorAll("tr.empty")) {
      empty.remove();
    }
    const rows = document.createDocumentFragment();
    for (let i = readings.length - 1; i >= 0 && rows.childNodes.length < maxRows; i--) {
      rows.append(readingRow(readings[i]));
    }
    tbody.prepend(rows);
    while (tbody.rows.length > maxRows) {
      tbody.deleteRow(-1);
    }
  }

  // ---- chart -------------------------------------------------------------

  const series = typeof TimeSeries === "function" ? new TimeSeries() : null;
  if (series && canvas && typeof SmoothieChart === "function") {
    const chart = new SmoothieChart({
      responsive: true,
      millisPerPixel: 250,
      minValue: 0,
      maxValueScale: 1.2,
      // A quiet house still gets a readable axis (0 to 5, not 0 to 0).
      yRangeFunction: (range) => ({ min: 0, max: Math.max(5, Math.ceil(range.max)) }),
      interpolation: "step",
      grid: {
        fillStyle: "#ffffff",
        strokeStyle: "#e3e8ef",
        millisPerLine: 30000,
        verticalSections: 4,
        borderVisible: false,
      },
      labels: { fillStyle: "#4a5568", fontSize: 12, precision: 0 },
    });
    chart.addTimeSeries(series, {
      strokeStyle: "#1f6feb",
      fillStyle: "rgba(31, 111, 235, 0.15)",
      lineWidth: 2,
    });
    // Delayed by one poll so that each new point scrolls in smoothly.
    chart.streamTo(canvas, pollMs);
    series.append(Date.now(), 0);
  }

  // ---- polling -----------------------------------------------------------

  function setStatus(state, text) {
    if (status.dataset.state !== state) {
      // Only state changes reach the live region, so that a screen reader
      // is not interrupted every few seconds.
      status.dataset.state = state;
      status.textContent = text;
    }
  }

  async function fetchPage() {
    const url = new URL(feedUrl);
    url.searchParams.set("after", String(lastId));
    url.searchParams.set("limit", String(pageLimit));
    return window.stethoscope.getJSON(url, "readings");
  }

  // Returns how many new readings it added. Rows are added page by page so
  // that a failure part-way keeps lastId and the table in step.
  async function poll() {
    let added = 0;
    for (let page = 0; page < maxPagesPerPoll; page++) {
      const body = await fetchPage();
      addRows(body.readings);
      added += body.readings.length;
      if (Number.isSafeInteger(body.next_after) && body.next_after > lastId) {
        lastId = body.next_after;
      }
      if (body.readings.length < pageLimit) {
        break;
      }
    }
    return added;
  }

  async function tick() {
    let delay = pollMs;
    try {
      const added = await poll();
      totalNew += added;
      sinceLoad.textContent = totalNew.toLocaleString();
      if (series) {
        series.append(Date.now(), added);
      }
      failures = 0;
      setStatus("live", "Live: new readings appear automatically.");
    } catch {
      failures += 1;
      delay = Math.min(pollMs * 2 ** failures, maxBackoffMs);
      setStatus("offline", "Cannot reach the server; retrying…");
    }
    window.setTimeout(tick, delay);
  }

  for (const time of tbody.querySelectorAll("time[datetime]")) {
    localise(time);
  }
  tick();
})();
