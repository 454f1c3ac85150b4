// run.mjs - browser tests of sluice-manager in Debian's headless Chromium,
// driven by playwright-core (no browser download: executablePath
// /usr/bin/chromium). Started by tests/integration/manager_browser.sh,
// which brings up PostgreSQL, Postfix, sluiced and sluice-manager first and
// passes where they are in the environment:
//
//   MGR_URL          https://127.0.0.1:PORT (self-signed certificate)
//   MGR_USER MGR_PASS        an administrator (sluicectl admin add)
//   AUDIT_USER AUDIT_PASS    an auditor (optional: its steps are skipped when unset)
//   SMTP_PORT        the inbound Postfix smtpd (mail goes Postfix -> sluiced -> Postfix)
//   MAILDIR          where Postfix's virtual(8) delivers *@test.example (the sink)
//   CONF_DIR         sluiced's conf.d; SLUICECTL, CONTROL_SOCKET: the control socket
//   STAGE, MARK      the stage to disable and the header it adds (heuristic, X-Sluice-Score)
//   SHOTS_DIR        where the screenshots go (one PNG per page and step)
//
// Steps (each reported as "ok"/"not ok"; a failed step leaves FAIL-*.png):
//   login; dashboard (charts, live refresh without a page reload); status;
//   chain: the mark is on delivered mail, disable STAGE in the page ->
//   conf.d says `enabled no`, the control socket says disabled, the next
//   message through Postfix has no mark; enable -> the mark is back; a
//   stage moved down and back up (the control socket shows the order);
//   quarantine: a message the default policy quarantines is found by a
//   search, shown as text (its HTML is not rendered), released in the page
//   and found delivered in the Maildir; lists: add and remove an entry;
//   policy: a valid script saved as a new version (and viewable), a syntax
//   error refused with its line and column shown and the number of versions
//   unchanged; the dashboard shows the mail sent; auditor: read-only pages
//   (and a 403 for a change); logout.
// The last line is "N passed, N failed"; exit status 1 when any failed.
//
// SECURITY: talks only to 127.0.0.1; the browser runs with an empty
// profile, no background networking, and accepts the test's self-signed
// certificate only (ignoreHTTPSErrors in this context).
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`environment variable ${k} is not set`);
  return v;
};
const URL_ = env('MGR_URL');
const USER = env('MGR_USER');
const PASS = env('MGR_PASS');
const AUDIT_USER = process.env.AUDIT_USER || '';
const AUDIT_PASS = process.env.AUDIT_PASS || '';
const SMTP_PORT = Number(env('SMTP_PORT'));
const MAILDIR = env('MAILDIR');
const CONF_DIR = env('CONF_DIR');
const SLUICECTL = env('SLUICECTL');
const CONTROL_SOCKET = env('CONTROL_SOCKET');
const STAGE = env('STAGE', 'heuristic');
const MARK = env('MARK', 'X-Sluice-Score');
const SHOTS = env('SHOTS_DIR');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const RUN = `${process.pid}-${Date.now() % 100000}`;

fs.mkdirSync(SHOTS, { recursive: true });
const log = (...a) => console.log(new Date().toISOString().slice(11, 19), ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function assert(cond, msg) { if (!cond) throw new Error(msg); }

// ------------------------------------------------------------ SMTP, Maildir
// one SMTP transaction, each reply checked; rejects with the reply text
async function smtpSend({ from, to, data }) {
  const sock = net.createConnection({ host: '127.0.0.1', port: SMTP_PORT });
  sock.setEncoding('latin1');
  let buf = '';
  let waiter = null;
  let failure = null;
  sock.on('data', (c) => { buf += c; if (waiter) waiter(); });
  sock.on('error', (e) => { failure = e; if (waiter) waiter(); });
  sock.on('close', () => { failure = failure || new Error('SMTP connection closed'); if (waiter) waiter(); });
  const reply = async () => {
    const deadline = Date.now() + 30000;
    for (;;) {
      const m = buf.match(/^(?:\d{3}-.*\r?\n)*(\d{3}) (.*)\r?\n/);
      if (m) { buf = buf.slice(m[0].length); return [Number(m[1]), m[2]]; }
      if (failure) throw failure;
      if (Date.now() > deadline) throw new Error('SMTP timeout');
      await new Promise((r) => { waiter = r; setTimeout(r, 500); });
      waiter = null;
    }
  };
  const cmd = async (line, want) => {
    if (line !== null) sock.write(line + '\r\n');
    const [code, text] = await reply();
    if (code !== want) throw new Error(`SMTP ${line ? line.split(' ')[0] : 'greeting'}: ${code} ${text}`);
  };
  try {
    await cmd(null, 220);
    await cmd('EHLO browser-test.example', 250);
    await cmd(`MAIL FROM:<${from}>`, 250);
    await cmd(`RCPT TO:<${to}>`, 250);
    await cmd('DATA', 354);
    const body = data.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    await cmd(body + (body.endsWith('\r\n') ? '' : '\r\n') + '.', 250);
    await cmd('QUIT', 221);
  } finally {
    sock.destroy();
  }
}

function message({ token, subject, extra = [], body }) {
  return [
    'From: Browser Test <sender@sender.test>',
    `To: <${token}@test.example>`,
    `Subject: ${subject}`,
    `Message-ID: <${token}@browser.test>`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    ...extra,
    '',
    body || `This message was sent by the browser test (${token}).`,
    '',
  ].join('\r\n');
}

function maildirFiles() {
  const out = [];
  for (const d of ['new', 'cur']) {
    const dir = path.join(MAILDIR, d);
    if (!fs.existsSync(dir)) continue;
    for (const f of fs.readdirSync(dir)) out.push(path.join(dir, f));
  }
  return out;
}

function headersOf(raw) {
  const end = raw.search(/\r?\n\r?\n/);
  const head = (end < 0 ? raw : raw.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  return head.split(/\r?\n/).map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()];
  });
}

