// cnnlab explorer: the page behind `cnnlab explore`. Plain JavaScript and SVG, no library and
// no build step; every number comes from the JSON API of the same server (/api/...).
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const $ = (selector, root = document) => root.querySelector(selector);

// ------------------------------------------------------------------ small helpers

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function s(tag, attrs = {}, parent = null, text = null) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [key, value] of Object.entries(attrs)) if (value !== null && value !== undefined) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  if (parent) parent.append(node);
  return node;
}

const fmt = {
  int: (n) => (n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-US")),
  human(n) {
    if (n === null || n === undefined) return "–";
    for (const [unit, scale] of [["G", 1e9], ["M", 1e6], ["K", 1e3]]) if (Math.abs(n) >= scale) return (n / scale).toFixed(2) + unit;
    return String(Math.round(n * 100) / 100);
  },
  num(n, digits = 3) {
    if (n === null || n === undefined || Number.isNaN(n)) return "–";
    if (n !== 0 && (Math.abs(n) < 1e-3 || Math.abs(n) >= 1e5)) return n.toExponential(digits - 1);
    return Number(n.toPrecision(digits)).toString();
  },
  pct: (n) => (n === null || n === undefined ? "–" : n.toFixed(2)),
  bytes(n) {
    for (const [unit, scale] of [["GB", 1e9], ["MB", 1e6], ["KB", 1e3]]) if (n >= scale) return (n / scale).toFixed(1) + " " + unit;
    return n + " B";
  },
};

async function api(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, value);
  }
  const response = await fetch(url);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
    throw new Error(detail || `${response.status} ${response.statusText}`);
  }
  return body;
}

function debounce(fn, ms = 150) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

const randomSeed = () => Math.floor(Math.random() * 2147483647);

// Each panel: a state shown on its section (idle, loading, ready, error) and a version that
// grows with each drawing, so a reader (or a test) knows when a new result is on screen.
const tokens = {};
function setState(panel, state, message = "") {
  const section = document.getElementById(panel);
  section.dataset.state = state;
  const box = $(".error", section);
  box.hidden = state !== "error";
  box.textContent = state === "error" ? message : "";
  if (state === "ready") section.dataset.version = String(Number(section.dataset.version || 0) + 1);
}

// ``channel`` separates requests that do not replace each other (a panel's list and its detail).
async function update(panel, fetcher, drawer, channel = panel) {
  const token = (tokens[channel] = (tokens[channel] || 0) + 1);
  setState(panel, "loading");
  try {
    const data = await fetcher();
    if (token !== tokens[channel]) return; // a newer request has been made: drop this one
    drawer(data);
    setState(panel, "ready");
  } catch (error) {
    if (token === tokens[channel]) setState(panel, "error", error.message);
  }
}

function bindOutput(input, format = (v) => v) {
  const output = input.parentElement.querySelector("output");
  const show = () => { if (output) output.textContent = format(input.value); };
  input.addEventListener("input", show);
  show();
}

function fillSelect(select, options, value) {
  select.replaceChildren(...options.map(([v, label]) => h("option", { value: v, text: label })));
  if (value !== undefined && options.some(([v]) => String(v) === String(value))) select.value = value;
}

// ------------------------------------------------------------------ SVG charts

function niceStep(span, count) {
  const raw = span / Math.max(count, 1);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const unit = raw / power;
  return (unit >= 5 ? 10 : unit >= 2 ? 5 : unit >= 1 ? 2 : 1) * power;
}

