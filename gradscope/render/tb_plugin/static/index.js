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
  .gs-label { font-weight: 700; }
  .gs-name { color: #555; font-weight: 400; font-size: 13px; }
  .gs-notes { margin: 6px 0; padding-left: 20px; color: #444; font-size: 12px; }
  .gs-ratio { margin: 4px 0; font-size: 12px; color: #333; }
  .gs-not-recorded { margin: 6px 0; font-size: 12px; color: #444; }
  .gs-not-recorded ul { margin: 2px 0; padding-left: 20px; }
  .gs-trials { margin: 16px 0; }
  .gs-trials > summary { cursor: pointer; font-weight: 600; color: #555; }
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

// Smallest and largest log10 of the positive values over every run's matrix: compared runs share
// one colour scale, or a healthy run's smallest gradients would look as dark as vanished ones.
export function sharedLogRange(matrices) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const matrix of matrices) {
    for (const row of matrix) {
      for (const v of row) {
        if (v != null && v > 0) {
          const l = Math.log10(v);
          if (l < lo) lo = l;
          if (l > hi) hi = l;
        }
      }
    }
  }
  if (!Number.isFinite(lo)) return null;
  return hi > lo ? [lo, hi] : [lo - 0.5, lo + 0.5];
}

// Round, evenly spaced step numbers (0, 50, 100, ...) between first and last.
export function niceTicks(first, last, maxTicks) {
  if (!(last > first)) return [first];
  const raw = (last - first) / Math.max(1, maxTicks);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw));
  const ticks = [];
  for (let v = Math.ceil(first / step) * step; v <= last; v += step) ticks.push(v);
  return ticks;
}

// Column position of a step, interpolated between the recorded steps (records may be thinned).
function columnOf(steps, value) {
  for (let j = 0; j + 1 < steps.length; j++) {
    if (value <= steps[j + 1]) return j + (value - steps[j]) / (steps[j + 1] - steps[j] || 1);
  }
  return steps.length - 1;
}

// Layers x steps heatmap of gradient norms, log colour scale shared by the runs, input on top.
export function drawHeatmap(data, range, palette) {
  const layers = data.layers;
  const steps = data.steps;
  const matrix = data.grad_norm;
  const labelWidth = 110;
  const legendWidth = 80;
  const cellH = Math.max(6, Math.min(16, Math.floor(360 / Math.max(1, layers.length))));
  // As wide as the page allows (the report's figures fill the page width too).
  const page = document.body.clientWidth || 1000;
  const plotW = Math.max(400, page - labelWidth - legendWidth - 60);
  const width = labelWidth + plotW + legendWidth;
  const height = cellH * layers.length + 44;
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
      let fill = palette.missing;
      if (range && v != null && v > 0) {
        const rgb = colour((Math.log10(v) - range[0]) / (range[1] - range[0]));
        fill = `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
      }
      ctx.fillStyle = fill;
      ctx.fillRect(labelWidth + j * cellW, i * cellH, Math.ceil(cellW), cellH);
    });
  });
  ctx.fillStyle = '#222';
  ctx.textAlign = 'center';
  const y = layers.length * cellH + 12;
  const ticks = steps.length ? niceTicks(steps[0], steps[steps.length - 1], 8) : [];
  for (const t of ticks) {
    ctx.fillText(String(t), labelWidth + (columnOf(steps, t) + 0.5) * cellW, y);
  }
  ctx.fillText('step', labelWidth + plotW / 2, y + 16);
  canvas.dataset.xlabel = 'step';
  canvas.dataset.xticks = ticks.join(',');
  if (range) {
    canvas.dataset.vmin = Math.pow(10, range[0]).toPrecision(6);
    canvas.dataset.vmax = Math.pow(10, range[1]).toPrecision(6);
    const h = Math.max(40, layers.length * cellH);
    for (let p = 0; p < h; p++) {
      const rgb = colour(1 - p / h);
      ctx.fillStyle = `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
      ctx.fillRect(labelWidth + plotW + 10, p, 12, 1);
    }
    ctx.fillStyle = '#222';
    ctx.textAlign = 'left';
    ctx.fillText(Math.pow(10, range[1]).toExponential(1), labelWidth + plotW + 26, 6);
    ctx.fillText(Math.pow(10, range[0]).toExponential(1), labelWidth + plotW + 26, h - 6);
  }
  return canvas;
}

function percent(v) {
  return v == null ? '–' : `${Math.round(100 * v)} %`;
}

function bar(value, colour, className) {
  const outer = el('div', null, `gs-bar ${className}`);
  const inner = document.createElement('div');
  inner.style.width = `${value == null ? 0 : Math.round(100 * Math.min(1, Math.max(0, value)))}%`;
  inner.style.background = colour;
  outer.appendChild(inner);
  return outer;
}

