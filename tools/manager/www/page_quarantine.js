// page_quarantine.js - the Quarantine: a search form (recipient, sender,
// subject, date range, score range, status), a result table with
// checkboxes and bulk release / delete / allow-sender-and-release, and the
// view of one message (#/quarantine/ID): metadata, headers, the text.
//
// SECURITY: the message is hostile data. Headers and the text (decoded
// and turned into plain text by the server) are shown with textContent in
// <pre>/<td>: nothing of it is parsed as HTML, no remote content loads.
import { h, replace, notice, badge, field, select, fmtNum, fmtTime, fmtSize } from './dom.js';
import { api, errText, qs, enc } from './api.js';

const PAGE = 50;
// kept across visits so "back to the results" keeps the search
const search = { recipient: '', sender: '', subject: '', from: '', to: '', min_score: '', max_score: '', status: 'quarantined', offset: 0 };

const STATUS_KIND = { quarantined: 'warn', released: 'ok', deleted: 'off', delivered: 'ok' };

function rcptText(r) {
  if (r && typeof r === 'object') {
    const a = r.rcpt || r.address || r.recipient || '';
    return r.status ? `${a} (${r.status})` : String(a);
  }
  return String(r);
}

function rcpts(item, detail) {
  // the message view shows each recipient's own state (rcpt_status)
  const list = detail && Array.isArray(item.rcpt_status) ? item.rcpt_status
    : Array.isArray(item.recipients) ? item.recipients : Array.isArray(item.rcpts) ? item.rcpts : [];
  return list.map(rcptText).join(', ');
}

function statusBadge(st) {
  return badge(String(st || 'unknown'), STATUS_KIND[st] || 'neutral');
}

function score(v) { return v === undefined || v === null ? '–' : fmtNum(v, 2); }

function bulkSummary(action, data) {
  const res = Array.isArray(data.results) ? data.results : [];
  const ok = res.filter((x) => x.ok).length;
  const bad = res.filter((x) => !x.ok);
  const verb = { release: 'released', delete: 'deleted', 'allow-release': 'allowed and released' }[action];
  let text = `${ok} of ${res.length} ${verb}.`;
  if (bad.length) text += ' Failed: ' + bad.map((x) => `#${x.id}: ${x.error || 'error'}`).join('; ');
  return [bad.length ? 'error' : 'ok', text];
}

