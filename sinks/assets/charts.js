// trackiq dashboard: interactive charts. Each <figure data-chart="URL"> keeps its SVG (the page
// without script); this fetches the chart's JSON (sinks/src/dashboard/charts.rs) and draws it
// with uPlot (assets/vendor/uplot, MIT): hover for a point's value, run, version, commit and
// verdict; drag to zoom the x range, double-click to reset; a log-scale toggle; a legend
// naming each overlaid line. User strings are written as text only (textContent).
"use strict";

const COLORS = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037", "#ad1457"];
const HEIGHT = 340;

function fmt(v) {
  if (v == null || !Number.isFinite(v)) return "—";
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e6 || a < 1e-3) ? v.toExponential(3) : String(Number(v.toPrecision(6)));
}

function fmtX(chart, x) {
  return chart.x_time ? new Date(x * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC" : fmt(x) + " s";
}

// The chart's lines (and the first line's baseline band) aligned on one x axis.
function aligned(chart, log) {
  const y = (v) => (log && !(v > 0) ? null : v);
  const tables = chart.lines.map((l) => [l.x, l.y.map(y)]);
  const band = chart.lines.length > 0 && chart.lines[0].lower;
  if (band) {
    tables.push([chart.lines[0].x, chart.lines[0].lower.map(y)], [chart.lines[0].x, chart.lines[0].upper.map(y)]);
  }
  return { data: uPlot.join(tables), band: !!band };
}

function tooltipText(chart, lookups, u, idx) {
  if (idx == null) return "";
  const x = u.data[0][idx];
  const parts = [fmtX(chart, x)];
  chart.lines.forEach((line, i) => {
    const v = u.data[i + 1][idx];
    const k = lookups[i].get(x);
    if (v == null || k === undefined) return;
    const run = chart.runs[line.run[k]];
    const unit = chart.unit ? " " + chart.unit : "";
    parts.push(line.label + ": " + fmt(line.y[k]) + unit, "run " + run.run_id);
    const about = [run.version && "version " + run.version, run.commit && "commit " + run.commit, run.verdict && "verdict " + run.verdict].filter(Boolean);
    if (about.length > 0) parts.push(about.join(" · "));
  });
  return parts.length > 1 ? parts.join("\n") : "";
}

function draw(figure, chart) {
  const host = document.createElement("div");
  host.className = "chart-live";
  const tools = document.createElement("div");
  tools.className = "chart-tools";
  const logLabel = document.createElement("label");
  const logBox = document.createElement("input");
  logBox.type = "checkbox";
  logBox.name = "log-scale";
  logLabel.append(logBox, " log scale");
  const hint = document.createElement("span");
  hint.className = "sub";
  hint.textContent = " · drag to zoom, double-click to reset";
  tools.append(logLabel, hint);
  const plot = document.createElement("div");
  const tip = document.createElement("div");
  tip.className = "chart-tip";
  tip.hidden = true;
  host.append(tools, plot, tip);
  const svg = figure.querySelector("svg");
  if (svg) svg.style.display = "none";
  // The SVG's caption describes the SVG's marks; the interactive chart says what it shows.
  const caption = figure.nextElementSibling;
  if (caption && caption.classList.contains("chart-caption")) {
    caption.textContent = "Each line: a series' judged value per run · grey band: the first series' baseline limits · hover a point for its run, version, commit and verdict.";
  }
  figure.prepend(host);
  const lookups = chart.lines.map((l) => new Map(l.x.map((x, k) => [x, k])));
  const yTitle = chart.metric + (chart.unit ? " (" + chart.unit + ")" : "");
  let u = null;

  function build() {
    const log = logBox.checked;
    const { data, band } = aligned(chart, log);
    const series = [{ label: chart.x_label, value: (_, x) => (x == null ? "—" : fmtX(chart, x)) }];
    chart.lines.forEach((l, i) => series.push({ label: l.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true, points: { show: true, size: 6 }, value: (_, v) => fmt(v) }));
    const bands = [];
    if (band) {
      const n = chart.lines.length;
      series.push({ label: "baseline lower", stroke: "#9e9e9e", dash: [4, 4], spanGaps: true, points: { show: false } });
      series.push({ label: "baseline upper", stroke: "#9e9e9e", dash: [4, 4], spanGaps: true, points: { show: false } });
      bands.push({ series: [n + 2, n + 1], fill: "rgba(120,120,120,0.12)" });
    }
    const opts = {
      width: Math.max(320, Math.min(figure.clientWidth || 900, 1300)),
      height: HEIGHT,
      scales: { x: { time: chart.x_time }, y: { distr: log ? 3 : 1 } },
      axes: [{ label: chart.x_label }, { label: yTitle, size: 70 }],
      series,
      bands,
      cursor: { drag: { x: true, y: false }, points: { size: 8 } },
      hooks: {
        setCursor: [(p) => {
          const t = tooltipText(chart, lookups, p, p.cursor.idx);
          tip.textContent = t;
          tip.hidden = t === "";
          if (t !== "") {
            // Beside the cursor, on the side with room (the plot area starts at over's offset).
            const left = p.over.offsetLeft + p.cursor.left;
            const right = left > p.over.clientWidth / 2;
            tip.style.left = right ? "" : left + 14 + "px";
            tip.style.right = right ? host.clientWidth - left + 14 + "px" : "";
            tip.style.top = p.over.offsetTop + p.cursor.top + tools.offsetHeight + 12 + "px";
          }
        }],
        setScale: [(p, key) => {
          if (key !== "x") return;
          figure.dataset.xMin = String(p.scales.x.min);
          figure.dataset.xMax = String(p.scales.x.max);
        }],
      },
    };
    if (u) u.destroy();
    u = new uPlot(opts, data, plot);
    figure.uplot = u;
    figure.dataset.lines = String(chart.lines.length);
    figure.dataset.scale = log ? "log" : "linear";
  }
  logBox.addEventListener("change", build);
  build();
  figure.dataset.ready = "";
}

function setupChart(figure) {
  fetch(figure.dataset.chart, { credentials: "same-origin" })
    .then((r) => r.json().then((body) => ({ ok: r.ok, body })))
    .then(({ ok, body }) => {
      if (!ok) throw new Error(body.error || "the chart could not be loaded");
      if (!body.lines.some((l) => l.x.length > 0)) return;
      draw(figure, body);
    })
    .catch((e) => {
      const p = document.createElement("p");
      p.className = "error";
      p.textContent = "Interactive chart unavailable: " + e.message;
      figure.append(p);
    });
}

document.addEventListener("DOMContentLoaded", () => {
  if (typeof uPlot === "undefined") return;
  for (const f of document.querySelectorAll("figure[data-chart]")) setupChart(f);
});
