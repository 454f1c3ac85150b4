// page_dashboard.js - the Dashboard: messages per minute (last hour) and
// per hour (last day) as SVG bar charts, the verdict mix, the spam rate,
// the top symbols and the per-stage latency, from GET /api/dashboard.
// Refreshes itself every 10 s (no page reload) until the page is left.
import { h, replace, notice, fmtNum, fmtTime } from './dom.js';
import { api, errText } from './api.js';
import { timeBars, stackBar, rankTable } from './charts.js';

const REFRESH_MS = 10000;

const VERDICTS = [
  { key: 'accept', label: 'Delivered', cls: 'c-accept' },
  { key: 'quarantine', label: 'Quarantined', cls: 'c-quarantine' },
  { key: 'reject', label: 'Rejected', cls: 'c-reject' },
  { key: 'tempfail', label: 'Temp-failed', cls: 'c-tempfail' },
  { key: 'discard', label: 'Discarded', cls: 'c-discard' },
];

function sum(points, key) {
  return (points || []).reduce((a, p) => a + (Number(p[key]) || 0), 0);
}

function card(title, ...body) {
  return h('section', { class: 'card' }, h('h2', null, title), ...body);
}

function stat(label, value, cls, id) {
  return h('div', { class: ['stat', cls] , id },
    h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-label' }, label));
}

function view(d) {
  const pm = Array.isArray(d.per_minute) ? d.per_minute : [];
  const ph = Array.isArray(d.per_hour) ? d.per_hour : [];
  const series = [
    { key: 'messages', label: 'Messages', cls: 'c-messages' },
    { key: 'spam', label: 'Spam', cls: 'c-spam' },
    { key: 'quarantined', label: 'Quarantined', cls: 'c-quarantine' },
  ];
  const rate = Number(d.spam_rate);
  const verdicts = d.verdicts || {};
  const top = (Array.isArray(d.top_symbols) ? d.top_symbols : []).map((x) => ({ name: x.name, value: x.count }));
  const lat = (Array.isArray(d.stage_latency) ? d.stage_latency : [])
    .map((x) => ({ name: x.name, value: x.avg_ms, extra: x.calls }));
  return [
    h('div', { class: 'stats' },
      stat('Messages, last hour', fmtNum(sum(pm, 'messages')), null, 'stat-messages'),
      stat('Spam rate', Number.isFinite(rate) ? (rate * 100).toFixed(1) + ' %' : '–', 'stat-spam', 'stat-spam-rate'),
      stat('Quarantined, last hour', fmtNum(sum(pm, 'quarantined')), null, 'stat-quarantined'),
      stat('Rejected, last hour', fmtNum(sum(pm, 'rejected')), null, 'stat-rejected'),
      stat('Messages, last 24 h', fmtNum(sum(ph, 'messages')), null, 'stat-day')),
    h('div', { class: 'grid2' },
      card('Messages per minute (last hour)',
        timeBars({ points: pm, series, label: 'Messages per minute over the last hour', tick: { every: 10, fmt: (t) => fmtTime(t, 'hm') } })),
      card('Messages per hour (last 24 hours)',
        timeBars({ points: ph, series, label: 'Messages per hour over the last day', tick: { every: 4, fmt: (t) => fmtTime(t, 'hm') } }))),
    h('div', { class: 'grid3' },
      card('Verdict mix', stackBar(VERDICTS.map((v) => ({ ...v, value: verdicts[v.key] || 0 })), 'Verdicts since start')),
      card('Top symbols', rankTable(top, { nameLabel: 'Symbol', valueLabel: 'Hits', caption: 'Top symbols' })),
      card('Stage latency', rankTable(lat, {
        nameLabel: 'Stage', valueLabel: 'Avg ms', extraLabel: 'Calls', caption: 'Average time per stage',
        fmt: (v) => fmtNum(v, 2),
      }))),
  ];
}

export function render(ctx, main) {
  const body = h('div', { class: 'dash-body' }, h('p', { class: 'muted' }, 'Loading…'));
  const updated = h('span', { id: 'dash-updated', class: 'muted' });
  const err = h('div');
  main.append(
    h('div', { class: 'toolbar' }, h('p', { class: 'muted' }, 'Live: refreshes every 10 seconds. '), updated),
    err, body);
  let alive = true;
  let count = 0;
  async function load() {
    const r = await api('GET', '/api/dashboard');
    if (!alive) return;
    if (!r.ok) {
      replace(err, notice('error', 'Cannot load the dashboard: ' + errText(r)));
      return;
    }
    replace(err);
    count++;
    replace(body, ...view(r.data));
    updated.textContent = 'Updated ' + fmtTime(r.data.generated || Date.now() / 1000) + ' (refresh ' + count + ')';
    updated.setAttribute('data-generated', String(r.data.generated ?? ''));
    updated.setAttribute('data-refreshes', String(count));
  }
  load();
  const timer = setInterval(load, REFRESH_MS);
  return () => { alive = false; clearInterval(timer); };
}
