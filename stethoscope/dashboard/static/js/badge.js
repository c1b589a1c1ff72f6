// One badge, live: a Smoothie chart with one series per beacon, filled on
// load with the badge's last minutes (GET /rssi_readings?badge_id=…&after=<id>,
// page by page) and then kept live by polling the same
// cursor. Points are placed at each reading's observed_at. Every few polls
// the "Now" panel is fetched again (/badges/{id}/now, the server's own
// rendering) and swapped in. The "Today" panel is not: each reading of a
// day's stays is audit-logged, and a page left open would log one a minute.
//
// No inline script or style (strict Content-Security-Policy): series colours
// come from the same palette as the legend's CSS classes (board.css).
"use strict";

window.stethoscope.livePage("badge-chart", 2000, (canvas, { status, pollMs }) => {
  if (typeof SmoothieChart !== "function") {
    return;
  }
  const legend = document.getElementById("chart-legend");
  const feedUrl = new URL(canvas.dataset.feedUrl, document.baseURI);
  const badgeId = canvas.dataset.badgeId;
  const pageLimit = Math.min(Number.parseInt(canvas.dataset.pageLimit, 10) || 500, 500);
  const minutes = Number.parseInt(canvas.dataset.minutes, 10) || 5;
  const maxPagesPerPoll = 20;
  // Eight colour-blind-safe hues (Okabe–Ito), the legend's .series-N.
  const palette = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#8c6d1f"];

  const hhmmss = new Intl.DateTimeFormat("en-GB", {
    timeZone: canvas.dataset.timezone || "UTC",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  });

  let after = Number.parseInt(canvas.dataset.after, 10) || 0;
  const series = new Map();

  const chart = new SmoothieChart({
    responsive: true,
    millisPerPixel: (minutes * 60000) / 900,
    interpolation: "linear",
    minValue: -100,
    maxValue: -30,
    grid: {
      fillStyle: "#ffffff",
      strokeStyle: "#e3e8ef",
      millisPerLine: 60000,
      verticalSections: 7,
      borderVisible: false,
    },
    labels: { fillStyle: "#4a5568", fontSize: 12, precision: 0 },
    // The site's clock, 24-hour, like every time on the page.
    timestampFormatter: (date) => hhmmss.format(date),
  });
  chart.streamTo(canvas, pollMs);

  function legendItem(beaconId) {
    for (const li of legend.querySelectorAll("li[data-beacon-id]")) {
      if (li.dataset.beaconId === beaconId) {
        return li;
      }
    }
    // A beacon the site does not place (an imposter): listed as heard.
    const li = document.createElement("li");
    li.dataset.beaconId = beaconId;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.setAttribute("aria-hidden", "true");
    const name = document.createElement("span");
    name.className = "ident";
    name.textContent = beaconId;
    li.append(swatch, name, " (not in a room)");
    legend.append(li);
    return li;
  }

  function seriesOf(beaconId) {
    let line = series.get(beaconId);
    if (!line) {
      const index = series.size % palette.length;
      line = new TimeSeries();
      chart.addTimeSeries(line, { strokeStyle: palette[index], lineWidth: 2 });
      series.set(beaconId, line);
      const li = legendItem(beaconId);
      li.classList.add("heard", `series-${index}`);
    }
    return line;
  }

  function add(readings) {
    for (const reading of readings) {
      const at = Date.parse(reading.observed_at);
      for (const [beaconId, rssi] of Object.entries(reading.beacons || {})) {
        seriesOf(beaconId).append(at, rssi);
      }
    }
    canvas.dataset.points = String(
      Number.parseInt(canvas.dataset.points || "0", 10) + readings.length,
    );
  }

  const nowPanel = document.getElementById("now");
  const nowUrl = nowPanel ? new URL(nowPanel.dataset.nowUrl, document.baseURI) : null;
  const nowEvery = Math.max(1, Math.round(6000 / pollMs));
  let ticks = 0;

  async function poll() {
    ticks += 1;
    if (nowUrl && ticks % nowEvery === 0) {
      await window.stethoscope.refreshParts(nowUrl, ["#now"]);
    }
    for (let page = 0; page < maxPagesPerPoll; page++) {
      const url = new URL(feedUrl);
      url.searchParams.set("badge_id", badgeId);
      url.searchParams.set("after", String(after));
      url.searchParams.set("limit", String(pageLimit));
      const body = await window.stethoscope.getJSON(url, "readings");
      add(body.readings);
      if (Number.isSafeInteger(body.next_after) && body.next_after > after) {
        after = body.next_after;
      }
      if (body.readings.length < pageLimit) {
        break;
      }
    }
  }

  window.stethoscope.poll(poll, {
    status,
    pollMs,
    maxBackoffMs: 30000,
    liveText: "Live: updates by itself.",
  });
});
