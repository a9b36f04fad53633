// trackiq dashboard: tabs on a run's page, live updates on every page, uploads on the runs page. Pages work without
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
    const id = document.createElement("code");
    id.textContent = e.run_id;
    link.appendChild(id);
    cell(tr, "").appendChild(link);
    body.prepend(tr);
  }
  for (const n of document.querySelectorAll("[data-live-count]")) {
    n.textContent = String(Number(n.textContent) + 1);
  }
}

// Upload: each file dropped on (or chosen in) a [data-upload] box is posted to /runs/upload,
// the run API's reading and publishing; the answer is shown next to the file's name.
function setupUpload(box) {
  const list = box.querySelector("ul.uploads");
  const input = box.querySelector("input[type=file]");
  function send(file) {
    const li = document.createElement("li");
    li.dataset.file = file.name;
    li.textContent = file.name + ": uploading…";
    list.prepend(li);
    fetch("/runs/upload?format=auto", { method: "POST", body: file, credentials: "same-origin", headers: { "Content-Type": "application/octet-stream" } })
      .then((r) => r.text().then((t) => ({ status: r.status, t })))
      .then(({ status, t }) => {
        let body = null;
        try { body = JSON.parse(t); } catch (_) { /* not JSON: a proxy's or the browser's page */ }
        li.textContent = "";
        const name = document.createElement("strong");
        name.textContent = file.name;
        li.append(name, ": ");
        if (body && Array.isArray(body.runs)) {
          li.className = "uploaded";
          const fresh = body.runs.filter((r) => !r.already_in_history).length;
          li.append(body.format + " · " + body.runs.length + " run(s), " + fresh + " new" + (fresh < body.runs.length ? " (the rest were in the history already)" : "") + " — ");
          body.runs.forEach((r, i) => {
            const a = document.createElement("a");
            a.href = "/runs/" + encodeURIComponent(r.run_id);
            a.textContent = r.workload;
            a.dataset.runId = r.run_id;
            if (i > 0) li.append(", ");
            li.append(a);
          });
        } else {
          li.className = "error";
          li.append("refused (" + status + "): " + (body && body.error ? body.error : t.slice(0, 500)));
        }
      })
      .catch((e) => { li.className = "error"; li.textContent = file.name + ": " + e.message; });
  }
  input.addEventListener("change", () => { Array.from(input.files).forEach(send); input.value = ""; });
  box.addEventListener("dragover", (e) => { e.preventDefault(); box.classList.add("over"); });
  box.addEventListener("dragleave", () => box.classList.remove("over"));
  box.addEventListener("drop", (e) => {
    e.preventDefault();
    box.classList.remove("over");
    Array.from(e.dataTransfer.files).forEach(send);
  });
}

// A launch's page: its output as it is printed, then how it ended and the run it recorded.
function followLaunch(pre) {
  const source = new EventSource(pre.dataset.launchEvents);
  source.addEventListener("line", (m) => { pre.append(m.data + "\n"); });
  source.addEventListener("done", (m) => {
    source.close();
    const o = JSON.parse(m.data);
    const status = document.getElementById("launch-status");
    status.dataset.status = o.status;
    status.textContent = o.status + (o.exit_code == null ? "" : " (exit code " + o.exit_code + ")");
    document.getElementById("launch-cancel").hidden = true;
    if (o.run_id) {
      const p = document.getElementById("launch-run");
      const a = document.createElement("a");
      a.href = "/runs/" + encodeURIComponent(o.run_id);
      a.dataset.launchedRun = o.run_id;
      const code = document.createElement("code");
      code.textContent = o.run_id;
      a.appendChild(code);
      p.textContent = "Run: ";
      p.appendChild(a);
      p.hidden = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-tabs]").forEach(setupTabs);
  if (window.EventSource) {
    // "live" only while the feed is open: `trackiq ui` has none (503), a stopped pipeline
    // drops it (the browser retries; the header says so meanwhile).
    const status = document.getElementById("live-status");
    const source = new EventSource("/events");
    source.addEventListener("run", (m) => onRun(JSON.parse(m.data)));
    source.addEventListener("open", () => {
      if (status) { status.textContent = "live"; status.dataset.connected = "true"; }
    });
    source.addEventListener("error", () => {
      if (!status) return;
      delete status.dataset.connected;
      const closed = source.readyState === EventSource.CLOSED;
      status.textContent = closed ? "not live · history only" : "reconnecting…";
      status.title = closed ? "no pipeline feeds this dashboard: new runs show on reload" : "the live feed was lost; retrying";
    });
  }
  document.querySelectorAll("[data-upload]").forEach(setupUpload);
  document.querySelectorAll("[data-launch-events]").forEach(followLaunch);
  // The compare picker: exactly two runs.
  for (const form of document.querySelectorAll("form[data-compare-picker]")) {
    const button = form.querySelector("button[type=submit]");
    const update = () => { button.disabled = form.querySelectorAll("input[name=run]:checked").length !== 2; };
    form.addEventListener("change", update);
    update();
  }
});
