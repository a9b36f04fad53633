// trackiq dashboard: tabs on a run's page and live updates on every page. Pages work without
// it; it is served by the binary (CSP: script-src 'self'), and writes user strings only as
// text (textContent), never as HTML.
"use strict";

// Tabs: a [data-tabs] element's <h2> headings start panes; an <h2 data-tab="X"> joins pane X.
function setupTabs(root) {
  const panes = new Map();
  let current = "Overview";
  for (const node of Array.from(root.childNodes)) {
    if (node.nodeType === Node.ELEMENT_NODE && node.tagName === "H2") {
      current = node.dataset.tab || node.textContent.trim();
    }
    if (!panes.has(current)) {
      const pane = document.createElement("div");
      pane.className = "pane";
      pane.dataset.pane = current;
      panes.set(current, pane);
    }
    panes.get(current).appendChild(node);
  }
  const bar = document.createElement("div");
  bar.className = "tabs";
  bar.setAttribute("role", "tablist");
  for (const [name, pane] of panes) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = name;
    b.dataset.tab = name;
    b.setAttribute("role", "tab");
    b.addEventListener("click", () => show(name));
    bar.appendChild(b);
    root.appendChild(pane);
  }
  root.prepend(bar);
  function show(name) {
    for (const [n, pane] of panes) pane.hidden = n !== name;
    for (const b of bar.children) b.classList.toggle("on", b.dataset.tab === name);
    if (history.replaceState) history.replaceState(null, "", "#" + encodeURIComponent(name));
  }
  const wanted = decodeURIComponent(location.hash.slice(1));
  show(panes.has(wanted) ? wanted : panes.keys().next().value);
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  td.textContent = text;
  row.appendChild(td);
  return td;
}

// A run that was just judged: a row on top of every [data-live-runs] table body.
function onRun(e) {
  const status = document.getElementById("live-status");
  if (status) {
    status.textContent = "live · " + e.workload + " " + (e.severity || e.status) + " at " + new Date().toLocaleTimeString();
    status.dataset.events = String(Number(status.dataset.events || "0") + 1);
  }
  if (e.kind !== "verdict") return;
  for (const body of document.querySelectorAll("[data-live-runs]")) {
    const f = body.dataset;
    if ((f.filterWorkload && f.filterWorkload !== e.workload) || (f.filterHardware && f.filterHardware !== e.hardware) ||
        (f.filterVersion && f.filterVersion !== e.version) || (f.filterSeverity && f.filterSeverity !== e.severity)) continue;
    const old = body.querySelector('tr[data-run-id="' + CSS.escape(e.run_id) + '"]');
    if (old) old.remove();
    const tr = document.createElement("tr");
    tr.dataset.runId = e.run_id;
    tr.className = "live";
    const pick = document.createElement("td");
    if (body.dataset.pick !== undefined) {
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = "run";
      box.value = e.run_id;
      pick.appendChild(box);
    }
    tr.appendChild(pick);
    cell(tr, e.started);
    cell(tr, e.workload);
    cell(tr, e.hardware);
    cell(tr, e.version);
    const commit = document.createElement("code");
    commit.textContent = e.commit;
    cell(tr, "").appendChild(commit);
    const sev = cell(tr, "");
    const badge = document.createElement("span");
    badge.className = "badge " + e.severity.replace(/[^a-z_]/g, "");
    badge.textContent = e.severity;
    sev.appendChild(badge);
    const link = document.createElement("a");
    link.href = "/runs/" + encodeURIComponent(e.run_id);
    link.textContent = e.run_id;
    cell(tr, "").appendChild(link);
    body.prepend(tr);
  }
  for (const n of document.querySelectorAll("[data-live-count]")) {
    n.textContent = String(Number(n.textContent) + 1);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-tabs]").forEach(setupTabs);
  if (window.EventSource) {
    const source = new EventSource("/events");
    source.addEventListener("run", (m) => onRun(JSON.parse(m.data)));
    source.addEventListener("open", () => {
      const status = document.getElementById("live-status");
      if (status) { status.textContent = "live"; status.dataset.connected = "true"; }
    });
  }
  // The compare picker: exactly two runs.
  for (const form of document.querySelectorAll("form[data-compare-picker]")) {
    const button = form.querySelector("button[type=submit]");
    const update = () => { button.disabled = form.querySelectorAll("input[name=run]:checked").length !== 2; };
    form.addEventListener("change", update);
    update();
  }
});
