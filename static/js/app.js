// The console's only script besides htmx. Loaded from /static/ (the CSP allows no inline
// script without a nonce), deferred after htmx.

function showMessage(level, text) {
  const box = document.getElementById("messages");
  if (!box) return;
  const p = document.createElement("p");
  p.className = `message message-${level}`;
  p.setAttribute("role", "status");
  p.textContent = text;
  box.appendChild(p);
}

// Show Django messages that arrive with an HTMX response (HX-Trigger: {"messages": [...]}).
document.addEventListener("messages", (event) => {
  if (!event.detail || !Array.isArray(event.detail.value)) return;
  for (const item of event.detail.value) showMessage(item.level, item.message);
});

// A request htmx does not swap (403, 404, 500...; a form's 422 is swapped) would otherwise
// fail in silence: the person clicks and nothing happens.
document.addEventListener("htmx:responseError", (event) => {
  const xhr = event.detail.xhr;
  showMessage("error", `The request failed (${xhr.status} ${xhr.statusText}).`.replace(" )", ")"));
});
document.addEventListener("htmx:sendError", () => {
  showMessage("error", "The server could not be reached. Check your connection and retry.");
});
