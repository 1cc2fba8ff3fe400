/* SPDX-License-Identifier: AGPL-3.0-or-later */
// Portier: small comforts on top of pages that work without JavaScript.
"use strict";
document.addEventListener("submit", (event) => {
  // Forms that undo something ask first (data-confirm="...").
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});
document.addEventListener("DOMContentLoaded", () => {
  // The calendar address: select it all on focus, ready to copy.
  for (const input of document.querySelectorAll("input.copy")) {
    input.addEventListener("focus", () => input.select());
  }
});
