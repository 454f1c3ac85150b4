// page_policy.js - the Policy: the current script in a textarea, saved
// with POST /api/policy (compiled by the server first: a syntax error is
// refused with its line and column, shown here with the offending line,
// and nothing is saved); the saved versions (GET /api/policy) and one old
// version (#/policy/versions/N, GET /api/policy/versions/N), which an
// administrator can copy into the editor.
import { h, replace, notice, badge, field, fmtTime } from './dom.js';
import { api, errText, enc } from './api.js';

let draft = null;   // a script to open the editor with (from "copy into the editor")

function versionsTable(versions, current) {
  const rows = versions.map((v) => h('tr', null,
    h('td', { class: 'num' }, String(v.version), v.version === current ? [' ', badge('current', 'ok')] : null),
    h('td', { class: 'nowrap' }, fmtTime(v.saved_at)),
    h('td', null, String(v.saved_by ?? '')),
    h('td', null, h('a', { href: '#/policy/versions/' + enc(String(v.version)), 'aria-label': 'View version ' + v.version }, 'View'))));
  return h('table', { class: 'table compact', id: 'policy-versions' },
    h('caption', { class: 'table-caption' }, `${versions.length} saved version${versions.length === 1 ? '' : 's'}`),
    h('thead', null, h('tr', null, ['Version', 'Saved at', 'Saved by', ''].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: 4, class: 'muted' }, 'No saved version yet: the built-in default policy is in use.'))));
}

// the error's line with a caret under the column
function errorContext(script, line, column) {
  const lines = script.split('\n');
  const l = Number(line);
  if (!(l >= 1 && l <= lines.length)) return null;
  const out = [];
  if (l > 1) out.push(`${String(l - 1).padStart(4)} | ${lines[l - 2]}`);
  out.push(`${String(l).padStart(4)} | ${lines[l - 1]}`);
  const c = Math.max(1, Number(column) || 1);
  out.push('     | ' + ' '.repeat(c - 1) + '^');
  const pre = h('pre', { class: 'error-context', 'aria-label': 'Where the error is' });
  pre.textContent = out.join('\n');
  return pre;
}

function renderEditor(ctx, main) {
  const result = h('div', { id: 'policy-result', 'aria-live': 'polite' });
  const info = h('p', { class: 'muted', id: 'policy-version' }, 'Loading…');
  const ta = h('textarea', { id: 'policy-script', name: 'script', rows: '24', spellcheck: 'false', autocomplete: 'off', wrap: 'off', class: 'code', readOnly: !ctx.isAdmin });
  const versions = h('div', { class: 'table-wrap' });
  const save = h('button', { type: 'submit', class: 'primary' }, 'Save and apply');
  const revert = h('button', { type: 'button', class: 'ghost' }, 'Discard changes');
  const form = h('form', { class: 'policy-form', 'aria-label': 'Edit the policy' },
    field(ctx.isAdmin ? 'Policy script' : 'Policy script (read-only)', ta),
    ctx.isAdmin ? h('div', { class: 'form-actions' }, save, revert,
      h('span', { class: 'muted small' }, 'The script is compiled first; it is saved as a new version and applied by a graceful reload only if it compiles.')) : null);
  main.append(h('div', { class: 'grid-policy' },
    h('section', { class: 'card' }, h('h2', null, 'Current policy'), info, result, form),
    h('section', { class: 'card' }, h('h2', null, 'Versions'), versions)));
  let alive = true;
  let saved = '';

  revert.addEventListener('click', () => { ta.value = saved; replace(result); });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!ctx.isAdmin) return;
    save.disabled = true;
    replace(result, notice('info', 'Compiling and saving…'));
    const script = ta.value;
    const r = await api('POST', '/api/policy', { script });
    save.disabled = false;
    if (!alive) return;
    if (r.ok) {
      replace(result, notice('ok', `Saved as version ${r.data.version} and applied (generation ${r.data.generation ?? '?'}).`));
      load(false);
      return;
    }
    const d = r.data || {};
    if (d.line !== undefined && d.line !== null) {
      replace(result, notice('error',
        h('strong', null, `Refused: syntax error at line ${d.line}, column ${d.column ?? '?'}`), ': ',
        errText(r).replace(/^\d+:\d+:\s*/, ''), '. Nothing was saved.', errorContext(script, d.line, d.column)));
      // put the cursor where the error is
      const lines = script.split('\n');
      let pos = 0;
      for (let i = 0; i < Math.min(Number(d.line) - 1, lines.length); i++) pos += lines[i].length + 1;
      pos += Math.max(0, (Number(d.column) || 1) - 1);
      ta.focus();
      ta.setSelectionRange(pos, pos);
    } else {
      replace(result, notice('error', 'Refused: ' + errText(r) + '. Nothing was saved.'));
    }
  });

  async function load(keepText) {
    const r = await api('GET', '/api/policy');
    if (!alive) return;
    if (!r.ok) {
      replace(info, 'Cannot load the policy: ' + errText(r));
      info.className = 'notice notice-error';
      return;
    }
    const d = r.data;
    saved = typeof d.script === 'string' ? d.script : '';
    const vs = Array.isArray(d.versions) ? d.versions : [];
    const kept = `${vs.length} version${vs.length === 1 ? '' : 's'} kept.`;
    if (d.version) info.textContent = `Version ${d.version} is in use. ${kept}`;
    else if (d.default) info.textContent = `The built-in default policy is in use. ${kept}`;
    else info.textContent = `The script in use${d.path ? ' (' + d.path + ')' : ''} is not one of the saved versions. ${kept}`;
    info.setAttribute('data-version', String(d.version ?? ''));
    info.setAttribute('data-versions', String(vs.length));
    if (!keepText) {
      if (draft !== null && ctx.isAdmin) {
        ta.value = draft;
        replace(result, notice('info', 'An older version was copied into the editor: save it to make it current.'));
        draft = null;
      } else {
        ta.value = saved;
      }
    }
    replace(versions, versionsTable(vs, d.version));
  }
  load(false);
  return () => { alive = false; };
}

function renderVersion(ctx, main, n) {
  ctx.setTitle('Policy · version ' + n);
  const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  main.append(h('p', null, h('a', { href: '#/policy', class: 'back' }, '← Back to the policy')), body);
  let alive = true;
  (async () => {
    const r = await api('GET', '/api/policy/versions/' + enc(n));
    if (!alive) return;
    if (!r.ok) {
      replace(body, notice('error', r.status === 404 ? `No version ${n}.` : 'Cannot load it: ' + errText(r)));
      return;
    }
    const v = r.data;
    const pre = h('pre', { class: 'code', id: 'policy-version-script', tabindex: '0', 'aria-label': 'Script of version ' + n });
    pre.textContent = typeof v.script === 'string' ? v.script : '';
    const copy = ctx.isAdmin ? h('button', { type: 'button', class: 'ghost' }, 'Copy into the editor') : null;
    if (copy) copy.addEventListener('click', () => { draft = pre.textContent; location.hash = '#/policy'; });
    replace(body, h('section', { class: 'card' },
      h('h2', null, `Version ${v.version ?? n}`),
      h('p', { class: 'muted' }, `Saved ${fmtTime(v.saved_at)} by ${v.saved_by ?? 'unknown'}.`),
      copy, pre));
  })();
  return () => { alive = false; };
}

export function render(ctx, main, params) {
  if (params[0] === 'versions' && params[1]) return renderVersion(ctx, main, params[1]);
  return renderEditor(ctx, main);
}
