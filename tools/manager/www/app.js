// app.js - the sluice Manager single-page app: session, login, the shell
// (sidebar, user and role, logout) and the hash router.
//
// Routes: #/dashboard  #/chain  #/quarantine  #/quarantine/ID  #/lists
//         #/policy  #/policy/versions/N  #/status
// Each page module exports render(ctx, main, params) and may return a
// cleanup function (called when the page is left: timers stop).
//
// SECURITY: every text from the server goes through textContent (dom.js);
// auditors get read-only pages (no buttons that change state), and the
// server refuses them anyway (403).
import { h, clear, replace, field, badge, notice } from './dom.js';
import { api, errText, setCsrf, onUnauthorized } from './api.js';
import * as dashboard from './page_dashboard.js';
import * as chain from './page_chain.js';
import * as quarantine from './page_quarantine.js';
import * as lists from './page_lists.js';
import * as policy from './page_policy.js';
import * as status from './page_status.js';

const PAGES = [
  { path: 'dashboard', title: 'Dashboard', mod: dashboard },
  { path: 'chain', title: 'Chain', mod: chain },
  { path: 'quarantine', title: 'Quarantine', mod: quarantine },
  { path: 'lists', title: 'Lists', mod: lists },
  { path: 'policy', title: 'Policy', mod: policy },
  { path: 'status', title: 'Status', mod: status },
];

const root = document.getElementById('app');
let session = null;       // {user, role, csrf}
let cleanup = null;
let shell = null;         // {main, title, links}

function runCleanup() {
  if (typeof cleanup === 'function') {
    try { cleanup(); } catch (e) { /* page already gone */ }
  }
  cleanup = null;
}

// ---------------------------------------------------------------- login
function showLogin(message) {
  runCleanup();
  session = null;
  shell = null;
  setCsrf('');
  document.title = 'Log in · sluice Manager';
  const user = h('input', { type: 'text', name: 'user', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const out = h('div', { class: 'login-msg' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Log in');
  if (message) replace(out, notice('info', message));
  const form = h('form', { class: 'login-form', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, h('span', { class: 'brand-mark' }, 'sluice'), ' Manager'),
    h('p', { class: 'muted' }, 'Log in with an account made by ', h('code', null, 'sluicectl admin add'), '.'),
    field('User name', user), field('Password', pass), button, out);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    replace(out, notice('info', 'Logging in…'));
    const r = await api('POST', '/api/login', { user: user.value, password: pass.value });
    button.disabled = false;
    if (r.ok) {
      pass.value = '';
      enter(r.data);
      return;
    }
    let msg = errText(r);
    if (r.status === 401) msg = 'Wrong user name or password.';
    if (r.status === 429) {
      const after = Number(r.data.retry_after);
      msg = 'Too many failed attempts: locked out' + (after > 0 ? ` for ${after} s.` : '.');
    }
    replace(out, notice('error', msg));
    pass.select();
  });
  replace(root, h('div', { class: 'login-page' }, h('main', { class: 'login-box' }, form)));
  user.focus();
}

// ---------------------------------------------------------------- shell
function roleName(role) { return role === 'admin' ? 'administrator' : role === 'auditor' ? 'auditor (read-only)' : String(role); }

function buildShell() {
  const links = {};
  const nav = h('nav', { class: 'nav', 'aria-label': 'Pages' });
  for (const p of PAGES) {
    links[p.path] = h('a', { href: '#/' + p.path, class: 'nav-link nav-' + p.path }, p.title);
    nav.appendChild(links[p.path]);
  }
  const logout = h('button', { type: 'button', class: 'ghost', id: 'logout' }, 'Log out');
  logout.addEventListener('click', async () => {
    logout.disabled = true;
    await api('POST', '/api/logout', {});
    location.hash = '';
    showLogin('You are logged out.');
  });
  const title = h('h1', { id: 'page-title' });
  const main = h('main', { id: 'main', class: 'main', tabindex: '-1' });
  const who = h('div', { class: 'who', 'aria-label': 'Logged in as' },
    h('span', { class: 'who-user', id: 'who-user' }, session.user),
    badge(roleName(session.role), session.role === 'admin' ? 'admin' : 'auditor'),
    logout);
  replace(root, h('div', { class: ['shell', session.role === 'admin' ? null : 'readonly'] },
    h('aside', { class: 'sidebar' },
      h('div', { class: 'brand' }, h('span', { class: 'brand-mark' }, 'sluice'), h('span', { class: 'brand-sub' }, 'Manager')),
      nav,
      h('div', { class: 'sidebar-foot' }, session.role === 'admin' ? 'Administrator' : 'Read-only access')),
    h('div', { class: 'content' },
      h('header', { class: 'topbar' }, title, who),
      main)));
  shell = { main, title, links };
}

function enter(data) {
  session = { user: String(data.user || ''), role: String(data.role || ''), csrf: data.csrf };
  setCsrf(data.csrf);
  buildShell();
  route();
}

// ---------------------------------------------------------------- router
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const parts = raw.split('/').filter(Boolean).map((x) => {
    try { return decodeURIComponent(x); } catch (e) { return x; }
  });
  return parts;
}

function route() {
  if (!session || !shell) return;
  runCleanup();
  const parts = parseHash();
  const page = PAGES.find((p) => p.path === parts[0]);
  if (!page) {
    location.replace('#/dashboard');
    return;
  }
  for (const [path, a] of Object.entries(shell.links)) {
    if (path === page.path) { a.classList.add('active'); a.setAttribute('aria-current', 'page'); }
    else { a.classList.remove('active'); a.removeAttribute('aria-current'); }
  }
  shell.title.textContent = page.title;
  document.title = page.title + ' · sluice Manager';
  const main = clear(shell.main);
  const ctx = {
    user: session.user,
    role: session.role,
    isAdmin: session.role === 'admin',
    setTitle: (t) => { shell.title.textContent = t; document.title = t + ' · sluice Manager'; },
  };
  try {
    cleanup = page.mod.render(ctx, main, parts.slice(1)) || null;
  } catch (e) {
    main.appendChild(notice('error', 'This page failed: ' + e.message));
  }
}

window.addEventListener('hashchange', route);
onUnauthorized(() => { if (session) showLogin('Your session has ended: please log in again.'); });

async function start() {
  const r = await api('GET', '/api/session');
  if (r.ok && r.data && r.data.user) enter(r.data);
  else if (r.status === 401 || r.status === 403) showLogin();
  else showLogin(r.status ? 'The manager answered: ' + errText(r) : errText(r));
}

start();
