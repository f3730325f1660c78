// mirrortray's page: the little it needs beyond plain HTML.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // A new moment in the picker shows the folder at once.
  for (const sel of document.querySelectorAll("select[data-autosubmit]")) {
    sel.addEventListener("change", () => sel.form.submit());
  }
  // A button that stops something asks first.
  for (const b of document.querySelectorAll("button[data-confirm]")) {
    b.addEventListener("click", (e) => {
      if (!window.confirm(b.dataset.confirm)) {
        e.preventDefault();
      }
    });
  }
  // A button pressed once: a restore is not started twice by a double click.
  for (const form of document.querySelectorAll("form[method=post]")) {
    form.addEventListener("submit", () => {
      for (const b of form.querySelectorAll("button")) {
        setTimeout(() => { b.disabled = true; }, 0);
      }
      document.body.classList.add("working");
    });
  }
});