export function drawFractions(data, palette) {
  const box = document.createElement('div');
  const grid = el('div', null, 'gs-bars');
  for (const head of ['layer', 'dead', '', 'saturated', '']) grid.appendChild(el('strong', head));
  const output = data.layers[data.layers.length - 1];
  data.act_layers.forEach((name, i) => {
    grid.appendChild(el('span', name));
    grid.appendChild(bar(data.dead_frac[i], palette.dead, 'gs-dead'));
    grid.appendChild(el('span', percent(data.dead_frac[i])));
    // The output layer's saturation is the model's confidence, never judged: shown in grey.
    const confidence = name === output;
    const sat = confidence
      ? bar(data.sat_frac[i], palette.confidence, 'gs-sat gs-confidence')
      : bar(data.sat_frac[i], palette.saturated, 'gs-sat');
    if (confidence) sat.title = 'output layer: saturation is confidence, never judged';
    grid.appendChild(sat);
    grid.appendChild(el('span', percent(data.sat_frac[i])));
  });
  // As in the HTML report: no chart when no judged bar would show (all 0 % or not applicable);
  // the notes below say why.
  const judged = data.act_layers.some(
    (name, i) => data.dead_frac[i] > 0 || (name !== output && data.sat_frac[i] > 0),
  );
  if (judged) box.appendChild(grid);
  // The same sentences as the HTML report: what does not apply, what is 0 % everywhere.
  const notes = el('ul', null, 'gs-notes');
  for (const note of data.fraction_notes || []) notes.appendChild(el('li', note));
  box.appendChild(notes);
  return box;
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

// What GradScope could not record in the run (a custom train_step), one note a line, as the
// HTML report lists them; nothing when there is none.
export function drawNotRecorded(data) {
  const notes = data.not_recorded || [];
  if (!notes.length) return null;
  const box = el('div', null, 'gs-not-recorded');
  box.appendChild(el('strong', 'Not recorded'));
  const list = el('ul', null);
  for (const note of notes) list.appendChild(el('li', note));
  box.appendChild(list);
  return box;
}

// One run: which run it is (label in its palette colour, name, creation time), its verdict,
// first/last gradient ratio, what was not recorded, heatmap, dead/saturated units and findings.
export function drawRun(data, entry, range, palette) {
  const section = el('section', null, entry.trial ? 'gs-run gs-trial' : 'gs-run');
  section.dataset.run = entry.run;
  section.dataset.label = entry.label;
  if (entry.colour) section.style.borderLeft = `6px solid ${entry.colour}`;
  const head = el('h2', null);
  const label = el('span', entry.label, 'gs-label');
  if (entry.colour) label.style.color = entry.colour;
  head.appendChild(label);
  if (entry.label !== entry.run) head.appendChild(el('span', ` ${entry.run}`, 'gs-name'));
  section.appendChild(head);
  section.appendChild(el('span', data.verdict, `gs-verdict gs-${data.verdict_level}`));
  const created = entry.created ? `created ${entry.created.replace('T', ' ')} · ` : '';
  section.appendChild(
    el('div', `${created}model ${data.model} · ${data.status} · ${data.n_records} recorded steps`, 'gs-muted'),
  );
  // The terminal's line, formatted by the plugin from the run's summary: shown, not computed.
  if (data.grad_ratio_line) section.appendChild(el('div', data.grad_ratio_line, 'gs-ratio'));
  const notRecorded = drawNotRecorded(data);
  if (notRecorded) section.appendChild(notRecorded);
  section.appendChild(el('h3', 'Gradient norm per layer over steps (log colour scale shared by the runs)'));
  if (data.layers.length && data.steps.length) {
    section.appendChild(drawHeatmap(data, range, palette));
  } else {
    section.appendChild(el('p', 'No gradients recorded yet.', 'gs-muted'));
  }
  section.appendChild(el('h3', 'Dead and saturated units (median over the last recorded steps)'));
  if (data.act_layers.length) {
    section.appendChild(drawFractions(data, palette));
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
    // Oldest first (before, then after), the fix's trial runs last; the palette is the report's.
    const listing = await getJson('./runs');
    const entries = listing.runs;
    const palette = listing.palette;
    if (!entries.length) {
      status.textContent = 'No gradscope runs under the log directory.';
    }
    const payloads = await Promise.all(
      entries.map((e) => getJson('./data?' + new URLSearchParams({run: e.run}))),
    );
    const range = sharedLogRange(payloads.map((p) => p.grad_norm));
    const trials = el('details', null, 'gs-trials');
    let nTrials = 0;
    entries.forEach((entry, i) => {
      const section = drawRun(payloads[i], entry, range, palette);
      if (entry.trial) {
        trials.appendChild(section);
        nTrials += 1;
      } else {
        document.body.appendChild(section);
      }
    });
    if (nTrials) {
      // Collapsed: the short verification runs of `gradscope fix`, shown on request.
      trials.prepend(el('summary', `Fix trials (${nTrials}): the short verification runs of gradscope fix`));
      document.body.appendChild(trials);
    }
    if (entries.length) {
      const n = entries.length - nTrials;
      status.textContent = `${n} run(s), oldest first` + (nTrials ? `; ${nTrials} fix trial(s) below.` : '.');
    }
    document.body.dataset.gradscope = 'rendered';
  } catch (err) {
    status.textContent = `Could not load gradscope data: ${err.message}`;
    document.body.dataset.gradscope = 'error';
    console.error(err);
  }
}
