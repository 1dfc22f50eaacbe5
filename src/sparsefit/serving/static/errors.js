/* The red message area under the top bar: one line per distinct error, a counter for repeats; uncaught
 * errors and rejected promises are shown there too. */
import { $, h } from "./dom.js";

const MAX_SHOWN = 5;

/** Show an error in the red message area (same message twice: a counter, not a second box). */
export function showError(message) {
  const errorBox = $("#errors");
  const text = String(message instanceof Error ? message.message : message);
  for (const box of errorBox.children) {
    if (box.dataset.text === text) {
      const count = box.querySelector(".count");
      count.textContent = `×${Number(count.dataset.n) + 1}`;
      count.dataset.n = String(Number(count.dataset.n) + 1);
      count.classList.remove("hidden");
      return;
    }
  }
  const box = h("div", { class: "error-msg", "data-testid": "error-message", "data-text": text },
    h("span", { class: "text", text }),
    h("span", { class: "count hidden", "data-n": "1" }),
    h("button", { type: "button", title: "dismiss", "aria-label": "dismiss", onclick: () => box.remove() }, "×"));
  errorBox.appendChild(box);
  while (errorBox.children.length > MAX_SHOWN) errorBox.firstChild.remove();
}

// Uncaught errors and rejected promises land in the message area too, not only in the console. Installed
// when this module is evaluated: main.js imports it first, before the modules of the tabs.
window.addEventListener("unhandledrejection", (ev) => showError(ev.reason || "unexpected error"));
window.addEventListener("error", (ev) => showError(`script error: ${ev.message}`));
