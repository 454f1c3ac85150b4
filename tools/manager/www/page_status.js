// page_status.js - the Status: the engine (version, uptime, generation,
// workers), the database, the blocklist daemon and the manager itself,
// from GET /api/status.
import { h, replace, notice, badge, fmtNum, fmtDuration } from './dom.js';
import { api, errText } from './api.js';

function health(x) {
  if (!x || typeof x !== 'object') return badge('unknown', 'neutral');
  if (x.configured === false && x.ok === false) return badge('not in the chain', 'neutral');
  return x.ok === false ? badge('down', 'err') : badge('ok', 'ok');
}

function dl(pairs) {
  const el = h('dl', { class: 'meta' });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === '') continue;
    el.append(h('dt', null, k), h('dd', null, v instanceof Node ? v : String(v)));
  }
  return el;
}

function card(title, x, body, id) {
  return h('section', { class: 'card', id, 'aria-label': title },
    h('h2', null, title, ' ', health(x)), body,
    x && x.ok === false && x.error ? notice(x.configured === false ? 'info' : 'error', String(x.error)) : null);
}

export function render(ctx, main) {
  const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const refresh = h('button', { type: 'button', class: 'ghost' }, 'Refresh');
  main.append(h('div', { class: 'toolbar' }, h('p', { class: 'muted' }, 'Health of the gateway and its helpers.'), refresh), body);
  let alive = true;
  async function load() {
    const r = await api('GET', '/api/status');
    if (!alive) return;
    if (!r.ok) {
      replace(body, notice('error', 'Cannot load the status: ' + errText(r)));
      return;
    }
    const d = r.data;
    const e = d.engine || {};
    const db = d.database || {};
    const bl = d.blocklistd || {};
    const mg = d.manager || {};
    const workers = Array.isArray(e.workers) ? e.workers : [];
    const wt = h('table', { class: 'table compact', id: 'status-workers' },
      h('caption', { class: 'table-caption' }, `Workers: ${workers.length} running, ${e.workers_configured ?? '?'} configured`),
      h('thead', null, h('tr', null, ['#', 'PID', 'State', 'Generation', 'Uptime', 'Messages', 'In flight']
        .map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, workers.map((w) => h('tr', null,
        h('td', null, String(w.number)), h('td', { class: 'mono' }, String(w.pid)),
        h('td', null, badge(String(w.state), w.state === 'running' ? 'ok' : 'warn')),
        h('td', { class: 'num' }, String(w.generation)), h('td', null, fmtDuration(w.uptime)),
        h('td', { class: 'num' }, fmtNum(w.messages)), h('td', { class: 'num' }, fmtNum(w.in_flight))))));
    replace(body, h('div', { class: 'grid2' },
      card('Engine (sluiced)', e, e.ok === false ? null : [dl([
        ['Version', e.version], ['Uptime', fmtDuration(e.uptime)], ['PID', e.pid], ['Configuration generation', e.generation],
        ['Host name', e.hostname], ['Configuration', e.config_dir], ['Messages in flight', e.in_flight],
        ['Messages (live workers)', e.messages_live_workers]]), h('div', { class: 'table-wrap' }, wt)], 'status-engine'),
      h('div', null,
        card('Database (PostgreSQL)', db, dl([['Schema version', db.schema_version]]), 'status-database'),
        card('Blocklist daemon', bl, dl([['Address', bl.address],
          ['Answer time', bl.latency_ms === undefined ? null : fmtNum(bl.latency_ms, 1) + ' ms']]), 'status-blocklistd'),
        card('Manager', { ok: true }, dl([['Version', mg.version], ['Uptime', fmtDuration(mg.uptime)], ['PID', mg.pid],
          ['Logged in as', `${ctx.user} (${ctx.role})`]]), 'status-manager'))));
  }
  refresh.addEventListener('click', load);
  load();
  return () => { alive = false; };
}
