// The house now: polls GET /sites/{id}/occupancy and keeps the server-rendered
// board up to date in place. Each badge is one <li data-badge-id>, moved
// between room cards (never rebuilt), so nothing flickers and a screen reader
// keeps its place; ages ("12 s ago") are counted from the server's own "at",
// so a browser clock that is off changes nothing.
//
// A site without an active model has no occupancy to poll (it would answer
// 503 until an admin activates one): the server renders the board without
// data-occupancy-url, and then the page itself is polled instead, its
// notice, status strip, alerts and lists of badges heard swapped in, until
// the fresh page has occupancy again and the board reloads into live mode.
//
// No inline script or style (strict Content-Security-Policy); names and ids
// reach the page only as textContent.
"use strict";

window.stethoscope.livePage("board", 5000, (board, { status, pollMs }) => {
  const search = document.getElementById("board-search");
  const unknownList = document.getElementById("unknown-list");
  const unheardList = document.getElementById("unheard-list");
  const occupancyUrl = board.dataset.occupancyUrl;
  const badgeUrl = board.dataset.badgeUrl;
  const timeZone = board.dataset.timezone || "UTC";
  const hhmm = new Intl.DateTimeFormat("en-GB", {
    timeZone,
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  });
  // Server time minus browser time, from the last answer's "at".
  let skewMs = 0;

  function ageText(iso, withAgo) {
    const then = Date.parse(iso);
    if (Number.isNaN(then)) {
      return "never";
    }
    const seconds = (Date.now() + skewMs - then) / 1000;
    let text;
    if (seconds < 1) {
      return "just now";
    } else if (seconds < 120) {
      text = `${Math.floor(seconds)} s`;
    } else if (seconds < 7200) {
      text = `${Math.floor(seconds / 60)} min`;
    } else if (seconds < 172800) {
      text = `${Math.floor(seconds / 3600)} h`;
    } else {
      text = `${Math.floor(seconds / 86400)} d`;
    }
    return withAgo ? `${text} ago` : text;
  }

  function setText(node, text) {
    if (node && node.textContent !== text) {
      node.textContent = text;
    }
  }

  function confidenceWord(p) {
    return p >= 0.8 ? "high" : p >= 0.5 ? "medium" : "low";
  }

  function span(className, text) {
    const node = document.createElement("span");
    node.className = className;
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function whoNodes(item) {
    if (item.wearer) {
      const name = document.createElement("bdi");
      name.className = "who-name";
      name.textContent = item.wearer;
      return [name, " ", span("who-badge ident", item.badge_id)];
    }
    return [span("who-name ident", item.badge_id)];
  }

  // A new <li> in the shape _board.jinja2 renders.
  function newItem(item, kind) {
    const li = document.createElement("li");
    li.className = "occupant";
    li.dataset.badgeId = item.badge_id;
    const link = document.createElement("a");
    link.href = badgeUrl.replace("BADGE", encodeURIComponent(item.badge_id));
    link.append(...whoNodes(item));
    li.append(link, " ");
    if (kind === "not_heard") {
      li.classList.add("unheard");
      const since = span("since", "last heard ");
      const last = span("");
      last.dataset.field = "last-heard";
      since.append(last);
      li.append(since);
      return li;
    }
    const since = span("since", "since ");
    const time = document.createElement("time");
    time.dataset.field = "since";
    const age = span("");
    age.dataset.field = "since-age";
    since.append(time, " (", age, ")");
    const confidence = span("confidence");
    confidence.dataset.field = "confidence";
    li.append(since, " ", confidence);
    if (kind === "unknown") {
      const reason = span("reason");
      reason.dataset.field = "reason";
      li.append(" ", reason);
    }
    return li;
  }

  function fill(li, item, kind) {
    li.dataset.search = `${item.badge_id} ${item.wearer || ""}`;
    if (kind === "not_heard") {
      const last = li.querySelector('[data-field="last-heard"]');
      last.dataset.since = item.last_heard || "";
      setText(last, item.last_heard ? ageText(item.last_heard, true) : "never");
      return;
    }
    const time = li.querySelector('[data-field="since"]');
    if (time.dateTime !== item.since) {
      time.dateTime = item.since;
      setText(time, hhmm.format(new Date(item.since)));
    }
    const age = li.querySelector('[data-field="since-age"]');
    age.dataset.since = item.since;
    setText(age, ageText(item.since, false));
    const word = confidenceWord(item.confidence);
    for (const w of ["high", "medium", "low"]) {
      li.classList.toggle(`confidence-${w}`, w === word);
    }
    const confidence = li.querySelector('[data-field="confidence"]');
    const text = `${word} (${Math.round(item.confidence * 100)} %)`;
    if (confidence.lastChild === null || confidence.textContent !== text) {
      confidence.replaceChildren(span("cue"), text);
      confidence.firstChild.setAttribute("aria-hidden", "true");
    }
    setText(li.querySelector('[data-field="reason"]'), item.reason || "");
  }

  // Puts ``items`` into ``list`` in order, reusing each badge's <li> from
  // wherever it is on the page; returns the badges placed.
  function place(list, items, kind, existing) {
    const placed = new Set();
    let previous = null;
    for (const item of items) {
      let li = existing.get(item.badge_id);
      const wrongKind =
        li && (kind === "not_heard") !== li.classList.contains("unheard");
      if (!li || wrongKind || (kind === "unknown") !== Boolean(li.querySelector('[data-field="reason"]'))) {
        if (li) {
          li.remove();
        }
        li = newItem(item, kind);
        existing.set(item.badge_id, li);
      }
      fill(li, item, kind);
      const next = previous ? previous.nextSibling : list.firstChild;
      if (li.parentNode !== list || li !== next) {
        list.insertBefore(li, next);
      }
      previous = li;
      placed.add(item.badge_id);
    }
    return placed;
  }

  function update(body) {
    const at = Date.parse(body.at);
    if (!Number.isNaN(at)) {
      skewMs = at - Date.now();
    }
    const existing = new Map();
    for (const li of document.querySelectorAll("li[data-badge-id]")) {
      existing.set(li.dataset.badgeId, li);
    }
    const placed = new Set();
    for (const room of body.rooms) {
      const card = board.querySelector(`[data-room-id="${CSS.escape(room.room_id)}"]`);
      if (!card) {
        continue;
      }
      const list = card.querySelector("ul.occupants");
      for (const id of place(list, room.badges, "room", existing)) {
        placed.add(id);
      }
      setText(card.querySelector('[data-field="count"]'), String(room.badges.length));
    }
    for (const id of place(unknownList, body.unknown, "unknown", existing)) {
      placed.add(id);
    }
    for (const id of place(unheardList, body.not_heard, "not_heard", existing)) {
      placed.add(id);
    }
    for (const [id, li] of existing) {
      if (!placed.has(id)) {
        li.remove();
      }
    }
    for (const note of document.querySelectorAll("[data-empty-for]")) {
      const list = document.getElementById(note.dataset.emptyFor);
      note.hidden = list.children.length > 0;
    }
    filter();
  }

  function refreshAges() {
    for (const node of document.querySelectorAll("[data-since]")) {
      if (node.dataset.since) {
        setText(node, ageText(node.dataset.since, node.dataset.field === "last-heard"));
      }
    }
  }

  function filter() {
    const words = (search ? search.value : "").trim().toLocaleLowerCase();
    for (const li of document.querySelectorAll("li[data-badge-id]")) {
      const text = (li.dataset.search || "").toLocaleLowerCase();
      li.hidden = words !== "" && !text.includes(words);
    }
  }

  // The status strip and the alerts are the server's own rendering: every
  // few polls the page is fetched again and those parts swapped in (every
  // poll, with the notice and the lists, while there is no occupancy).
  const refreshEvery = 6;
  let ticks = 0;

  function refreshParts(selectors) {
    return window.stethoscope.refreshParts(window.location.href, selectors);
  }

  async function pollOccupancy() {
    update(await window.stethoscope.getJSON(occupancyUrl, "rooms"));
    ticks += 1;
    if (ticks % refreshEvery === 0) {
      await refreshParts(["#alerts", "#status-strip"]);
    }
  }

  async function pollPage() {
    const fresh = await refreshParts(["#alerts", "#status-strip", "#no-locations", "#apart"]);
    const freshBoard = fresh.getElementById("board");
    if (freshBoard && freshBoard.dataset.occupancyUrl) {
      window.location.reload();
      return false;
    }
    filter();
    return true;
  }

  if (search) {
    search.addEventListener("input", filter);
    // The form still works without JavaScript (the server filters); with
    // it, filtering is immediate and the page stays live.
    search.form.addEventListener("submit", (event) => {
      if (!search.form.querySelector("select")) {
        event.preventDefault();
        filter();
      }
    });
  }
  const picker = document.getElementById("site-picker");
  if (picker) {
    picker.addEventListener("change", () => picker.form.submit());
  }
  if (board.dataset.at) {
    skewMs = Date.parse(board.dataset.at) - Date.now();
  }
  window.setInterval(refreshAges, 1000);
  if (occupancyUrl) {
    window.stethoscope.poll(pollOccupancy, {
      status,
      pollMs,
      maxBackoffMs: 60000,
      liveText: "Live: updates by itself.",
    });
  } else {
    window.stethoscope.poll(pollPage, {
      status,
      pollMs,
      maxBackoffMs: 60000,
      liveText: "Live: who is heard updates by itself; no locations yet.",
    });
  }
});
