/* SPDX-License-Identifier: AGPL-3.0-or-later */
// Portier's entrance screen: the board follows the site live over Server-Sent Events
// (/kiosk/TOKEN/events sends the board's HTML, rendered and escaped by the controller).
// Without JavaScript the page reloads itself every minute instead.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const board = document.getElementById("board");
  if (!board || !window.EventSource) return;
  const events = new EventSource(location.pathname.replace(/\/$/, "") + "/events");
  events.addEventListener("board", (event) => {
    board.innerHTML = event.data;
    board.dataset.updated = String(Date.now());
  });
  // The browser reconnects by itself (the stream says retry: 5000); say so meanwhile.
  events.addEventListener("error", () => board.classList.add("stale"));
  events.addEventListener("open", () => board.classList.remove("stale"));
});
