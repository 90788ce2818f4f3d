// gradscope TensorBoard dashboard. TensorBoard loads this ES module in an iframe whose <base>
// is the plugin's route prefix, so './runs' and './data' reach the plugin's Python routes.
// No external libraries; every string from a run is set with textContent (never innerHTML).

const STYLE = `
  body { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
         margin: 12px 18px; }
  h1 { font-size: 18px; margin: 0 0 8px; }
  .gs-run { border: 1px solid #ddd; border-radius: 6px; padding: 10px 14px; margin: 12px 0; }
  .gs-run h2 { font-size: 16px; margin: 0 0 4px; }
  .gs-run h3 { font-size: 14px; margin: 12px 0 4px; }
  .gs-verdict { font-weight: 600; padding: 3px 8px; border-radius: 4px; display: inline-block; }
  .gs-error { background: #fdecea; color: #c0392b; }
  .gs-warning { background: #fef5e7; color: #b9770e; }
  .gs-info { background: #eaf2f8; color: #2e86c1; }
  .gs-ok { background: #e9f7ef; color: #1e8449; }
  .gs-muted { color: #777; font-size: 12px; }
  .gs-bars { display: grid; grid-template-columns: max-content 220px 48px 220px 48px;
             gap: 2px 8px; align-items: center; font-size: 12px; }
  .gs-bar { height: 10px; background: #eee; position: relative; }
  .gs-bar > div { height: 100%; }
  .gs-dead > div { background: #e15759; }
  .gs-sat > div { background: #f28e2b; }
  .gs-sat.gs-confidence > div { background: #bbb; }
  .gs-finding { border-left: 4px solid #ccc; padding: 2px 0 2px 10px; margin: 8px 0; }
  .gs-finding.gs-error { border-color: #c0392b; background: none; color: inherit; }
  .gs-finding.gs-warning { border-color: #d68910; background: none; color: inherit; }
  .gs-finding.gs-info { border-color: #2e86c1; background: none; color: inherit; }
  .gs-badge { font-size: 11px; font-weight: 700; text-transform: uppercase; margin-right: 6px; }
  canvas { display: block; max-width: 100%; }
`;

// Magma-like colour stops (0 = small gradient, 1 = large), interpolated linearly in RGB.
const STOPS = [
  [0.0, [0, 0, 4]],
  [0.25, [81, 18, 124]],
  [0.5, [183, 55, 121]],
  [0.75, [252, 137, 97]],
  [1.0, [252, 253, 191]],
];
const MISSING = [187, 187, 187];

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text != null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

export function colour(t) {
  const x = Math.min(1, Math.max(0, t));
  for (let i = 1; i < STOPS.length; i++) {
    const [t1, c1] = STOPS[i];
    const [t0, c0] = STOPS[i - 1];
    if (x <= t1) {
      const f = (x - t0) / (t1 - t0 || 1);
      return c0.map((v, k) => Math.round(v + f * (c1[k] - v)));
    }
  }
  return STOPS[STOPS.length - 1][1];
}

function logRange(matrix) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of matrix) {
    for (const v of row) {
      if (v != null && v > 0) {
        const l = Math.log10(v);
        if (l < lo) lo = l;
        if (l > hi) hi = l;
      }
    }
  }
  if (!Number.isFinite(lo)) return null;
  return hi > lo ? [lo, hi] : [lo - 0.5, lo + 0.5];
}

