// Shared by the live pages: one way to ask the JSON API for data.
//
// getJSON(url, listKey) fetches ``url`` with the page's session cookie, no
// caching and a 10-s timeout, and returns the body once it is an object
// whose ``listKey`` is an array; anything else throws, so the caller's
// retry-with-backoff sees every kind of failure the same way.
"use strict";

window.stethoscope = window.stethoscope || {};

window.stethoscope.getJSON = async function getJSON(url, listKey) {
  const response = await fetch(url, {
    headers: { Accept: "application/json" },
    cache: "no-store",
    credentials: "same-origin",
    signal: AbortSignal.timeout(10000),
  });
  if (!response.ok) {
    throw new Error(`HTTP ${response.status}`);
  }
  const body = await response.json();
  if (!Array.isArray(body[listKey])) {
    throw new Error("unexpected response");
  }
  return body;
};
