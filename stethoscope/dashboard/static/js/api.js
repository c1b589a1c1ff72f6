// Shared by the live pages: one way to ask the server, one way to poll it.
//
// fetchOk(url, accept) fetches ``url`` with the page's session cookie, no
// caching and a 10-s timeout; an answer that is not 2xx throws a
// ServerError carrying its status, the JSON error's message and its
// Retry-After.
//
// getJSON(url, listKey) is fetchOk's JSON body once it is an object whose
// ``listKey`` is an array; anything else throws, so the caller's poll sees
// every kind of failure the same way.
//
// poll(step, options) runs ``step`` now and again every ``pollMs`` while it
// succeeds, and keeps the page's live-status line saying how it goes. After
// a failure it waits twice as long each time, up to ``maxBackoffMs`` (at
// least what a 503's Retry-After asks, within that). A 503 is the server
// saying "not now" (a model being activated, a database blip): the line
// says so with the server's reason, the page stays as it is and the poll
// goes on. ``step`` resolving to false ends the polling (nothing to watch).
//
// refreshParts(url, selectors) fetches the HTML at ``url`` and swaps the
// children of each element ``selectors`` name for those the fresh HTML
// has (where they changed): parts of a page the server renders, kept
// live. It resolves to the fresh document.
//
// livePage(id, defaultPollMs, start) starts a live page's script:
// ``start(root, { status, pollMs })`` with the element #id (nothing when
// the page has none), the live-status line and the poll interval the root's
// data-poll-ms asks for.
"use strict";

window.stethoscope = window.stethoscope || {};

window.stethoscope.ServerError = class ServerError extends Error {
  constructor(status, message, retryAfterMs) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
};

window.stethoscope.fetchOk = async function fetchOk(url, accept) {
  const response = await fetch(url, {
    headers: { Accept: accept },
    cache: "no-store",
    credentials: "same-origin",
    signal: AbortSignal.timeout(10000),
  });
  if (!response.ok) {
    let message = "";
    if ((response.headers.get("Content-Type") || "").includes("json")) {
      const body = await response.json().catch(() => ({}));
      message = typeof body.message === "string" ? body.message : "";
    }
    const retryAfter = Number.parseInt(response.headers.get("Retry-After"), 10);
    throw new window.stethoscope.ServerError(
      response.status,
      message,
      Number.isNaN(retryAfter) ? 0 : retryAfter * 1000,
    );
  }
  return response;
};

window.stethoscope.getJSON = async function getJSON(url, listKey) {
  const response = await window.stethoscope.fetchOk(url, "application/json");
  const body = await response.json();
  if (!Array.isArray(body[listKey])) {
    throw new Error("unexpected response");
  }
  return body;
};

window.stethoscope.refreshParts = async function refreshParts(url, selectors) {
  const response = await window.stethoscope.fetchOk(url, "text/html");
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const selector of selectors) {
    const now = document.querySelector(selector);
    const next = fresh.querySelector(selector);
    if (now && next && now.innerHTML !== next.innerHTML) {
      // A copy first: childNodes is live, and each node leaves it as it
      // moves (replaceChildren adopts it into this document).
      now.replaceChildren(...Array.from(next.childNodes));
    }
  }
  return fresh;
};

// Only changes reach the live region, not every poll.
window.stethoscope.setStatus = function setStatus(node, state, text) {
  if (node && (node.dataset.state !== state || node.textContent !== text)) {
    node.dataset.state = state;
    node.textContent = text;
  }
};

window.stethoscope.livePage = function livePage(id, defaultPollMs, start) {
  const root = document.getElementById(id);
  if (root) {
    start(root, {
      status: document.getElementById("live-status"),
      pollMs: Number.parseInt(root.dataset.pollMs, 10) || defaultPollMs,
    });
  }
};

window.stethoscope.poll = function poll(step, { status, pollMs, maxBackoffMs, liveText }) {
  const { ServerError, setStatus } = window.stethoscope;
  let failures = 0;

  async function tick() {
    let delay = pollMs;
    try {
      if ((await step()) === false) {
        return;
      }
      failures = 0;
      setStatus(status, "live", liveText);
    } catch (error) {
      failures += 1;
      delay = Math.min(pollMs * 2 ** failures, maxBackoffMs);
      if (error instanceof ServerError && error.status === 503) {
        delay = Math.min(Math.max(delay, error.retryAfterMs), maxBackoffMs);
        const reason = error.message.replace(/\.?$/, ".");
        setStatus(status, "waiting", `Not available just now: ${reason} Retrying…`);
      } else {
        setStatus(status, "offline", "Cannot reach the server; retrying…");
      }
    }
    window.setTimeout(tick, delay);
  }

  tick();
};
