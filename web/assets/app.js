/* SPDX-License-Identifier: AGPL-3.0-or-later */
// Portier: comforts on top of pages that work without JavaScript.
//  - forms that undo something ask first (data-confirm="...");
//  - the calendar address and one-time links are selected on focus, ready to copy;
//  - links and forms marked data-pjax (a machine's days, slots and booking form) fetch the
//    next page and swap its <main> in, without a full reload; focus moves to what changed,
//    so keyboard and screen-reader users land where they meant to go. Anything unexpected
//    falls back to an ordinary navigation.
"use strict";

function confirmSubmit(event) {
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
    return false;
  }
  return true;
}

function selectOnFocus(root) {
  for (const input of root.querySelectorAll("input.copy")) {
    input.addEventListener("focus", () => input.select());
  }
}

// Put the <main> of html in place of ours; focus the target (#book), a notice, or <main>.
function swapIn(html, url, push) {
  const doc = new DOMParser().parseFromString(html, "text/html");
  const next = doc.querySelector("main");
  const main = document.querySelector("main");
  if (!next || !main) return false;
  main.replaceWith(next);
  if (doc.title) document.title = doc.title;
  if (push) history.pushState({ pjax: true }, "", url);
  selectOnFocus(next);
  const hash = new URL(url, location.href).hash;
  const target = (hash && document.getElementById(hash.slice(1))) ||
    next.querySelector(".notice") || next;
  if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
  target.focus();
  if (target !== next) target.scrollIntoView({ block: "start" });
  return true;
}

async function go(url, init, push) {
  try {
    const response = await fetch(url, Object.assign({ credentials: "same-origin",
      headers: { Accept: "text/html" } }, init));
    const type = response.headers.get("Content-Type") || "";
    if (!type.startsWith("text/html")) throw new Error("not a page");
    // A POST answered with a redirect lands on its page: that address goes to the history.
    if (!swapIn(await response.text(), response.redirected ? response.url : url, push)) {
      throw new Error("no main");
    }
  } catch (e) {
    if (!init || !init.method || init.method === "GET") location.assign(url);
    else throw e;
  }
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-pjax]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey ||
      event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  go(link.href, undefined, true);
});

document.addEventListener("submit", (event) => {
  if (!confirmSubmit(event)) return;
  const form = event.target;
  if (!form.hasAttribute("data-pjax")) return;
  event.preventDefault();
  const data = new URLSearchParams(new FormData(form));
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  if ((form.method || "get").toLowerCase() === "get") {
    const url = new URL(form.action, location.href);
    url.search = data.toString();
    go(url.href, undefined, true);
    return;
  }
  go(form.action, { method: "POST", body: data }, true).catch(() => form.submit());
});

window.addEventListener("popstate", (event) => {
  if (event.state && event.state.pjax) go(location.href, undefined, false);
});

document.addEventListener("DOMContentLoaded", () => {
  history.replaceState({ pjax: true }, "", location.href);
  selectOnFocus(document);
});