function scale(domain, range, log = false) {
  let [d0, d1] = domain;
  if (log) { d0 = Math.log10(d0); d1 = Math.log10(d1); }
  if (d1 === d0) { d1 = d0 + 1; }
  const f = (v) => range[0] + ((log ? Math.log10(Math.max(v, 1e-300)) : v) - d0) / (d1 - d0) * (range[1] - range[0]);
  f.ticks = (count = 5) => {
    if (log) {
      const out = [];
      for (let p = Math.floor(d0); p <= Math.ceil(d1); p++) if (p >= d0 - 1e-9 && p <= d1 + 1e-9) out.push(Math.pow(10, p));
      if (out.length < 2) for (const m of [2, 5]) for (let p = Math.floor(d0); p <= Math.ceil(d1); p++) {
        const v = m * Math.pow(10, p);
        if (Math.log10(v) >= d0 && Math.log10(v) <= d1) out.push(v);
      }
      return out.sort((a, b) => a - b);
    }
    const step = niceStep(d1 - d0, count);
    const out = [];
    for (let v = Math.ceil(d0 / step) * step; v <= d1 + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  };
  return f;
}

function extent(values, log = false) {
  const finite = values.filter((v) => v !== null && v !== undefined && Number.isFinite(v) && (!log || v > 0));
  if (!finite.length) return log ? [1, 10] : [0, 1];
  let lo = Math.min(...finite), hi = Math.max(...finite);
  if (log) { lo /= 1.5; hi *= 1.5; } else { const pad = (hi - lo) * 0.06 || Math.abs(hi) * 0.1 || 1; lo -= pad; hi += pad; }
  return [lo, hi];
}

function frame(container, { width = 520, height = 300, title = "", xlabel = "", ylabel = "", left = 60, bottom = 42, top = 28 } = {}) {
  container.replaceChildren();
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" }, container);
  if (title) s("text", { x: left, y: 16, class: "title" }, svg, title);
  const box = { x0: left, x1: width - 14, y0: height - bottom, y1: top };
  if (xlabel) s("text", { x: (box.x0 + box.x1) / 2, y: height - 6, "text-anchor": "middle", class: "label" }, svg, xlabel);
  if (ylabel) s("text", { x: 12, y: (box.y0 + box.y1) / 2, "text-anchor": "middle", class: "label",
    transform: `rotate(-90 12 ${(box.y0 + box.y1) / 2})` }, svg, ylabel);
  return { svg, box };
}

function axes(svg, box, x, y, { xfmt = fmt.num, yfmt = fmt.num, xticks = null } = {}) {
  const grid = s("g", { class: "grid" }, svg);
  const axis = s("g", { class: "axis" }, svg);
  for (const t of y.ticks(5)) {
    const py = y(t);
    if (py < box.y1 - 1 || py > box.y0 + 1) continue;
    s("line", { x1: box.x0, x2: box.x1, y1: py, y2: py }, grid);
    s("text", { x: box.x0 - 5, y: py + 3, "text-anchor": "end" }, axis, yfmt(t));
  }
  for (const t of xticks || x.ticks(6)) {
    const px = x(t);
    if (px < box.x0 - 1 || px > box.x1 + 1) continue;
    s("line", { x1: px, x2: px, y1: box.y0, y2: box.y0 + 4 }, axis);
    s("text", { x: px, y: box.y0 + 15, "text-anchor": "middle" }, axis, xfmt(t));
  }
  s("line", { x1: box.x0, x2: box.x1, y1: box.y0, y2: box.y0 }, axis);
  s("line", { x1: box.x0, x2: box.x0, y1: box.y0, y2: box.y1 }, axis);
}

// The legend: rows under the title, left to right; legendRows says how many it takes.
const legendWidth = (label) => 30 + label.length * 6.2;
function legendRows(entries, width) {
  let rows = 1, x = 0;
  for (const [label] of entries) {
    if (x && x + legendWidth(label) > width) { rows += 1; x = 0; }
    x += legendWidth(label);
  }
  return rows;
}
function legend(svg, box, entries) {
  const g = s("g", { class: "legend" }, svg);
  let x = box.x0, y = 30;
  for (const [label, cls] of entries) {
    if (x > box.x0 && x + legendWidth(label) > box.x1) { x = box.x0; y += 15; }
    s("line", { x1: x, x2: x + 14, y1: y, y2: y, class: cls }, g);
    s("text", { x: x + 17, y: y + 3 }, g, label);
    x += legendWidth(label);
  }
}

function scatterChart(container, points, { title, xlabel, ylabel, selected = [], onClick }) {
  const { svg, box } = frame(container, { title, xlabel, ylabel });
  const x = scale(extent(points.map((p) => p.x), true), [box.x0, box.x1], true);
  const y = scale(extent(points.map((p) => p.y)), [box.y0, box.y1]);
  axes(svg, box, x, y, { xfmt: fmt.human, yfmt: (v) => fmt.num(v) });
  const frontier = points.filter((p) => p.pareto).sort((a, b) => a.x - b.x);
  if (frontier.length) {
    let d = "";
    frontier.forEach((p, i) => { d += i ? ` H${x(p.x)} V${y(p.y)}` : `M${x(p.x)} ${y(p.y)}`; });
    s("path", { d, class: "pareto" }, svg);
  }
  for (const p of points) {
    const dot = s("circle", { cx: x(p.x), cy: y(p.y), r: p.pareto ? 5 : 4,
      class: `point${p.pareto ? " pareto" : ""}${selected.includes(p.name) ? " selected" : ""}`, "data-name": p.name }, svg);
    s("title", {}, dot, `${p.name}: ${fmt.pct(p.y)}% at ${fmt.human(p.x)}${p.pareto ? " (Pareto frontier)" : ""}`);
    if (onClick) dot.addEventListener("click", () => onClick(p.name));
  }
  // Names of the frontier's models, where they do not cover one another.
  const placed = [];
  for (const p of frontier) {
    const lx = Math.min(x(p.x) + 6, box.x1 - p.name.length * 5.6), ly = y(p.y) - 6;
    if (placed.some(([px, py, w]) => Math.abs(ly - py) < 12 && lx < px + w && px < lx + p.name.length * 5.6)) continue;
    placed.push([lx, ly, p.name.length * 5.6]);
    s("text", { x: lx, y: ly, class: "label" }, svg, p.name);
  }
}

function barChart(container, values, { title, ylabel, log = false, alt = null, labels = null, xlabel = "layer (forward order)" }) {
  const { svg, box } = frame(container, { width: 980, height: 280, title, ylabel, xlabel });
  const all = values.concat(alt || []).filter((v) => v !== null);
  const y = scale(log ? extent(all, true) : [Math.min(0, ...all), Math.max(...all, 1e-12) * 1.08], [box.y0, box.y1], log);
  const x = scale([0, Math.max(values.length, 1)], [box.x0, box.x1]);
  axes(svg, box, x, y, { yfmt: log ? fmt.num : fmt.human, xfmt: (v) => v.toFixed(0) });
  const width = Math.max((box.x1 - box.x0) / Math.max(values.length, 1) / (alt ? 2 : 1) - 0.6, 0.6);
  const base = log ? box.y0 : y(0);
  values.forEach((v, i) => {
    if (v === null || (log && v <= 0)) return;
    const bar = s("rect", { x: x(i), y: Math.min(y(v), base), width, height: Math.abs(base - y(v)), class: "bar" }, svg);
    s("title", {}, bar, `${labels ? labels[i] : i}: ${fmt.num(v, 4)}`);
    if (alt && alt[i] !== null && (!log || alt[i] > 0)) {
      const other = s("rect", { x: x(i) + width, y: Math.min(y(alt[i]), base), width, height: Math.abs(base - y(alt[i])), class: "bar alt" }, svg);
      s("title", {}, other, `${labels ? labels[i] : i}: ${fmt.num(alt[i], 4)}`);
    }
  });
  return svg;
}

function lineChart(container, series, { title, xlabel, ylabel, log = false, width = 520, height = 300, xfmt }) {
  const rows = legendRows(series.map((ser) => [ser.name]), width - 74);
  const { svg, box } = frame(container, { title, xlabel, ylabel, width, height: height + 15 * (rows - 1),
    top: 46 + 15 * (rows - 1) });
  const xs = series.flatMap((ser) => ser.points.map((p) => p[0]));
  const ys = series.flatMap((ser) => ser.points.map((p) => p[1]));
  const x = scale(xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1], [box.x0, box.x1]);
  const y = scale(extent(ys, log), [box.y0, box.y1], log);
  axes(svg, box, x, y, { xfmt: xfmt || ((v) => fmt.num(v)) });
  series.forEach((ser) => {
    const pts = ser.points.filter((p) => p[1] !== null && Number.isFinite(p[1]) && (!log || p[1] > 0));
    if (!pts.length) return;
    s("path", { d: pts.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)} ${y(p[1]).toFixed(1)}`).join(" "),
      class: `line ${ser.cls}${ser.faint ? " faint" : ""}`, "data-series": ser.name }, svg);
    for (const p of pts.length <= 60 ? pts : []) {
      const dot = s("circle", { cx: x(p[0]), cy: y(p[1]), r: 2.4, class: `dot ${ser.cls.replace("series", "dot")}${ser.faint ? " faint" : ""}` }, svg);
      s("title", {}, dot, `${ser.name}, ${fmt.num(p[0])}: ${fmt.num(p[1], 4)}`);
    }
  });
  legend(svg, box, series.map((ser) => [ser.name, ser.cls]));
  return svg;
}

function histogramChart(container, hist, title) {
  const { svg, box } = frame(container, { width: 300, height: 210, title, left: 44, bottom: 34 });
  if (!hist) { s("text", { x: 60, y: 100, class: "label" }, svg, "no histogram (see the note below)"); return; }
  const x = scale([hist.low, hist.high], [box.x0, box.x1]);
  const y = scale([0, Math.max(...hist.counts, 1) * 1.08], [box.y0, box.y1]);
  axes(svg, box, x, y, { yfmt: fmt.human });
  const step = (hist.high - hist.low) / hist.counts.length;
  hist.counts.forEach((c, i) => {
    const bar = s("rect", { x: x(hist.low + i * step), y: y(c), width: Math.max(x(hist.low + step) - x(hist.low) - 0.5, 0.5),
      height: box.y0 - y(c), class: "bar" }, svg);
    s("title", {}, bar, `${fmt.num(hist.low + i * step)} to ${fmt.num(hist.low + (i + 1) * step)}: ${c}`);
  });
  s("text", { x: box.x1, y: 28, "text-anchor": "end", class: "label" }, svg, `mean ${fmt.num(hist.mean)}, std ${fmt.num(hist.std)}`);
}

function heatmap(container, matrix, classes, title) {
  const k = classes.length, cell = Math.max(Math.min(360 / k, 36), 4), left = k <= 20 ? 90 : 20;
  const size = left + k * cell + 10;
  const { svg } = frame(container, { width: size, height: k * cell + 40, title, left });
  const g = s("g", { class: "cell", transform: "translate(0 30)" }, svg);
  matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    if (k <= 20) s("text", { x: left - 4, y: i * cell + cell / 2 + 3, "text-anchor": "end", class: "label" }, g, classes[i]);
    row.forEach((count, j) => {
      const share = count / total;
      const rect = s("rect", { x: left + j * cell, y: i * cell, width: cell - 1, height: cell - 1,
        fill: `rgba(37, 99, 235, ${0.06 + 0.94 * share})`, "data-count": count }, g);
      s("title", {}, rect, `true ${classes[i]}, predicted ${classes[j]}: ${count} (${(share * 100).toFixed(1)}%)`);
      if (k <= 12 && count) s("text", { x: left + j * cell + cell / 2, y: i * cell + cell / 2 + 3, "text-anchor": "middle",
        fill: share > 0.5 ? "#fff" : "#1d2430" }, g, String(count));
    });
  });
}

function blockDiagram(container, stages, width = 980) {
  const perLine = Math.max(Math.floor((width - 150) / 160), 1);
  const rows = stages.map((stage) => Math.ceil(stage.units.length / perLine));
  const height = rows.reduce((a, r) => a + r * 46 + 12, 8);
  container.replaceChildren();
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "diagram" }, container);
  let top = 6;
  stages.forEach((stage, index) => {
    const rowHeight = rows[index] * 46 + 4;
    s("rect", { x: 2, y: top, width: width - 4, height: rowHeight, rx: 6, class: "stage" }, svg);
    s("text", { x: 10, y: top + 18 }, svg, stage.name.length > 22 ? stage.name.slice(0, 21) + "…" : stage.name);
    s("text", { x: 10, y: top + 33, class: "small" }, svg,
      `${stage.channels ?? "–"} ch${stage.size && stage.size.length ? " · " + stage.size.join("×") : ""}`);
    stage.units.forEach((unit, i) => {
      const ux = 150 + (i % perLine) * 160, uy = top + 4 + Math.floor(i / perLine) * 46;
      const box = s("rect", { x: ux, y: uy, width: 150, height: 38, rx: 4, class: "unit", "data-type": unit.type }, svg);
      s("title", {}, box, `${unit.names.join(", ")}\n${fmt.int(unit.params)} params, ${fmt.human(unit.macs)} MACs`);
      s("text", { x: ux + 6, y: uy + 15 }, svg, `${unit.type}${unit.count > 1 ? " ×" + unit.count : ""}`);
      s("text", { x: ux + 6, y: uy + 30, class: "small" }, svg,
        `${unit.channels ?? "–"} ch${unit.size && unit.size.length ? " · " + unit.size.join("×") : ""}`);
    });
    top += rowHeight + 8;
  });
}

// ------------------------------------------------------------------ architectures

const arch = { models: [], sort: ["year", 1], compare: new Set(), details: new Map(), current: null };

function archCharts() {
  const dataset = $("#arch-dataset").value;
  const rows = arch.models.filter((m) => m.dataset === dataset && m.reference_top1 !== null);
  const pick = (name) => showModel(name);
  scatterChart($("#arch-scatter-macs"), rows.map((m) => ({ x: m.macs, y: m.reference_top1, name: m.name, pareto: m.pareto_macs })),
    { title: `top-1 against MACs (${dataset})`, xlabel: "multiply-adds per image (log)", ylabel: "reference top-1 (%)",
      selected: [arch.current], onClick: pick });
  scatterChart($("#arch-scatter-params"), rows.map((m) => ({ x: m.params, y: m.reference_top1, name: m.name, pareto: m.pareto_params })),
    { title: `top-1 against parameters (${dataset})`, xlabel: "parameters (log)", ylabel: "reference top-1 (%)",
      selected: [arch.current], onClick: pick });
}

const ARCH_COLUMNS = [
  ["", null], ["name", (m) => m.name], ["family", (m) => m.family], ["year", (m) => m.year],
  ["depth", (m) => m.weight_layers], ["params", (m) => m.params], ["MACs", (m) => m.macs],
  ["input", (m) => m.input_size.join("x")], ["top-1", (m) => m.reference_top1], ["top-5", (m) => m.reference_top5],
  ["data set", (m) => m.dataset],
];

function archTable() {
  const [key, direction] = arch.sort;
  const column = ARCH_COLUMNS.find(([name]) => name === key);
  const rows = [...arch.models].sort((a, b) => {
    const va = column[1](a), vb = column[1](b);
    if (va === vb) return a.name < b.name ? -1 : 1;
    if (va === null) return 1;
    if (vb === null) return -1;
    return (va < vb ? -1 : 1) * direction;
  });
  const head = h("tr", {}, ...ARCH_COLUMNS.map(([name]) => h("th", {
    class: ["name", "family", "data set"].includes(name) ? "text" : null, text: name,
    onclick: () => { if (!name) return; arch.sort = [name, key === name ? -direction : 1]; archTable(); },
  })));
  const body = rows.map((m) => h("tr", { class: `clickable${m.name === arch.current ? " current" : ""}`, "data-model": m.name,
    onclick: (event) => { if (event.target.tagName !== "INPUT") showModel(m.name); } },
  h("td", {}, h("input", { type: "checkbox", checked: arch.compare.has(m.name), title: "compare",
    onchange: (event) => { event.target.checked ? arch.compare.add(m.name) : arch.compare.delete(m.name); compareModels(); } })),
  h("td", { class: "text", text: m.name }), h("td", { class: "text", text: m.family }), h("td", { text: m.year }),
  h("td", { text: m.weight_layers }), h("td", { text: fmt.int(m.params), "data-params": m.params }),
  h("td", { text: fmt.human(m.macs), "data-macs": m.macs }), h("td", { text: m.input_size.join("x") }),
  h("td", { text: fmt.pct(m.reference_top1) }), h("td", { text: fmt.pct(m.reference_top5) }),
  h("td", { class: "text", text: m.dataset })));
  $("#arch-table").replaceChildren(h("table", { id: "models-table" }, h("thead", {}, head), h("tbody", {}, ...body)));
}

async function modelDetail(name) {
  if (!arch.details.has(name)) {
    const [detail, summary] = await Promise.all([api(`/api/models/${encodeURIComponent(name)}`),
      api(`/api/models/${encodeURIComponent(name)}/summary`)]);
    arch.details.set(name, { detail, summary });
  }
  return arch.details.get(name);
}

const LAYER_METRICS = [["params", "parameters"], ["macs", "MACs"], ["activation_bytes", "activation memory (bytes)"],
  ["receptive_field", "receptive field (pixels)"]];

function drawLayerBars(summary) {
  const metric = $("#arch-metric").value;
  const rows = summary.layers.filter((r) => !r.inplace || r.params);
  const values = rows.map((r) => { const v = r[metric]; return Array.isArray(v) ? Math.max(...v) : v; });
  barChart($("#arch-layers"), values, { title: `${summary.model}: ${LAYER_METRICS.find(([k]) => k === metric)[1]} per layer`,
    ylabel: metric, labels: rows.map((r) => `${r.name} (${r.type})`) });
}

function showModel(name) {
  arch.current = name;
  update("architectures", () => modelDetail(name), ({ detail, summary }) => {
    const card = $("#arch-detail");
    card.hidden = false;
    const stat = (value, label) => h("div", {}, h("b", { text: value }), h("span", { text: label }));
    card.replaceChildren(
      h("h3", { text: `${detail.name}: ${detail.paper} (${detail.year})` }),
      h("div", { class: "stats", id: "arch-stats" },
        stat(fmt.int(summary.total_params), "parameters"), stat(fmt.human(summary.total_macs), "MACs per image"),
        stat(String(detail.weight_layers), "weight layers"), stat(detail.input_size.join("x"), "input"),
        stat(fmt.bytes(summary.activation_bytes), "activations (forward, batch 1)"),
        stat(detail.reference_top1 === null ? "–" : fmt.pct(detail.reference_top1) + "%", `top-1 on ${detail.dataset}`)),
      h("p", { class: "hint", text: detail.reference_source || "" }),
      h("div", { id: "arch-diagram", class: "diagram-wrap" }),
      h("div", { class: "controls" }, h("label", {}, "Per layer ",
        h("select", { id: "arch-metric", onchange: () => drawLayerBars(summary) },
          ...LAYER_METRICS.map(([k, label]) => h("option", { value: k, text: label }))))),
      h("div", { id: "arch-layers", class: "chart wide" }));
    blockDiagram($("#arch-diagram"), detail.diagram);
    drawLayerBars(summary);
    archTable();
    archCharts();
  }, "arch-detail");
}

function compareModels() {
  const names = [...arch.compare];
  const card = $("#arch-compare");
  if (names.length < 2) { card.hidden = true; card.replaceChildren(); return; }
  update("architectures", () => Promise.all(names.map(modelDetail)), (items) => {
    card.hidden = false;
    const rows = [["parameters", (d, sm) => fmt.int(sm.total_params)], ["MACs", (d, sm) => fmt.human(sm.total_macs)],
      ["weight layers", (d) => d.weight_layers], ["year", (d) => d.year], ["input", (d) => d.input_size.join("x")],
      ["activations", (d, sm) => fmt.bytes(sm.activation_bytes)], ["top-1", (d) => fmt.pct(d.reference_top1)],
      ["top-5", (d) => fmt.pct(d.reference_top5)], ["data set", (d) => d.dataset]];
    const table = h("table", { id: "compare-table" },
      h("thead", {}, h("tr", {}, h("th", { text: "" }), ...items.map(({ detail }) => h("th", { text: detail.name })))),
      h("tbody", {}, ...rows.map(([label, get]) => h("tr", {}, h("td", { text: label }),
        ...items.map(({ detail, summary }) => h("td", { text: String(get(detail, summary)) }))))));
    const grid = h("div", { class: "compare-grid" }, ...items.map(({ detail }) => {
      const holder = h("div", { class: "diagram-wrap" });
      blockDiagram(holder, detail.diagram, 480);
      return h("div", {}, h("h3", { text: detail.name }), holder);
    }));
    card.replaceChildren(h("h3", { text: `Comparing ${names.join(", ")}` }), table, grid);
  }, "arch-compare");
}

async function initArchitectures() {
  await update("architectures", () => api("/api/models"), (data) => {
    arch.models = data.models;
    const counts = {};
    for (const m of arch.models) if (m.reference_top1 !== null) counts[m.dataset] = (counts[m.dataset] || 0) + 1;
    const datasets = Object.keys(counts).sort((a, b) => counts[b] - counts[a]);
    fillSelect($("#arch-dataset"), datasets.map((d) => [d, `${d} (${counts[d]} models)`]));
    archTable();
    archCharts();
    const skipped = Object.entries(data.skipped || {});
    $("#arch-skipped").hidden = !skipped.length;
    $("#arch-skipped").textContent = skipped.length ? "left out, cannot be traced: " +
      skipped.map(([name, why]) => `${name} (${why})`).join("; ") : "";
  });
  $("#arch-dataset").addEventListener("change", archCharts);
  const first = arch.models.find((m) => m.pareto_macs) || arch.models[0];
  if (first) showModel(first.name);
}

// ------------------------------------------------------------------ augmentation

const aug = { options: null, imageSeed: 0, seed: randomSeed() };

function augSource() { return aug.options.sources.find((src) => src.name === $("#aug-source").value); }
function augEntry() { return augSource().controls.find((c) => c.name === $("#aug-name").value); }

function augControls() {
  const holder = $("#aug-params");
  holder.replaceChildren(...augEntry().params.map((param) => {
    if (param.kind === "choice") {
      const select = h("select", { "data-param": param.name, onchange: drawAugment },
        ...param.choices.map((c) => h("option", { value: c, text: c })));
      select.value = param.default;
      return h("label", {}, param.name + " ", select);
    }
    const input = h("input", { type: "range", min: param.min, max: param.max, step: param.step, value: param.default,
      "data-param": param.name });
    const label = h("label", {}, param.name + " ", input, h("output"));
    bindOutput(input);
    input.addEventListener("input", debounce(drawAugment));
    return label;
  }));
}

function augSpec() {
  const values = {};
  for (const control of $("#aug-params").querySelectorAll("[data-param]")) values[control.dataset.param] = control.value;
  return augEntry().spec.replace(/\{(\w+)\}/g, (_, key) => values[key]);
}

function drawAugment() {
  const spec = augSpec();
  update("augmentation", () => api("/api/augment", { source: $("#aug-source").value, spec, count: $("#aug-count").value,
    image_seed: aug.imageSeed, seed: aug.seed }), (data) => {
    $("#aug-spec").textContent = data.spec;
    $("#aug-seed").textContent = data.seed;
    $("#aug-changed").textContent = data.changed_pixels === null ? "the training view changes the size"
      : `${(data.changed_pixels * 100).toFixed(1)}% of pixel values changed`;
    const figure = (src, caption, cls, shape) => h("figure", { title: shape ? `${caption}, ${shape.slice(1).join("×")} pixels` : caption },
      h("img", { src, class: cls, alt: caption }), h("div", { text: caption }));
    $("#aug-grid").replaceChildren(...data.images.map((item) => h("div", { class: "aug-item", "data-index": item.index },
      figure(item.original, "original", "aug-original"),
      figure(item.train, "training draw", "aug-train", item.train_shape),
      figure(item.test, "test time", "aug-test", item.test_shape),
      h("div", { class: "caption", text: item.target ? `${item.label} → ${item.target}` : item.label }))));
  });
}

async function initAugmentation() {
  await update("augmentation", () => api("/api/augment/options"), (options) => {
    aug.options = options;
    fillSelect($("#aug-source"), options.sources.map((src) => [src.name, src.label]), options.default);
    fillSelect($("#aug-name"), augSource().controls.map((c) => [c.name, c.title]), "crop");
    augControls();
  });
  if (!aug.options) return;
  $("#aug-source").addEventListener("change", () => {
    const name = $("#aug-name").value;
    fillSelect($("#aug-name"), augSource().controls.map((c) => [c.name, c.title]), name);
    augControls();
    drawAugment();
  });
  $("#aug-name").addEventListener("change", () => { augControls(); drawAugment(); });
  bindOutput($("#aug-count"));
  $("#aug-count").addEventListener("input", debounce(drawAugment));
  $("#aug-draw").addEventListener("click", () => { aug.seed = randomSeed(); drawAugment(); });
  $("#aug-images").addEventListener("click", () => { aug.imageSeed = randomSeed(); drawAugment(); });
  drawAugment();
}

// ------------------------------------------------------------------ batch normalization

const bn = { network: null, layers: [], channels: 0 };

function drawBatchNorm() {
  const network = $("#bn-network").value;
  const synthetic = network === "synthetic";
  for (const node of document.querySelectorAll("#batchnorm .synthetic")) node.hidden = !synthetic;
  const learned = $("#bn-learned").checked;
  $("#bn-gamma").disabled = learned;
  $("#bn-beta").disabled = learned;
  const changed = network !== bn.network;
  const params = { network, layer: changed ? null : $("#bn-layer").value, batch_size: $("#bn-batch").value,
    gamma: learned ? null : $("#bn-gamma").value, beta: learned ? null : $("#bn-beta").value,
    channel: changed || $("#bn-channel").value === "all" ? null : $("#bn-channel").value,
    shift: synthetic ? $("#bn-shift").value : null, scale: synthetic ? $("#bn-scale").value : null };
  update("batchnorm", () => api("/api/batchnorm", params), (data) => {
    if (data.network !== bn.network || data.layers.join() !== bn.layers.join()) {
      fillSelect($("#bn-layer"), data.layers.map((l) => [l, l]), data.layer);
      bn.layers = data.layers;
    }
    $("#bn-layer").value = data.layer;
    if (data.shape[1] !== bn.channels || data.network !== bn.network) {
      fillSelect($("#bn-channel"), [["all", "all"], ...Array.from({ length: data.shape[1] }, (_, i) => [i, String(i)])], "all");
      bn.channels = data.shape[1];
    }
    bn.network = data.network;
    const where = data.channel === null ? "all channels" : `channel ${data.channel}`;
    $("#bn-source").textContent = `${data.source.images}; layer input ${data.shape.join("×")}` +
      (data.source.upstream ? `; the layers before it in ${data.source.upstream} mode` : "");
    histogramChart($("#bn-hist-raw"), data.raw, `input of ${data.layer} (${where})`);
    histogramChart($("#bn-hist-train"), data.train, "train mode: batch statistics");
    histogramChart($("#bn-hist-eval"), data.eval, "eval mode: running statistics");
    histogramChart($("#bn-hist-single"), data.batch_of_one.single, "train mode, image 1 alone");
    const row = (label, hist) => h("tr", {}, h("td", { class: "text", text: label }),
      h("td", { text: hist ? fmt.num(hist.mean, 4) : "–", "data-mean": hist ? hist.mean : "" }),
      h("td", { text: hist ? fmt.num(hist.std, 4) : "–", "data-std": hist ? hist.std : "" }));
    $("#bn-stats").replaceChildren(h("tr", {}, h("th", { class: "text", text: "" }), h("th", { text: "mean" }), h("th", { text: "std" })),
      row("input", data.raw), row("training mode", data.train), row("evaluation mode", data.eval),
      row("batch of 1", data.batch_of_one.single));
    $("#bn-stats").querySelectorAll("tr")[2].id = "bn-train-row";
    $("#bn-single-note").textContent = data.batch_of_one.note;
    const channels = data.channels;
    barChart($("#bn-channels"), channels.batch_mean, { title: "per channel: batch mean (blue) and running mean (orange)",
      ylabel: "mean", xlabel: "channel", alt: channels.running_mean, labels: channels.batch_mean.map((_, i) => `channel ${i}`) });
  });
}

async function initBatchNorm() {
  await update("batchnorm", () => api("/api/batchnorm/networks"), (data) => {
    fillSelect($("#bn-network"), data.networks.map((n) => [n.id, n.label]),
      (data.networks.find((n) => n.id === "resnet20") || data.networks[0]).id);
  });
  const redraw = debounce(drawBatchNorm);
  for (const id of ["#bn-batch", "#bn-gamma", "#bn-beta", "#bn-shift", "#bn-scale"]) {
    bindOutput($(id));
    $(id).addEventListener("input", redraw);
  }
  for (const id of ["#bn-network", "#bn-channel", "#bn-learned"]) $(id).addEventListener("change", drawBatchNorm);
  // Another layer may have fewer channels than the one chosen: start again from all of them.
  $("#bn-layer").addEventListener("change", () => { $("#bn-channel").value = "all"; drawBatchNorm(); });
  drawBatchNorm();
}

// ------------------------------------------------------------------ gradient flow

function drawGradientFlow() {
  const shortcut = $("#gf-shortcut").checked;
  const params = { depth: $("#gf-depth").value, batch_size: $("#gf-batch").value, image_size: $("#gf-size").value };
  update("gradient-flow", () => Promise.all([api("/api/gradient-flow", { ...params, shortcut }),
    api("/api/gradient-flow", { ...params, shortcut: !shortcut })]), ([current, other]) => {
    const residual = shortcut ? current : other, plain = shortcut ? other : current;
    $("#gf-source").textContent = `${current.images}; loss ${fmt.num(current.loss, 4)} (cross-entropy at initialisation)`;
    const layerSeries = (result, cls, faint) => ({ name: result.network, cls, faint,
      points: result.layers.map((l, i) => [i + 1, l.grad_norm]) });
    const blockSeries = (result, cls, faint) => ({ name: result.network, cls, faint,
      points: result.blocks.map((b, i) => [i + 1, b.in_norm]) });
    lineChart($("#gf-layers"), [layerSeries(residual, "series-0", !shortcut), layerSeries(plain, "series-1", shortcut)],
      { title: `weight gradients, depth ${current.depth}`, xlabel: "weight layer (input to output)",
        ylabel: "||dL/dW|| (log)", log: true, xfmt: (v) => v.toFixed(0) });
    lineChart($("#gf-block-chart"), [blockSeries(residual, "series-0", !shortcut), blockSeries(plain, "series-1", shortcut)],
      { title: "gradient arriving at each block's input", xlabel: "block (input to output)",
        ylabel: "||dL/dx|| (log)", log: true, xfmt: (v) => v.toFixed(0) });
    $("#gf-ratio").replaceChildren(
      h("span", { id: "gf-ratio-residual", "data-value": residual.first_over_last,
        text: `first conv / last conv gradient norm: ${residual.network} ${fmt.num(residual.first_over_last)}` }),
      h("span", { text: " · " }),
      h("span", { id: "gf-ratio-plain", "data-value": plain.first_over_last, text: `${plain.network} ${fmt.num(plain.first_over_last)}` }));
    $("#gf-network").textContent = current.network;
    const head = h("tr", {}, ...["block", "||dL/d out||", "||dL/ds||", "identity: dL/ds·1", "branch: dL/ds·dF/dx",
      "||dL/dx||", "gain ||dL/dx||/||dL/d out||"].map((t, i) => h("th", { class: i ? null : "text", text: t })));
    $("#gf-blocks").replaceChildren(head, ...current.blocks.map((b) => h("tr", { "data-block": b.name },
      h("td", { class: "text", text: b.name }), h("td", { text: fmt.num(b.out_norm) }), h("td", { text: fmt.num(b.sum_norm) }),
      h("td", { text: b.identity_norm === null ? "none (plain)" : fmt.num(b.identity_norm) }),
      h("td", { text: fmt.num(b.branch_norm) }), h("td", { text: fmt.num(b.in_norm), "data-value": b.in_norm }),
      h("td", { text: fmt.num(b.gain) }))));
  });
}

function initGradientFlow() {
  const redraw = debounce(drawGradientFlow);
  for (const id of ["#gf-depth", "#gf-batch", "#gf-size"]) {
    bindOutput($(id));
    $(id).addEventListener("input", redraw);
  }
  $("#gf-shortcut").addEventListener("change", drawGradientFlow);
  drawGradientFlow();
}

// ------------------------------------------------------------------ runs

const runsState = { list: [], chosen: [], details: new Map() };

function runsTable() {
  const columns = ["", "run", "model", "data set", "epochs", "test top-1", "best val top-1", "report", "checkpoints"];
  const head = h("tr", {}, ...columns.map((c, i) => h("th", { class: i > 0 && i < 4 ? "text" : null, text: c })));
  const rows = runsState.list.map((run) => h("tr", { class: `clickable${runsState.chosen[0] === run.name ? " current" : ""}`,
    "data-run": run.name, onclick: (event) => { if (event.target.tagName !== "INPUT") chooseRuns([run.name]); } },
  h("td", {}, h("input", { type: "checkbox", checked: runsState.chosen.includes(run.name), title: "compare",
    onchange: (event) => {
      const chosen = runsState.chosen.filter((n) => n !== run.name);
      chooseRuns(event.target.checked ? [...chosen, run.name].slice(-2) : chosen);
    } })),
  h("td", { class: "text", text: run.name }), h("td", { class: "text", text: run.model || "–" }),
  h("td", { class: "text", text: run.dataset || "–" }), h("td", { text: run.epochs ?? "–" }),
  h("td", { text: fmt.pct(run.test_top1) }), h("td", { text: fmt.pct(run.best_val_top1) }),
  h("td", { text: run.finished ? "yes" : "running or stopped" }), h("td", { text: run.checkpoints.join(", ") || "–" })));
  $("#runs-table").replaceChildren(h("table", { id: "runs-list" }, h("thead", {}, head), h("tbody", {}, ...rows)));
}

async function runDetail(name) {
  if (!runsState.details.has(name)) runsState.details.set(name, await api(`/api/runs/${name.split("/").map(encodeURIComponent).join("/")}`));
  return runsState.details.get(name);
}

function chooseRuns(names) {
  runsState.chosen = names;
  runsTable();
  if (!names.length) { $("#runs-detail").hidden = true; return; }
  update("runs", () => Promise.all(names.map(runDetail)), (runs) => {
    $("#runs-detail").hidden = false;
    const series = (key, label) => runs.flatMap((run, r) => ["train", "val"].map((split, j) => ({
      name: `${runs.length > 1 ? run.name + " " : ""}${split}`, cls: `series-${r * 2 + j}`,
      points: run.metrics.map((row) => [row.epoch, row[`${split}_${key}`]]).filter((p) => p[1] !== null),
    })).filter((ser) => ser.points.length));
    lineChart($("#runs-loss"), series("loss", "loss"), { title: "loss", xlabel: "epoch", ylabel: "cross-entropy" });
    lineChart($("#runs-top1"), series("top1", "top-1"), { title: "top-1 accuracy", xlabel: "epoch", ylabel: "%" });
    const rows = [["model", (r) => r.report?.model], ["data", (r) => r.report?.dataset], ["epochs", (r) => r.metrics.length],
      ["test top-1", (r) => fmt.pct(r.report?.test_top1 ?? null)], ["best val top-1", (r) => fmt.pct(r.report?.best_val_top1 ?? null)],
      ["wall time", (r) => (r.report?.wall_seconds ? (r.report.wall_seconds / 60).toFixed(1) + " min" : "–")],
      ["images/s", (r) => fmt.int(r.report?.images_per_second ?? null)],
      ["diagnose", (r) => (r.healthy === null ? "–" : r.healthy ? "healthy" : "problems found")]];
    $("#runs-summary").replaceChildren(h("table", { id: "runs-compare" },
      h("thead", {}, h("tr", {}, h("th", { text: "" }), ...runs.map((r) => h("th", { text: r.name })))),
      h("tbody", {}, ...rows.map(([label, get]) => h("tr", {}, h("td", { text: label }),
        ...runs.map((r) => h("td", { text: String(get(r) ?? "–") })))))));
    $("#runs-findings").replaceChildren(...runs.flatMap((run) => {
      const title = h("p", {}, h("b", { text: run.name }));
      if (run.findings === null) return [title, h("p", { class: "hint", text: run.notes.join("; ") || "no curves to read" })];
      if (!run.findings.length) return [title, h("div", { class: "finding healthy", text: "healthy: none of the lecture's warning signs" })];
      return [title, ...run.findings.map((f) => h("div", { class: `finding ${f.problem ? "problem" : "note"}` },
        h("b", { text: f.name + ": " }), f.evidence, h("div", { class: "advice", text: "→ " + f.advice })))];
    }));
    const confusion = $("#runs-confusion");
    confusion.replaceChildren();
    for (const run of runs) for (const ev of run.evaluations) {
      const holder = h("div", { class: "chart confusion", "data-run": run.name });
      confusion.append(holder);
      heatmap(holder, ev.confusion_matrix, ev.classes, `${run.name}: ${ev.split} split, top-1 ${fmt.pct(ev.top1)}%`);
    }
    if (!confusion.children.length) confusion.append(h("p", { class: "hint", text: "no evaluation yet: `cnnlab eval RUN` writes one" }));
  });
}

async function initRuns() {
  await update("runs", () => api("/api/runs"), (data) => {
    runsState.list = data.runs;
    runsTable();
    if (!data.runs.length) $("#runs-table").append(h("p", { class: "hint", text: `no run folders under ${data.root}/ yet: \`cnnlab train\` writes them` }));
  });
  if (runsState.list.length) chooseRuns([runsState.list[0].name]);
}

// ------------------------------------------------------------------ routing

const PANELS = { architectures: initArchitectures, augmentation: initAugmentation, batchnorm: initBatchNorm,
  "gradient-flow": initGradientFlow, runs: initRuns };
const started = new Set();

function route() {
  const name = PANELS[location.hash.slice(1)] ? location.hash.slice(1) : "architectures";
  for (const section of document.querySelectorAll(".panel")) section.classList.toggle("active", section.id === name);
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.panel === name);
  if (!started.has(name)) { started.add(name); PANELS[name](); }
}

window.addEventListener("hashchange", route);
route();
