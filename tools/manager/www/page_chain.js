// page_chain.js - the Chain: the stages in order with their state and
// counters (GET /api/stages); administrators enable/disable a stage and
// move it up/down (POST /api/stages/NAME/enable|disable|move). The engine
// writes conf.d and reloads gracefully; the result of that reload (the
// new generation, or the reason it was refused) is shown.
import { h, replace, notice, badge, fmtNum } from './dom.js';
import { api, errText, enc } from './api.js';

function counters(st) {
  const out = [];
  const v = st.verdicts || {};
  for (const [k, n] of Object.entries(v)) if (n) out.push(`${k} ${fmtNum(n)}`);
  const c = st.counters || {};
  for (const [k, n] of Object.entries(c)) out.push(`${k} ${fmtNum(n)}`);
  return out.length ? out.join(' · ') : '–';
}

export function render(ctx, main) {
  const result = h('div', { id: 'chain-result', 'aria-live': 'polite' });
  const tableBox = h('div', { class: 'table-wrap' }, h('p', { class: 'muted' }, 'Loading…'));
  const refresh = h('button', { type: 'button', class: 'ghost' }, 'Refresh');
  refresh.addEventListener('click', () => load());
  main.append(
    h('div', { class: 'toolbar' },
      h('p', { class: 'muted' }, ctx.isAdmin
        ? 'Stages run top to bottom. Changes are written to conf.d and applied by a graceful reload.'
        : 'Stages run top to bottom. Read-only: your role cannot change the chain.'),
      refresh),
    result, tableBox);
  let busy = false;
  let alive = true;

  async function act(label, method, path, body, describe) {
    if (busy) return;
    busy = true;
    for (const b of tableBox.querySelectorAll('button')) b.disabled = true;
    replace(result, notice('info', label + ': writing conf.d and reloading…'));
    const r = await api(method, path, body);
    busy = false;
    if (!alive) return;
    if (r.ok && r.data.ok !== false) replace(result, notice('ok', describe(r.data)));
    else replace(result, notice('error', label + ' refused: ' + errText(r) + ' (the running configuration is unchanged)'));
    await load();
  }

  function row(st, i, n) {
    const name = String(st.name);
    const enabled = !!st.enabled;
    const actions = h('td', { class: 'actions' });
    if (ctx.isAdmin) {
      const toggle = h('button', {
        type: 'button', class: enabled ? 'warn' : 'primary',
        'aria-label': (enabled ? 'Disable' : 'Enable') + ' stage ' + name,
      }, enabled ? 'Disable' : 'Enable');
      toggle.addEventListener('click', () => act((enabled ? 'Disable ' : 'Enable ') + name, 'POST',
        `/api/stages/${enc(name)}/${enabled ? 'disable' : 'enable'}`, {},
        (d) => d.changed === false
          ? `Stage ${name} was already ${enabled ? 'disabled' : 'enabled'}: nothing changed.`
          : `Stage ${name} ${enabled ? 'disabled' : 'enabled'}: conf.d updated and reloaded (generation ${d.generation ?? '?'}).`));
      const up = h('button', { type: 'button', class: 'icon', 'aria-label': `Move ${name} up`, title: 'Move up', disabled: i === 0 }, '↑');
      const down = h('button', { type: 'button', class: 'icon', 'aria-label': `Move ${name} down`, title: 'Move down', disabled: i === n - 1 }, '↓');
      const move = (pos) => act('Move ' + name, 'POST', `/api/stages/${enc(name)}/move`, { position: pos },
        (d) => `Stage ${name} moved to position ${pos}: conf.d updated and reloaded (generation ${d.generation ?? '?'}).` +
          (Array.isArray(d.order) ? ' Order: ' + d.order.join(' → ') : ''));
      up.addEventListener('click', () => move(i));
      down.addEventListener('click', () => move(i + 2));
      actions.append(toggle, up, down);
    } else {
      actions.append(h('span', { class: 'muted' }, 'read-only'));
    }
    return h('tr', { class: enabled ? null : 'row-off', 'data-stage': name },
      h('td', { class: 'num' }, String(st.position ?? i + 1)),
      h('td', null, h('div', { class: 'stage-name mono' }, name),
        st.description ? h('div', { class: 'muted small' }, st.description) : null),
      h('td', null, badge(String(st.kind || ''), 'neutral')),
      h('td', null, enabled ? badge('enabled', 'ok') : badge('disabled', 'off')),
      h('td', { class: 'num' }, fmtNum(st.calls)),
      h('td', { class: 'num' }, fmtNum(st.avg_ms, 2)),
      h('td', { class: 'num' }, fmtNum(st.errors)),
      h('td', { class: 'num' }, fmtNum(st.timeouts)),
      h('td', { class: 'small' }, counters(st)),
      actions);
  }

  async function load() {
    const r = await api('GET', '/api/stages');
    if (!alive) return;
    if (!r.ok) {
      replace(tableBox, notice('error', 'Cannot load the stages: ' + errText(r)));
      return;
    }
    const stages = Array.isArray(r.data.stages) ? r.data.stages : [];
    replace(tableBox, h('table', { class: 'table', id: 'chain-table' },
      h('caption', { class: 'sr-only' }, 'Stages in chain order'),
      h('thead', null, h('tr', null,
        ['#', 'Stage', 'Kind', 'State', 'Calls', 'Avg ms', 'Errors', 'Timeouts', 'Verdicts and counters', 'Actions']
          .map((t, k) => h('th', { class: k === 0 || (k >= 4 && k <= 7) ? 'num' : null, scope: 'col' }, t)))),
      h('tbody', null, stages.map((st, i) => row(st, i, stages.length)))));
  }
  load();
  return () => { alive = false; };
}
