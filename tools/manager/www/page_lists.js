// page_lists.js - the allow/block lists at site, domain and user level
// (GET/POST /api/lists, DELETE /api/lists/ID). A value is a sender address,
// a sender domain or a client network; the server validates it and its
// refusal is shown as it is.
import { h, replace, notice, badge, field, select, fmtTime } from './dom.js';
import { api, errText, qs, enc } from './api.js';

const filter = { kind: '', level: '', owner: '' };

export function render(ctx, main) {
  const fKind = select({ id: 'l-filter-kind' }, [['', 'all'], 'allow', 'block'], filter.kind);
  const fLevel = select({ id: 'l-filter-level' }, [['', 'all'], 'site', 'domain', 'user'], filter.level);
  const fOwner = h('input', { type: 'text', id: 'l-filter-owner', value: filter.owner, placeholder: 'domain or address' });
  const filterForm = h('form', { class: 'inline-form', role: 'search', 'aria-label': 'Filter the lists' },
    field('Filter by kind', fKind), field('Filter by level', fLevel), field('Filter by owner', fOwner),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'ghost' }, 'Show')));
  const result = h('div', { id: 'lists-result', 'aria-live': 'polite' });
  const table = h('div', { class: 'table-wrap' });
  let alive = true;

  const parts = [];
  if (ctx.isAdmin) {
    const aKind = select({ id: 'l-kind', name: 'kind' }, ['allow', 'block'], 'allow');
    const aLevel = select({ id: 'l-level', name: 'level' }, ['site', 'domain', 'user'], 'site');
    const aOwner = h('input', { type: 'text', id: 'l-owner', name: 'owner', placeholder: 'example.com', disabled: true });
    const aValue = h('input', { type: 'text', id: 'l-value', name: 'value', required: true, placeholder: 'spam.example' });
    const aComment = h('input', { type: 'text', id: 'l-comment', name: 'comment', maxlength: '200' });
    aLevel.addEventListener('change', () => {
      aOwner.disabled = aLevel.value === 'site';
      aOwner.required = aLevel.value !== 'site';
      if (aOwner.disabled) aOwner.value = '';
    });
    const add = h('form', { class: 'inline-form add-form', 'aria-label': 'Add a list entry' },
      field('Kind', aKind), field('Level', aLevel),
      field('Owner', aOwner, 'the recipient domain (domain level) or address (user level)'),
      field('Value', aValue, 'a sender address, a sender domain or a client network'),
      field('Comment', aComment),
      h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'primary' }, 'Add entry')));
    add.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = { kind: aKind.value, level: aLevel.value, value: aValue.value.trim() };
      if (aLevel.value !== 'site') body.owner = aOwner.value.trim();
      if (aComment.value.trim()) body.comment = aComment.value.trim();
      const r = await api('POST', '/api/lists', body);
      if (!alive) return;
      if (r.ok) {
        replace(result, notice('ok', `Added to the ${body.level} ${body.kind} list: ${body.value}`));
        aValue.value = '';
        aComment.value = '';
      } else {
        replace(result, notice('error', 'Not added: ' + errText(r)));
      }
      load();
    });
    parts.push(h('section', { class: 'card' }, h('h2', null, 'Add an entry'), add));
  }
  main.append(...parts, result, h('section', { class: 'card' }, h('h2', null, 'Entries'), filterForm, table));

  filterForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    Object.assign(filter, { kind: fKind.value, level: fLevel.value, owner: fOwner.value });
    load();
  });

  async function remove(it) {
    const r = await api('DELETE', '/api/lists/' + enc(String(it.id)));
    if (!alive) return;
    if (r.ok) replace(result, notice('ok', `Removed from the ${it.level} ${it.kind} list: ${it.value}`));
    else replace(result, notice('error', 'Not removed: ' + errText(r)));
    load();
  }

  async function load() {
    const r = await api('GET', '/api/lists' + qs(filter));
    if (!alive) return;
    if (!r.ok) {
      replace(table, notice('error', 'Cannot load the lists: ' + errText(r)));
      return;
    }
    const items = Array.isArray(r.data.items) ? r.data.items : [];
    const rows = items.map((it) => {
      const rm = ctx.isAdmin ? h('button', { type: 'button', class: 'danger small', 'aria-label': `Remove ${it.kind} entry ${it.value}` }, 'Remove') : null;
      if (rm) rm.addEventListener('click', () => { rm.disabled = true; remove(it); });
      return h('tr', { 'data-id': String(it.id) },
        h('td', null, badge(String(it.kind), it.kind === 'allow' ? 'ok' : 'err')),
        h('td', null, String(it.level)),
        h('td', { class: 'mono' }, it.owner ? String(it.owner) : '–'),
        h('td', { class: 'mono' }, String(it.value)),
        h('td', null, it.comment ? String(it.comment) : ''),
        h('td', { class: 'nowrap' }, fmtTime(it.created)),
        ctx.isAdmin ? h('td', { class: 'actions' }, rm) : null);
    });
    const cols = ['Kind', 'Level', 'Owner', 'Value', 'Comment', 'Created'].concat(ctx.isAdmin ? ['Actions'] : []);
    replace(table, h('table', { class: 'table', id: 'lists-table' },
      h('caption', { class: 'table-caption' }, `${items.length} entr${items.length === 1 ? 'y' : 'ies'}`),
      h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: cols.length, class: 'muted' }, 'No entries.')))));
  }
  load();
  return () => { alive = false; };
}
