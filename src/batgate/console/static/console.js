// The console's only script: reload the parts of a page marked data-refresh="SECONDS"
// (the same page fetched again, the part swapped), and ask before a form marked
// data-confirm is sent. Everything works without it, but for the live reload.
"use strict";

function refresh(part) {
  const seconds = Number(part.dataset.refresh);
  if (!seconds) return;
  setInterval(async () => {
    if (document.hidden) return;
    try {
      const answer = await fetch(location.href, { credentials: "same-origin" });
      if (!answer.ok || answer.redirected) return;
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      const fresh = page.getElementById(part.id);
      if (fresh) part.replaceChildren(...fresh.childNodes);
    } catch (_) {
      // the gateway restarting: try again next time
    }
  }, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh]").forEach(refresh);
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
});
