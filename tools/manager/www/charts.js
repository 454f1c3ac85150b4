// charts.js - small inline-SVG charts for the dashboard, built with
// createElementNS (no library, no canvas): a bar chart over time, a
// stacked bar for the verdict mix, and horizontal bars for rankings.
// Colours come from classes in app.css (the CSP forbids inline style).
import { h, s, fmtNum, fmtTime } from './dom.js';

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// bars over time. points: [{t, ...}], series: [{key, label, cls}] drawn
// on top of each other (the first is the total, later ones subsets).
export function timeBars({ points, series, label, tick }) {
  const W = 720, H = 200, L = 44, R = 8, T = 10, B = 26;
  const n = Math.max(points.length, 1);
  const max = niceMax(Math.max(0, ...points.map((p) => Number(p[series[0].key]) || 0)));
  const bw = (W - L - R) / n;
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': label });
  for (const f of [0, 0.5, 1]) {
    const yy = y(max * f);
    svg.appendChild(s('line', { x1: L, x2: W - R, y1: yy, y2: yy, class: 'grid' }));
    svg.appendChild(s('text', { x: L - 6, y: yy + 4, class: 'axis', 'text-anchor': 'end' }, fmtNum(max * f)));
  }
  points.forEach((p, i) => {
    const g = s('g', { class: 'bar' });
    const tip = [fmtTime(p.t)].concat(series.map((se) => `${se.label}: ${fmtNum(p[se.key] || 0)}`)).join('\n');
    g.appendChild(s('title', null, tip));
    // an invisible full-height rect makes the tooltip easy to reach
    g.appendChild(s('rect', { x: L + i * bw, y: T, width: bw, height: H - T - B, class: 'hit' }));
    for (const se of series) {
      const v = Number(p[se.key]) || 0;
      if (v <= 0) continue;
      g.appendChild(s('rect', { x: L + i * bw + bw * 0.12, width: Math.max(bw * 0.76, 1), y: y(v), height: y(0) - y(v), class: se.cls }));
    }
    if (tick && i % tick.every === 0) {
      svg.appendChild(s('text', { x: L + i * bw + bw / 2, y: H - 8, class: 'axis', 'text-anchor': 'middle' }, tick.fmt(p.t)));
    }
    svg.appendChild(g);
  });
  svg.appendChild(s('line', { x1: L, x2: W - R, y1: y(0), y2: y(0), class: 'baseline' }));
  const legend = h('ul', { class: 'legend' },
    series.map((se) => h('li', null, h('span', { class: ['swatch', se.cls] }), se.label)));
  return h('figure', { class: 'chart-fig' }, svg, legend);
}

// one stacked bar of parts [{key, label, value, cls}] plus a legend with
// counts and shares.
export function stackBar(parts, label) {
  const total = parts.reduce((a, p) => a + (Number(p.value) || 0), 0);
  const W = 600, H = 28;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart stack', role: 'img', 'aria-label': label, preserveAspectRatio: 'none' });
  let x = 0;
  if (total === 0) svg.appendChild(s('rect', { x: 0, y: 0, width: W, height: H, class: 'empty' }));
  for (const p of parts) {
    const v = Number(p.value) || 0;
    if (!v || !total) continue;
    const w = (W * v) / total;
    svg.appendChild(s('rect', { x, y: 0, width: w, height: H, class: p.cls }, s('title', null, `${p.label}: ${fmtNum(v)}`)));
    x += w;
  }
  const legend = h('ul', { class: 'legend legend-cols' }, parts.map((p) => {
    const v = Number(p.value) || 0;
    const pct = total ? ((100 * v) / total).toFixed(1) + ' %' : '–';
    return h('li', { class: 'verdict-' + p.key }, h('span', { class: ['swatch', p.cls] }), p.label, ' ',
      h('strong', null, fmtNum(v)), h('span', { class: 'muted' }, ' (' + pct + ')'));
  }));
  return h('figure', { class: 'chart-fig' }, svg, legend);
}

// a ranking as a table whose last column is a bar: rows [{name, value, extra}]
export function rankTable(rows, { nameLabel, valueLabel, extraLabel, fmt, caption }) {
  const max = Math.max(0, ...rows.map((r) => Number(r.value) || 0)) || 1;
  const tbody = h('tbody');
  for (const r of rows) {
    const w = Math.max(0, Math.min(100, (100 * (Number(r.value) || 0)) / max));
    const bar = s('svg', { viewBox: '0 0 100 10', class: 'rank-bar', preserveAspectRatio: 'none', 'aria-hidden': 'true' },
      s('rect', { x: 0, y: 0, width: 100, height: 10, class: 'track' }),
      s('rect', { x: 0, y: 0, width: w, height: 10, class: 'fill' }));
    tbody.appendChild(h('tr', null,
      h('td', { class: 'mono' }, r.name),
      h('td', { class: 'num' }, fmt ? fmt(r.value) : fmtNum(r.value)),
      extraLabel ? h('td', { class: 'num' }, fmtNum(r.extra)) : null,
      h('td', { class: 'barcell' }, bar)));
  }
  if (!rows.length) {
    tbody.appendChild(h('tr', null, h('td', { colspan: extraLabel ? 4 : 3, class: 'muted' }, 'Nothing yet.')));
  }
  return h('table', { class: 'table compact rank' },
    caption ? h('caption', { class: 'sr-only' }, caption) : null,
    h('thead', null, h('tr', null, h('th', null, nameLabel), h('th', { class: 'num' }, valueLabel),
      extraLabel ? h('th', { class: 'num' }, extraLabel) : null, h('th', null, h('span', { class: 'sr-only' }, 'Bar')))),
    tbody);
}