// ---------------------------------------------------------------- list
function renderList(ctx, main) {
  const inp = (name, type, extra) => h('input', { type, name, value: search[name], id: 'q-' + name.replace('_', '-'), ...extra });
  const fRcpt = inp('recipient', 'text', { placeholder: 'user@example.com' });
  const fSender = inp('sender', 'text', { placeholder: 'sender or part of it' });
  const fSubject = inp('subject', 'text', { placeholder: 'words in the subject' });
  const fFrom = inp('from', 'date');
  const fTo = inp('to', 'date');
  const fMin = inp('min_score', 'number', { step: 'any' });
  const fMax = inp('max_score', 'number', { step: 'any' });
  const fStatus = select({ name: 'status', id: 'q-status' },
    [['quarantined', 'quarantined'], ['released', 'released'], ['delivered', 'delivered'], ['deleted', 'deleted'], ['any', 'any']], search.status);
  const form = h('form', { class: 'search-form', role: 'search', 'aria-label': 'Search the quarantine' },
    field('Recipient', fRcpt), field('Sender', fSender), field('Subject', fSubject),
    field('Received from', fFrom), field('Received to', fTo),
    field('Minimum score', fMin), field('Maximum score', fMax), field('Status', fStatus),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Search'),
      h('button', { type: 'reset', class: 'ghost' }, 'Clear')));
  const result = h('div', { id: 'quarantine-result', 'aria-live': 'polite' });
  const table = h('div', { class: 'table-wrap' });
  const pager = h('div', { class: 'pager' });
  const bulk = h('div', { class: 'bulk' });
  main.append(h('section', { class: 'card' }, form), result, bulk, table, pager);
  let alive = true;
  let selected = new Set();
  let items = [];

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    Object.assign(search, {
      recipient: fRcpt.value, sender: fSender.value, subject: fSubject.value, from: fFrom.value, to: fTo.value,
      min_score: fMin.value, max_score: fMax.value, status: fStatus.value, offset: 0,
    });
    replace(result);
    load();
  });
  form.addEventListener('reset', () => {
    Object.assign(search, { recipient: '', sender: '', subject: '', from: '', to: '', min_score: '', max_score: '', status: 'quarantined', offset: 0 });
    setTimeout(() => { fStatus.value = 'quarantined'; load(); }, 0);
  });

  const bulkButtons = [];
  function updateBulk() {
    for (const b of bulkButtons) b.disabled = selected.size === 0;
    const c = bulk.querySelector('.bulk-count');
    if (c) c.textContent = selected.size ? `${selected.size} selected` : 'none selected';
  }
  if (ctx.isAdmin) {
    const mk = (action, label, cls) => {
      const b = h('button', { type: 'button', class: cls, disabled: true }, label);
      b.addEventListener('click', async () => {
        if (!selected.size) return;
        if (action === 'delete' && !window.confirm(`Delete ${selected.size} message(s) from the quarantine?`)) return;
        for (const x of bulkButtons) x.disabled = true;
        replace(result, notice('info', 'Working…'));
        const r = await api('POST', '/api/quarantine/bulk', { action, ids: [...selected].map((x) => (/^\d+$/.test(x) ? Number(x) : x)) });
        if (!alive) return;
        if (r.ok) replace(result, notice(...bulkSummary(action, r.data)));
        else replace(result, notice('error', 'Refused: ' + errText(r)));
        selected = new Set();
        load();
      });
      bulkButtons.push(b);
      return b;
    };
    bulk.append(h('span', { class: 'bulk-count muted' }, 'none selected'),
      mk('release', 'Release selected', 'primary'),
      mk('allow-release', 'Allow senders and release selected', 'ghost'),
      mk('delete', 'Delete selected', 'danger'));
  }

  async function load() {
    replace(table, h('p', { class: 'muted' }, 'Searching…'));
    const q = { ...search, limit: PAGE, offset: search.offset || '' };
    const r = await api('GET', '/api/quarantine' + qs(q));
    if (!alive) return;
    replace(pager);
    if (!r.ok) {
      replace(table, notice('error', 'Search failed: ' + errText(r)));
      return;
    }
    items = Array.isArray(r.data.items) ? r.data.items : [];
    const total = Number(r.data.total ?? items.length);
    selected = new Set([...selected].filter((id) => items.some((it) => String(it.id) === id)));
    const all = h('input', { type: 'checkbox', 'aria-label': 'Select all on this page' });
    const boxes = [];
    all.addEventListener('change', () => {
      for (const b of boxes) { b.checked = all.checked; b.dispatchEvent(new Event('change')); }
    });
    const rows = items.map((it) => {
      const id = String(it.id);
      const cb = h('input', { type: 'checkbox', 'aria-label': 'Select message ' + id, checked: selected.has(id), value: id });
      cb.addEventListener('change', () => { if (cb.checked) selected.add(id); else selected.delete(id); updateBulk(); });
      boxes.push(cb);
      const subj = it.subject ? String(it.subject) : '(no subject)';
      return h('tr', { 'data-id': id },
        ctx.isAdmin ? h('td', { class: 'check' }, cb) : null,
        h('td', { class: 'nowrap' }, fmtTime(it.received)),
        h('td', { class: 'mono' }, String(it.sender || '<>')),
        h('td', { class: 'mono' }, rcpts(it)),
        h('td', null, h('a', { href: '#/quarantine/' + enc(id), class: 'subject-link', 'aria-label': 'Open message ' + id + ': ' + subj }, subj)),
        h('td', { class: 'num' }, score(it.score)),
        h('td', null, statusBadge(it.status)));
    });
    replace(table, h('table', { class: 'table', id: 'quarantine-table' },
      h('caption', { class: 'table-caption' }, `${fmtNum(total)} message${total === 1 ? '' : 's'} found`),
      h('thead', null, h('tr', null, ctx.isAdmin ? h('th', { class: 'check' }, all) : null,
        ['Received', 'Sender', 'Recipients', 'Subject', 'Score', 'Status']
          .map((t) => h('th', { scope: 'col', class: t === 'Score' ? 'num' : null }, t)))),
      h('tbody', null, rows.length ? rows
        : h('tr', null, h('td', { colspan: ctx.isAdmin ? 7 : 6, class: 'muted' }, 'No message matches.')))));
    const off = Number(search.offset) || 0;
    const prev = h('button', { type: 'button', class: 'ghost', disabled: off === 0 }, '← Previous');
    const next = h('button', { type: 'button', class: 'ghost', disabled: off + items.length >= total }, 'Next →');
    prev.addEventListener('click', () => { search.offset = Math.max(0, off - PAGE); load(); });
    next.addEventListener('click', () => { search.offset = off + PAGE; load(); });
    replace(pager, prev, h('span', { class: 'muted' }, items.length ? `${off + 1}–${off + items.length} of ${fmtNum(total)}` : ''), next);
    updateBulk();
  }
  load();
  return () => { alive = false; };
}