// Layers x steps heatmap of gradient norms, log colour scale, input layer on top.
export function drawHeatmap(data) {
  const layers = data.layers;
  const steps = data.steps;
  const matrix = data.grad_norm;
  const range = logRange(matrix);
  const labelWidth = 110;
  const legendWidth = 70;
  const cellH = Math.max(6, Math.min(16, Math.floor(360 / Math.max(1, layers.length))));
  const plotW = 640;
  const width = labelWidth + plotW + legendWidth;
  const height = cellH * layers.length + 28;
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  canvas.className = 'gs-heatmap';
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, width, height);
  ctx.font = '11px sans-serif';
  ctx.textBaseline = 'middle';
  const cellW = plotW / Math.max(1, steps.length);
  layers.forEach((name, i) => {
    ctx.fillStyle = '#222';
    ctx.textAlign = 'right';
    // Canvas text is drawn as pixels, never parsed as HTML.
    ctx.fillText(name.length > 16 ? name.slice(0, 15) + '…' : name, labelWidth - 6, i * cellH + cellH / 2);
    matrix[i].forEach((v, j) => {
      let rgb = MISSING;
      if (range && v != null && v > 0) {
        rgb = colour((Math.log10(v) - range[0]) / (range[1] - range[0]));
      }
      ctx.fillStyle = `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
      ctx.fillRect(labelWidth + j * cellW, i * cellH, Math.ceil(cellW), cellH);
    });
  });
  ctx.fillStyle = '#222';
  ctx.textAlign = 'center';
  const y = layers.length * cellH + 14;
  const ticks = Math.min(6, steps.length);
  for (let k = 0; k < ticks; k++) {
    const j = ticks > 1 ? Math.round((k * (steps.length - 1)) / (ticks - 1)) : 0;
    ctx.fillText(String(steps[j]), labelWidth + (j + 0.5) * cellW, y);
  }
  if (range) {
    const top = 0;
    const h = Math.max(40, layers.length * cellH);
    for (let p = 0; p < h; p++) {
      const rgb = colour(1 - p / h);
      ctx.fillStyle = `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
      ctx.fillRect(labelWidth + plotW + 10, top + p, 12, 1);
    }
    ctx.fillStyle = '#222';
    ctx.textAlign = 'left';
    ctx.fillText(Math.pow(10, range[1]).toExponential(1), labelWidth + plotW + 26, top + 6);
    ctx.fillText(Math.pow(10, range[0]).toExponential(1), labelWidth + plotW + 26, top + h - 6);
  }
  return canvas;
}

function percent(v) {
  return v == null ? '–' : `${Math.round(100 * v)} %`;
}

function bar(value, className) {
  const outer = el('div', null, `gs-bar ${className}`);
  const inner = document.createElement('div');
  inner.style.width = `${value == null ? 0 : Math.round(100 * Math.min(1, Math.max(0, value)))}%`;
  outer.appendChild(inner);
  return outer;
}

export function drawFractions(data) {
  const grid = el('div', null, 'gs-bars');
  for (const head of ['layer', 'dead', '', 'saturated', '']) grid.appendChild(el('strong', head));
  const output = data.layers[data.layers.length - 1];
  data.act_layers.forEach((name, i) => {
    grid.appendChild(el('span', name));
    grid.appendChild(bar(data.dead_frac[i], 'gs-dead'));
    grid.appendChild(el('span', percent(data.dead_frac[i])));
    // The output layer's saturation is the model's confidence, never judged: shown in grey.
    const confidence = name === output;
    const sat = bar(data.sat_frac[i], confidence ? 'gs-sat gs-confidence' : 'gs-sat');
    if (confidence) sat.title = 'output layer: saturation is confidence, never judged';
    grid.appendChild(sat);
    grid.appendChild(el('span', percent(data.sat_frac[i])));
  });
  return grid;
}

export function drawFindings(data) {
  const box = document.createElement('div');
  if (!data.findings.length) {
    box.appendChild(el('p', 'No findings.', 'gs-muted'));
    return box;
  }
  for (const f of data.findings) {
    const item = el('div', null, `gs-finding gs-${f.severity}`);
    const head = document.createElement('div');
    head.appendChild(el('span', f.severity, 'gs-badge'));
    head.appendChild(el('strong', `${f.code} · ${f.title}`));
    item.appendChild(head);
    item.appendChild(el('div', f.message));
    if (f.layers.length) item.appendChild(el('div', `Layers: ${f.layers.join(', ')}`, 'gs-muted'));
    if (f.fixes.length) {
      item.appendChild(el('div', `Fixes: ${f.fixes.map((x) => `${x.title} (${x.id})`).join('; ')}`, 'gs-muted'));
    }
    box.appendChild(item);
  }
  return box;
}

export function drawRun(data) {
  const section = el('section', null, 'gs-run');
  section.dataset.run = data.run;
  section.appendChild(el('h2', data.run));
  section.appendChild(el('span', data.verdict, `gs-verdict gs-${data.verdict_level}`));
  section.appendChild(
    el('div', `model ${data.model} · ${data.status} · ${data.n_records} recorded steps`, 'gs-muted'),
  );
  section.appendChild(el('h3', 'Gradient norm per layer over steps (log colour scale)'));
  if (data.layers.length && data.steps.length) {
    section.appendChild(drawHeatmap(data));
  } else {
    section.appendChild(el('p', 'No gradients recorded yet.', 'gs-muted'));
  }
  section.appendChild(el('h3', 'Dead and saturated units (median over the last recorded steps)'));
  if (data.act_layers.length) {
    section.appendChild(drawFractions(data));
  } else {
    section.appendChild(el('p', 'No activation statistics recorded.', 'gs-muted'));
  }
  section.appendChild(el('h3', 'Findings'));
  section.appendChild(drawFindings(data));
  return section;
}

async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

export async function render() {
  const style = document.createElement('style');
  style.textContent = STYLE;
  document.head.appendChild(style);
  document.body.appendChild(el('h1', 'gradscope'));
  const status = el('p', 'Loading runs…', 'gs-muted');
  document.body.appendChild(status);
  try {
    const runs = await getJson('./runs');
    if (!runs.length) {
      status.textContent = 'No gradscope runs under the log directory.';
    }
    const payloads = await Promise.all(
      runs.map((run) => getJson('./data?' + new URLSearchParams({run}))),
    );
    for (const data of payloads) document.body.appendChild(drawRun(data));
    if (runs.length) status.textContent = `${runs.length} run(s).`;
    document.body.dataset.gradscope = 'rendered';
  } catch (err) {
    status.textContent = `Could not load gradscope data: ${err.message}`;
    document.body.dataset.gradscope = 'error';
    console.error(err);
  }
}
