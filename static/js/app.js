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

// Select-all per permission group: [data-select-all] ticks every other box of its
// [data-permission-group], and shows "some" (indeterminate) when only part is ticked.
// Delegated, so forms swapped in by htmx work too. Without JavaScript the select-all
// boxes stay hidden and the plain checkboxes still work.
function syncSelectAll(group) {
  const all = group.querySelector("input[data-select-all]");
  if (!all) return;
  const items = [...group.querySelectorAll("input[type=checkbox]:not([data-select-all])")];
  const ticked = items.filter((item) => item.checked).length;
  all.checked = items.length > 0 && ticked === items.length;
  all.indeterminate = ticked > 0 && ticked < items.length;
  all.closest("label")?.removeAttribute("hidden");
}

function syncAllGroups(root) {
  root.querySelectorAll("[data-permission-group]").forEach(syncSelectAll);
}

document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || box.type !== "checkbox") return;
  const group = box.closest("[data-permission-group]");
  if (!group) return;
  if (box.hasAttribute("data-select-all")) {
    group.querySelectorAll("input[type=checkbox]:not([data-select-all])").forEach((item) => {
      item.checked = box.checked;
    });
  }
  syncSelectAll(group);
});
document.addEventListener("htmx:afterSettle", () => syncAllGroups(document));
syncAllGroups(document);

// Address rows (local part @ domain): "Add another address" clones the last row, "Remove"
// drops a row (the last one is only emptied). The server always renders one empty row,
// so without JavaScript a person can still add one address per save.
function renumberAddressRows(box) {
  box.querySelectorAll("[data-address-row]").forEach((row, index) => {
    const n = index + 1;
    row.querySelector("input").setAttribute("aria-label", `Address ${n}: the part before the @`);
    row.querySelector("select").setAttribute("aria-label", `Address ${n}: domain`);
    row.querySelector("[data-remove-address]")?.setAttribute("aria-label", `Remove address ${n}`);
  });
}

function enableAddressRows(root) {
  root.querySelectorAll("[data-address-rows] [hidden]").forEach((button) => {
    if (button.matches("[data-add-address], [data-remove-address]")) button.removeAttribute("hidden");
  });
}

document.addEventListener("click", (event) => {
  const add = event.target.closest("[data-add-address]");
  const remove = event.target.closest("[data-remove-address]");
  if (!add && !remove) return;
  const box = event.target.closest("[data-address-rows]");
  if (!box) return;
  event.preventDefault();
  if (add) {
    const rows = box.querySelectorAll("[data-address-row]");
    const last = rows[rows.length - 1];
    const row = last.cloneNode(true);
    row.querySelector("input").value = "";
    row.querySelector("select").value = last.querySelector("select").value;
    last.after(row);
    renumberAddressRows(box);
    row.querySelector("input").focus();
  } else {
    const row = remove.closest("[data-address-row]");
    if (box.querySelectorAll("[data-address-row]").length > 1) {
      row.remove();
      renumberAddressRows(box);
    } else {
      row.querySelector("input").value = "";
    }
  }
});
document.addEventListener("htmx:afterSettle", () => enableAddressRows(document));
enableAddressRows(document);

// Selects marked [data-autosubmit] (the tenant switcher) submit their form on change; their
// [data-autosubmit-button] is only for browsers without JavaScript.
document.addEventListener("change", (event) => {
  const select = event.target;
  if (select instanceof HTMLSelectElement && select.hasAttribute("data-autosubmit")) {
    select.form?.requestSubmit();
  }
});
document.querySelectorAll("[data-autosubmit-button]").forEach((button) => {
  button.hidden = true;
});

// Copy buttons ([data-copy]): put the value on the clipboard and say so on the button.
// Hidden without JavaScript (the value is selectable text beside them).
function enableCopyButtons(root) {
  root.querySelectorAll("button[data-copy][hidden]").forEach((button) => button.removeAttribute("hidden"));
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement("textarea");  // plain http: the older way
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  event.preventDefault();
  try {
    await copyText(button.dataset.copy);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Select and copy";
  }
  setTimeout(() => { button.textContent = "Copy"; }, 2000);
});
document.addEventListener("htmx:afterSettle", () => enableCopyButtons(document));
enableCopyButtons(document);
