// dom.js - tiny DOM builders for the sluice Manager pages.
//
// h(tag, attrs, ...children) and s(tag, attrs, ...children) (SVG) build
// elements with createElement/createElementNS; strings become text nodes,
// so data from the API is never parsed as HTML.
//
// SECURITY: there is no innerHTML anywhere in the front end. Attribute
// names are fixed by our own code; `on` takes event listeners (the CSP
// forbids inline handlers), `text` sets textContent, and a `style`
// attribute is refused (the CSP forbids inline style: use classes).
const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'style' || k.startsWith('on') && k !== 'on') {
      throw new Error('dom: inline style and handlers are not allowed');
    }
    if (k === 'on') {
      for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    } else if (k === 'text') {
      el.textContent = String(v);
    } else if (k === 'class') {
      el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    } else if (k === 'value' && 'value' in el) {
      el.value = String(v);
    } else if (k === 'checked' || k === 'disabled' || k === 'selected' ||
               k === 'readOnly' || k === 'required' || k === 'multiple') {
      el[k] = !!v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// A labelled form field: <div class="field"><label for=id>label</label>control</div>
let fieldSeq = 0;
export function field(label, control, hint) {
  if (!control.id) control.id = 'f' + (++fieldSeq);
  return h('div', { class: 'field' },
    h('label', { for: control.id, text: label }), control,
    hint ? h('small', { class: 'hint', text: hint }) : null);
}

export function select(attrs, options, current) {
  const el = h('select', attrs);
  for (const o of options) {
    const [value, label] = Array.isArray(o) ? o : [o, o];
    const opt = h('option', { value }, label);
    if (String(value) === String(current ?? '')) opt.selected = true;
    el.appendChild(opt);
  }
  return el;
}

export function badge(text, kind) {
  return h('span', { class: ['badge', kind ? 'badge-' + kind : null] }, text);
}

// Message area: kind 'ok' | 'error' | 'info'; errors are alerts.
export function notice(kind, ...children) {
  return h('div', { class: ['notice', 'notice-' + kind], role: kind === 'error' ? 'alert' : 'status' },
    ...children);
}

export function fmtNum(n, digits) {
  if (n === undefined || n === null || n === '' || Number.isNaN(Number(n))) return '–';
  const x = Number(n);
  if (digits !== undefined) return x.toFixed(digits);
  return Number.isInteger(x) ? x.toLocaleString('en-US') : x.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

function pad(n) { return String(n).padStart(2, '0'); }

// Epoch seconds, or an ISO/PostgreSQL timestamp string -> local "YYYY-MM-DD HH:MM:SS".
export function toDate(t) {
  if (t === undefined || t === null || t === '') return null;
  let d;
  if (typeof t === 'number') d = new Date(t * 1000);
  else if (/^\d+(\.\d+)?$/.test(t)) d = new Date(Number(t) * 1000);
  else d = new Date(String(t).replace(' ', 'T'));
  return Number.isNaN(d.getTime()) ? null : d;
}

export function fmtTime(t, short) {
  const d = toDate(t);
  if (!d) return t ? String(t) : '–';
  const hm = pad(d.getHours()) + ':' + pad(d.getMinutes());
  if (short === 'hm') return hm;
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) +
    ' ' + hm + ':' + pad(d.getSeconds());
}

export function fmtDuration(sec) {
  if (sec === undefined || sec === null || Number.isNaN(Number(sec))) return '–';
  let x = Math.max(0, Math.floor(Number(sec)));
  const d = Math.floor(x / 86400); x %= 86400;
  const hh = Math.floor(x / 3600); x %= 3600;
  const mm = Math.floor(x / 60); const ss = x % 60;
  if (d) return `${d} d ${hh} h ${mm} min`;
  if (hh) return `${hh} h ${mm} min`;
  if (mm) return `${mm} min ${ss} s`;
  return `${ss} s`;
}

export function fmtSize(n) {
  if (n === undefined || n === null) return '–';
  const x = Number(n);
  if (x < 1024) return x + ' B';
  if (x < 1024 * 1024) return (x / 1024).toFixed(1) + ' KiB';
  return (x / 1024 / 1024).toFixed(1) + ' MiB';
}