// ---------------------------------------------------------------- one message
function renderMessage(ctx, main, id) {
  ctx.setTitle('Quarantine · message ' + id);
  const result = h('div', { id: 'message-result', 'aria-live': 'polite' });
  const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  main.append(h('p', null, h('a', { href: '#/quarantine', class: 'back' }, '← Back to the results')), result, body);
  let alive = true;

  async function act(action, label) {
    if (action === 'delete' && !window.confirm('Delete this message from the quarantine?')) return;
    for (const b of body.querySelectorAll('.msg-actions button')) b.disabled = true;
    replace(result, notice('info', label + '…'));
    const r = await api('POST', `/api/quarantine/${enc(id)}/${action}`, {});
    if (!alive) return;
    if (r.ok && r.data.ok !== false) {
      const done = { release: 'Released: handed to the MTA for delivery.', delete: 'Deleted.', 'allow-release': 'Sender added to the site allow list; message released.' }[action];
      replace(result, notice('ok', done));
    } else {
      replace(result, notice('error', label + ' refused: ' + errText(r)));
    }
    load();
  }

  async function load() {
    const r = await api('GET', '/api/quarantine/' + enc(id));
    if (!alive) return;
    if (!r.ok) {
      replace(body, notice('error', r.status === 404 ? 'No such message in the quarantine.' : 'Cannot load the message: ' + errText(r)));
      return;
    }
    const m = r.data;
    const subj = m.subject ? String(m.subject) : '(no subject)';
    const isQ = !m.status || m.status === 'quarantined';
    const actions = h('div', { class: 'msg-actions' });
    if (ctx.isAdmin) {
      const mk = (action, label, cls) => {
        const b = h('button', { type: 'button', class: cls, disabled: !isQ }, label);
        b.addEventListener('click', () => act(action, label));
        return b;
      };
      actions.append(mk('release', 'Release', 'primary'), mk('allow-release', 'Allow sender and release', 'ghost'),
        mk('delete', 'Delete', 'danger'));
    }
    const meta = [
      ['ID', String(m.id ?? id)], ['Received', fmtTime(m.received)], ['Sender', String(m.sender || '<>')],
      ['Recipients', rcpts(m, true)], ['Score', score(m.score)],
      ['Probability', m.probability === undefined || m.probability === null ? '–' : (Number(m.probability) * 100).toFixed(1) + ' %'],
      ['Size', fmtSize(m.size)],
    ];
    const dl = h('dl', { class: 'meta' });
    for (const [k, v] of meta) dl.append(h('dt', null, k), h('dd', { class: k === 'Sender' || k === 'Recipients' ? 'mono' : null }, v));
    dl.append(h('dt', null, 'Status'), h('dd', null, statusBadge(m.status)));
    const syms = Array.isArray(m.symbols) ? m.symbols : [];
    dl.append(h('dt', null, 'Symbols'), h('dd', { class: 'chips' }, syms.length ? syms.map((x) => {
      const t = typeof x === 'object' && x ? `${x.name}${x.score !== undefined ? ' (' + x.score + ')' : ''}` : String(x);
      return h('span', { class: 'chip mono' }, t);
    }) : '–'));
    const headers = Array.isArray(m.headers) ? m.headers : [];
    const htable = h('table', { class: 'table compact headers', id: 'message-headers' },
      h('caption', { class: 'sr-only' }, 'Message headers'),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Value'))),
      h('tbody', null, headers.map((x) => h('tr', null,
        h('th', { scope: 'row', class: 'mono' }, String(Array.isArray(x) ? x[0] : x.name)),
        h('td', { class: 'mono wrap' }, String(Array.isArray(x) ? x[1] : x.value))))));
    const text = h('pre', { class: 'msgtext', id: 'message-text', tabindex: '0', 'aria-label': 'Message text' });
    text.textContent = typeof m.text === 'string' ? m.text : '';
    replace(body,
      h('section', { class: 'card' }, h('h2', { class: 'msg-subject' }, subj), actions, dl),
      h('section', { class: 'card' }, h('h2', null, 'Headers'), h('div', { class: 'table-wrap' }, htable)),
      h('section', { class: 'card' }, h('h2', null, 'Text'),
        h('p', { class: 'muted small' }, 'Shown as plain text: no HTML is rendered and nothing is loaded from the message.'),
        text));
  }
  load();
  return () => { alive = false; };
}

export function render(ctx, main, params) {
  if (params.length >= 1) return renderMessage(ctx, main, params[0]);
  return renderList(ctx, main);
}
