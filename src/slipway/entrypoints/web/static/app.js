// Dialogs and error messages for the dashboard; everything else is htmx.
"use strict";
document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-open-dialog]");
  if (opener) {
    document.getElementById(opener.dataset.openDialog)?.showModal();
    return;
  }
  const closer = event.target.closest("[data-close-dialog]");
  if (closer) closer.closest("dialog")?.close();
});

// The Deploy button names the cloud chosen in the dialog.
document.addEventListener("change", (event) => {
  if (event.target.id !== "deploy-cloud") return;
  const label = event.target.form.querySelector(".deploy-cloud-name");
  if (label) label.textContent = event.target.value;
});

// A failed htmx request shows the problem's detail where the form asks for it.
document.addEventListener("htmx:responseError", (event) => {
  const form = event.detail.elt.closest("[data-error-target]");
  const target = form && document.getElementById(form.dataset.errorTarget);
  if (!target) return;
  let text = `${event.detail.xhr.status} ${event.detail.xhr.statusText}`;
  try {
    const problem = JSON.parse(event.detail.xhr.responseText);
    text = problem.detail + (problem.hint ? ` (${problem.hint})` : "");
  } catch (_) { /* not problem details: keep the status line */ }
  target.textContent = text;
  target.hidden = false;
});

// Forms that destroy something ask first (Terminate on the run page).
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