// The delivered copies of the message with this Message-ID token.
function delivered(token) {
  return maildirFiles().map((f) => fs.readFileSync(f, 'latin1'))
    .filter((raw) => raw.includes(`<${token}@browser.test>`));
}

async function waitDelivered(token, secs = 60) {
  for (let i = 0; i < secs * 4; i++) {
    const d = delivered(token);
    if (d.length) return d;
    await sleep(250);
  }
  throw new Error(`message ${token} not delivered to ${MAILDIR} within ${secs} s`);
}

// Send one clean message through Postfix -> sluiced -> Postfix; its headers.
async function sendAndFetch(label) {
  const token = `bt-${label}-${RUN}`;
  await smtpSend({ from: 'sender@sender.test', to: `${token}@test.example`, data: message({ token, subject: `browser test ${label}` }) });
  const d = await waitDelivered(token);
  assert(d.length === 1, `${token} delivered ${d.length} times`);
  return headersOf(d[0]);
}

const has = (hdrs, name) => hdrs.some(([k]) => k === name.toLowerCase());

function ctl(...args) {
  return execFileSync(SLUICECTL, ['-s', CONTROL_SOCKET, '-t', '60', '--json', ...args], { encoding: 'utf8', timeout: 20000 });
}

function stageState(name) {
  const out = ctl('stages');
  let j;
  try { j = JSON.parse(out); } catch (e) { throw new Error('sluicectl stages: not JSON: ' + out.slice(0, 200)); }
  const st = (j.stages || []).find((s) => s.name === name);
  assert(st, `no stage ${name} in the control socket's answer`);
  return st.enabled;
}

// the `enabled` value in the conf.d section of the stage (none: yes)
function confEnabled(name) {
  for (const f of fs.readdirSync(CONF_DIR).filter((x) => x.endsWith('.conf')).sort()) {
    const lines = fs.readFileSync(path.join(CONF_DIR, f), 'utf8').split('\n');
    let inside = false;
    let val = null;
    let found = false;
    for (const raw of lines) {
      const l = raw.replace(/#.*/, '').trim();
      if (!l) continue;
      const [k, v] = l.split(/\s+/);
      if (k === 'stage' || k === 'engine' || k === 'manager') {
        if (inside) break;
        inside = k === 'stage' && v === name;
        found = found || inside;
        continue;
      }
      if (inside && k === 'enabled') val = v;
    }
    if (found) return { file: f, enabled: val === null ? 'yes' : val };
  }
  throw new Error(`no section 'stage ${name}' in ${CONF_DIR}`);
}

// ------------------------------------------------------------ the browser
const results = [];
let page;
let context;
let browser;
const problems = [];   // CSP violations and script errors seen by the page

async function shot(name) {
  const file = path.join(SHOTS, name + '.png');
  await page.screenshot({ path: file, fullPage: true });
  log('screenshot', file);
  return file;
}

let loggedIn = false;
async function step(name, fn) {
  const t0 = Date.now();
  if (!loggedIn && name !== 'login') {
    results.push({ name, ok: false, error: 'not run: the login failed' });
    console.log(`not ok ${results.length} - ${name}: not run (the login failed)`);
    return;
  }
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok ${results.length} - ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    results.push({ name, ok: false, error: e.message });
    console.log(`not ok ${results.length} - ${name}: ${e.message.split('\n')[0]}`);
    if (e.stack) console.log(e.stack.split('\n').slice(0, 6).join('\n'));
    try { await shot('FAIL-' + name.replace(/[^a-z0-9]+/gi, '-')); } catch (e2) { /* no page */ }
  }
}

