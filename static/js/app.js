// Show Django messages that arrive with an HTMX response (HX-Trigger: {"messages": [...]}).
document.addEventListener("messages", (event) => {
  const box = document.getElementById("messages");
  if (!box || !event.detail || !Array.isArray(event.detail.value)) return;
  for (const item of event.detail.value) {
    const p = document.createElement("p");
    p.className = `message message-${item.level}`;
    p.setAttribute("role", "status");
    p.textContent = item.message;
    box.appendChild(p);
  }
});