function watch(p) {
  p.on('console', (m) => {
    const t = m.text();
    if (/Content Security Policy|Refused to (execute|apply|load)/i.test(t)) problems.push('CSP: ' + t);
  });
  p.on('pageerror', (e) => problems.push('script error: ' + e.message));
  p.on('dialog', (d) => d.accept());
}

async function openContext() {
  context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1400, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(20000);
  watch(page);
}

async function login(user, pass, shotName) {
  await page.goto(URL_ + '/', { waitUntil: 'domcontentloaded' });
  await page.getByLabel('User name').waitFor();
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password', { exact: true }).fill(pass);
  if (shotName) await shot(shotName);
  await page.getByRole('button', { name: 'Log in' }).click();
  // argon2id under ASan on a busy 2-core machine: allow for it
  await page.locator('#who-user').waitFor({ timeout: 60000 });
  const shown = await page.locator('#who-user').textContent();
  assert(shown === user, `logged in as '${shown}', want '${user}'`);
}

async function go(hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
}

async function main() {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  log('Chromium', browser.version(), 'against', URL_);
  await openContext();

  await step('login', async () => {
    // a wrong password is refused on the page
    await page.goto(URL_ + '/', { waitUntil: 'domcontentloaded' });
    await page.getByLabel('User name').fill(USER);
    await page.getByLabel('Password', { exact: true }).fill(PASS + '-wrong');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: /wrong user name or password/i }).waitFor({ timeout: 60000 });
    await login(USER, PASS, '01-login');
    await page.getByText('administrator', { exact: true }).waitFor();
    loggedIn = true;
  });

  await step('dashboard', async () => {
    await go('#/dashboard');
    const upd = page.locator('#dash-updated');
    await page.locator('#dash-updated[data-refreshes="1"]').waitFor();
    for (const t of ['Messages per minute (last hour)', 'Messages per hour (last 24 hours)', 'Verdict mix', 'Top symbols', 'Stage latency']) {
      await page.getByRole('heading', { name: t }).waitFor();
    }
    const bars = await page.locator('svg.chart').count();
    assert(bars >= 3, `${bars} SVG charts, want 3 or more`);
    await shot('02-dashboard');
    // live: a second load within ~10 s, in the same document
    await page.evaluate(() => { window.__sluiceNoReload = 1; });
    await page.locator('#dash-updated[data-refreshes="2"]').waitFor({ timeout: 25000 });
    assert(await page.evaluate(() => window.__sluiceNoReload === 1), 'the page was reloaded');
    log('dashboard', await upd.textContent());
  });

  await step('status', async () => {
    await go('#/status');
    await page.locator('#status-engine dl').waitFor();
    const eng = await page.locator('#status-engine h2 .badge').textContent();
    const db = await page.locator('#status-database h2 .badge').textContent();
    assert(eng === 'ok', `engine health '${eng}'`);
    assert(db === 'ok', `database health '${db}'`);
    const bl = await page.locator('#status-blocklistd h2 .badge').textContent();
    assert(bl === 'ok', `blocklist daemon health '${bl}'`);
    const workers = await page.locator('#status-workers tbody tr').count();
    assert(workers >= 1, 'no worker listed');
    await shot('03-status');
  });

  await step(`chain: disable ${STAGE}, its mark disappears; enable, it is back`, async () => {
    const before = await sendAndFetch('before');
    assert(has(before, 'X-Sluice-Status'), 'mail did not go through sluiced (no X-Sluice-Status)');
    assert(has(before, MARK), `${MARK} missing while ${STAGE} is enabled`);
    await go('#/chain');
    await page.locator('#chain-table').waitFor();
    await shot('04-chain');
    await page.getByRole('button', { name: `Disable stage ${STAGE}`, exact: true }).click();
    await page.locator('#chain-result .notice-ok').waitFor({ timeout: 30000 });
    const msg = await page.locator('#chain-result').textContent();
    assert(/disabled/.test(msg) && /generation \d+/.test(msg), `result shown: ${msg}`);
    await page.getByRole('button', { name: `Enable stage ${STAGE}`, exact: true }).waitFor();
    await page.locator(`tr[data-stage="${STAGE}"] .badge-off`).waitFor();
    await shot('05-chain-disabled');
    const c = confEnabled(STAGE);
    assert(c.enabled === 'no', `conf.d/${c.file}: enabled ${c.enabled}, want no`);
    assert(stageState(STAGE) === false, 'the control socket still says enabled');
    const off = await sendAndFetch('disabled');
    assert(has(off, 'X-Sluice-Status'), 'mail did not go through sluiced (no X-Sluice-Status)');
    assert(!has(off, MARK), `${MARK} still added with ${STAGE} disabled`);
    log(`${STAGE} disabled: ${MARK} gone (conf.d/${c.file})`);
    await page.getByRole('button', { name: `Enable stage ${STAGE}`, exact: true }).click();
    await page.locator('#chain-result .notice-ok').filter({ hasText: 'enabled' }).waitFor({ timeout: 30000 });
    await page.locator(`tr[data-stage="${STAGE}"] .badge-ok`).waitFor();
    assert(confEnabled(STAGE).enabled === 'yes', 'conf.d not back to enabled yes');
    assert(stageState(STAGE) === true, 'the control socket still says disabled');
    const on = await sendAndFetch('enabled');
    assert(has(on, MARK), `${MARK} not back after enabling ${STAGE}`);
    await shot('06-chain-enabled');
  });

  await step('chain: move a stage down and back up', async () => {
    const pos = (name) => {
      const j = JSON.parse(ctl('stages'));
      return (j.stages || []).findIndex((x) => x.name === name) + 1;
    };
    const p0 = pos('verdict');
    assert(p0 > 1, 'stage verdict not in the chain');
    await go('#/chain');
    await page.locator('#chain-table').waitFor();
    await page.getByRole('button', { name: 'Move verdict down', exact: true }).click();
    await page.locator('#chain-result .notice-ok', { hasText: `moved to position ${p0 + 1}` }).waitFor({ timeout: 30000 });
    assert(pos('verdict') === p0 + 1, `control socket: verdict at ${pos('verdict')}, want ${p0 + 1}`);
    await page.locator('#chain-table tbody tr').nth(p0).filter({ hasText: 'verdict' }).waitFor();
    await shot('06b-chain-moved');
    await page.getByRole('button', { name: 'Move verdict up', exact: true }).click();
    await page.locator('#chain-result .notice-ok', { hasText: `moved to position ${p0}` }).waitFor({ timeout: 30000 });
    assert(pos('verdict') === p0, `control socket: verdict at ${pos('verdict')} after moving back, want ${p0}`);
  });

  await step('quarantine: search, view as text, release, delivered', async () => {
    const token = `bt-quar-${RUN}`;
    const subject = `Cheap <b>pills</b> ${token}`;
    const body = 'Hello <img src="http://127.0.0.1:9/x.png"> <script>window.__pwned=1</script>\nbuy now';
    await smtpSend({
      from: 'sender@sender.test', to: `${token}@test.example`,
      data: message({ token, subject, extra: ['X-Sluice-Test: score=40'], body }),
    });
    await go('#/quarantine');
    await page.getByLabel('Subject').fill(token);
    let found = false;
    for (let i = 0; i < 40 && !found; i++) {
      await page.getByRole('button', { name: 'Search', exact: true }).click();
      await page.locator('#quarantine-table').waitFor();
      found = (await page.locator('#quarantine-table tbody a.subject-link').count()) === 1;
      if (!found) await sleep(500);
    }
    assert(found, `the message was not found in the quarantine (searched subject ${token})`);
    assert(delivered(token).length === 0, 'quarantined message was delivered');
    await shot('07-quarantine');
    await page.locator('#quarantine-table tbody a.subject-link').click();
    await page.locator('#message-text').waitFor();
    const subj = await page.locator('.msg-subject').textContent();
    assert(subj.includes('<b>pills</b>'), `subject shown as '${subj}'`);
    assert(await page.locator('.msg-subject b').count() === 0, 'the subject was rendered as HTML');
    const text = await page.locator('#message-text').textContent();
    assert(text.includes('<script>') && text.includes('buy now'), `text shown: ${text.slice(0, 200)}`);
    assert(await page.locator('main img').count() === 0, 'an image of the message was rendered');
    assert(await page.evaluate(() => window.__pwned === undefined), 'script of the message ran');
    assert(await page.locator('#message-headers tbody tr').count() > 3, 'headers not shown');
    await shot('08-quarantine-message');
    await page.getByRole('button', { name: 'Release', exact: true }).click();
    await page.locator('#message-result .notice-ok').waitFor({ timeout: 30000 });
    await page.locator('dd .badge', { hasText: 'released' }).waitFor();
    const d = await waitDelivered(token, 60);
    await sleep(1000);
    assert(delivered(token).length === 1, `released message delivered ${delivered(token).length} times`);
    assert(d[0].includes('buy now'), 'released message body differs');
    await page.locator('.msg-actions').waitFor();
    await shot('09-quarantine-released');
    log('released message delivered to', MAILDIR);
  });

  await step('quarantine: bulk delete of the selected messages', async () => {
    const tag = `bt-bulk-${RUN}`;
    for (const k of [1, 2]) {
      const token = `${tag}-${k}`;
      await smtpSend({
        from: 'sender@sender.test', to: `${token}@test.example`,
        data: message({ token, subject: `bulk ${token}`, extra: ['X-Sluice-Test: score=40'] }),
      });
    }
    await go('#/quarantine');
    await page.getByLabel('Subject').fill(tag);
    let rows = 0;
    for (let i = 0; i < 40 && rows !== 2; i++) {
      await page.getByRole('button', { name: 'Search', exact: true }).click();
      await page.locator('#quarantine-table').waitFor();
      rows = await page.locator('#quarantine-table tbody a.subject-link').count();
      if (rows !== 2) await sleep(500);
    }
    assert(rows === 2, `${rows} of the 2 messages found in the quarantine`);
    await page.getByLabel('Select all on this page').check();
    await page.getByRole('button', { name: 'Delete selected', exact: true }).click();
    const res = page.locator('#quarantine-result .notice-ok');
    await res.waitFor({ timeout: 30000 });
    const txt = await res.textContent();
    assert(/^2 of 2 deleted/.test(txt), `bulk result: ${txt}`);
    await page.locator('#quarantine-table tbody a.subject-link').first().waitFor({ state: 'detached' });
    assert(delivered(`${tag}-1`).length === 0, 'a deleted message was delivered');
  });

  await step('lists: add and remove an entry', async () => {
    await go('#/lists');
    await page.getByLabel('Value', { exact: true }).waitFor();
    const value = `spammer-${RUN}.invalid`;
    await page.getByLabel('Kind', { exact: true }).selectOption('block');
    await page.getByLabel('Level', { exact: true }).selectOption('site');
    await page.getByLabel('Value', { exact: true }).fill(value);
    await page.getByLabel('Comment', { exact: true }).fill('browser test');
    await page.getByRole('button', { name: 'Add entry' }).click();
    await page.locator('#lists-result .notice-ok').waitFor();
    await page.locator('#lists-table td', { hasText: value }).waitFor();
    await shot('10-lists');
    await page.getByRole('button', { name: `Remove block entry ${value}` }).click();
    await page.locator('#lists-result .notice-ok', { hasText: 'Removed' }).waitFor();
    await page.locator('#lists-table td', { hasText: value }).waitFor({ state: 'detached' });
  });

  await step('policy: a valid script is saved as a new version and applied', async () => {
    await go('#/policy');
    const info = page.locator('#policy-version[data-versions]');
    await info.waitFor();
    const before = Number(await info.getAttribute('data-versions'));
    await shot('11-policy');
    const ta = page.getByLabel('Policy script');
    const script = (await ta.inputValue()).replace(/\s*$/, '\n') + '# saved by the browser test\n';
    await ta.fill(script);
    await page.getByRole('button', { name: 'Save and apply' }).click();
    await page.locator('#policy-result .notice-ok').waitFor({ timeout: 30000 });
    const msg = await page.locator('#policy-result').textContent();
    const m = msg.match(/Saved as version (\d+) and applied \(generation (\d+)\)/);
    assert(m, `result shown: ${msg}`);
    await page.locator(`#policy-version[data-versions="${before + 1}"]`).waitFor();
    await page.getByRole('link', { name: `View version ${m[1]}` }).click();
    await page.locator('#policy-version-script').waitFor();
    assert((await page.locator('#policy-version-script').textContent()) === script, 'saved version differs');
    await shot('12-policy-version');
    log(`policy saved as version ${m[1]}, generation ${m[2]}`);
  });

  await step('policy: a syntax error is refused with line and column', async () => {
    await go('#/policy');
    const info = page.locator('#policy-version[data-versions]');
    await info.waitFor();
    const before = await info.getAttribute('data-versions');
    const script = 'require ["sluice"];\n# a broken test on line 3\nif frobnicate "x" {\n    keep;\n}\n';
    await page.getByLabel('Policy script').fill(script);
    const respP = page.waitForResponse((r) => r.url().endsWith('/api/policy') && r.request().method() === 'POST');
    await page.getByRole('button', { name: 'Save and apply' }).click();
    const resp = await respP;
    assert(resp.status() === 400, `POST /api/policy answered ${resp.status()}, want 400`);
    const j = await resp.json();
    assert(Number(j.line) === 3, `error line ${j.line}, want 3 (${j.error})`);
    const alert = page.locator('#policy-result [role=alert]');
    await alert.waitFor();
    const shown = await alert.textContent();
    assert(shown.includes(`line ${j.line}, column ${j.column}`), `shown: ${shown}`);
    await shot('13-policy-error');
    // nothing saved: the same number of versions after a fresh load
    await go('#/status');
    await go('#/policy');
    await page.locator('#policy-version[data-versions]').waitFor();
    const after = await page.locator('#policy-version').getAttribute('data-versions');
    assert(before === after, `versions ${before} before, ${after} after a refused save`);
    log(`policy refused at line ${j.line}, column ${j.column}: ${j.error}; versions ${after}`);
  });

  await step('dashboard: the mail sent shows in the charts', async () => {
    await go('#/dashboard');
    let n = 0;
    for (let i = 0; i < 45 && n < 3; i++) {
      await page.locator('#stat-messages .stat-value').waitFor();
      n = Number((await page.locator('#stat-messages .stat-value').textContent()).replace(/,/g, '')) || 0;
      if (n < 3) await sleep(1000);
    }
    assert(n >= 3, `${n} messages in the last hour shown, want at least 3`);
    assert(await page.locator('svg.chart rect.c-messages').count() > 0, 'no bar in the charts');
    await shot('14-dashboard-after-mail');
  });

  if (AUDIT_USER) {
    await step('auditor: read-only pages', async () => {
      await context.close();
      await openContext();
      await login(AUDIT_USER, AUDIT_PASS, null);
      await page.getByText('auditor (read-only)', { exact: true }).waitFor();
      await go('#/chain');
      await page.locator('#chain-table').waitFor();
      assert(await page.getByRole('button', { name: /^(Disable|Enable) stage/ }).count() === 0, 'auditor sees stage buttons');
      await shot('15-auditor-chain');
      await go('#/policy');
      await page.locator('#policy-version[data-versions]').waitFor();
      assert(await page.locator('#policy-script').evaluate((e) => e.readOnly), 'policy editable for an auditor');
      assert(await page.getByRole('button', { name: 'Save and apply' }).count() === 0, 'auditor sees Save');
      // and the server refuses a change anyway (403)
      const st = await page.evaluate(async () => (await fetch('/api/stages/receive/disable', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })).status);
      assert(st === 403, `auditor's POST answered ${st}, want 403`);
      await go('#/quarantine');
      await page.locator('#quarantine-table').waitFor();
      await page.getByLabel('Status').selectOption('any');
      await page.getByRole('button', { name: 'Search', exact: true }).click();
      await page.locator('#quarantine-table .badge', { hasText: 'released' }).first().waitFor();
      assert(await page.getByRole('button', { name: 'Release selected', exact: true }).count() === 0, 'auditor sees bulk release');
      assert(await page.locator('#quarantine-table input[type=checkbox]').count() === 0, 'auditor sees checkboxes');
      await shot('16-auditor-quarantine');
    });
  }

  await step('logout', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('User name').waitFor();
    const st = await page.evaluate(async () => (await fetch('/api/session')).status);
    assert(st === 401, `/api/session after logout: ${st}`);
  });

  await step('no CSP violation and no script error', async () => {
    assert(problems.length === 0, problems.join('\n'));
  });

  await browser.close();
}

try {
  await main();
} catch (e) {
  results.push({ name: 'browser', ok: false, error: e.message });
  console.log('not ok - browser: ' + e.message);
  if (browser) await browser.close().catch(() => {});
}
const failed = results.filter((r) => !r.ok);
for (const f of failed) console.log(`FAILED: ${f.name}: ${f.error}`);
console.log(`screenshots in ${SHOTS}`);
console.log(`${results.length - failed.length} passed, ${failed.length} failed`);
process.exit(failed.length ? 1 : 0);
