// The web interface in a real browser: Debian's chromium, headless, driven
// by playwright-core. Started by crates/tapis/tests/browser.rs, which
// starts `tapis serve` on a simulated clock, prepares the parties, an
// officer's one-time link and a platform's invitation, and passes them in
// the environment. Every page is checked by axe-core (no serious or
// critical violation) and photographed in both languages.
//
// Exit status 0 when every check passed; otherwise 1, after printing each
// failure (the Rust test shows this output).

import { readFileSync, mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { rolePages } from './approvals.mjs';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run through cargo nextest: crates/tapis/tests/browser.rs)`);
  return v;
};
const BASE = env('TAPIS_BASE');
const ADMIN = env('TAPIS_ADMIN_TOKEN');
const RESET = env('TAPIS_RESET_PATH');
const INVITE = env('TAPIS_INVITE_CODE');
const OTHER_NOTICE = env('TAPIS_OTHER_NOTICE');
const SCREENS = env('TAPIS_SCREENS');
const CHROMIUM = process.env.TAPIS_CHROMIUM || '/usr/bin/chromium';
mkdirSync(SCREENS, { recursive: true });

const failures = [];
let checks = 0;
function check(ok, what) {
  checks++;
  if (!ok) {
    failures.push(what);
    console.log(`FAIL ${what}`);
  }
}

const OFFICER = { login: 'siti', password: 'officer passphrase 2026' };
const AGENT = { login: 'dewi@chata', password: 'platform passphrase 2026' };
const EVIDENCE = Buffer.from(Array.from({ length: 20000 }, (_, i) => (i * 2654435761 >>> 13) & 0xff));
const EVIDENCE_SHA = createHash('sha256').update(EVIDENCE).digest('hex');
const HOSTILE = '<script>window.__pwned=1</script><b id="injected">bold</b>';

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function newPage(lang, width = 1280) {
  const context = await browser.newContext({
    locale: lang === 'id' ? 'id-ID' : 'en-US',
    extraHTTPHeaders: { 'Accept-Language': lang === 'id' ? 'id-ID,id;q=0.9' : 'en-US,en;q=0.9' },
    viewport: { width, height: 900 },
  });
  const page = await context.newPage();
  page.on('dialog', (d) => { failures.push(`a dialog opened: ${d.message()}`); d.dismiss(); });
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of (4|5)\d\d/.test(m.text())) {
      console.log(`console error on ${page.url()}: ${m.text()}`);
    }
  });
  return page;
}

/// Every page: an HTML answer with lang set, the security headers, no
/// serious or critical axe violation, and a screenshot.
async function audit(page, name, lang, response) {
  const tag = `${name} (${lang})`;
  if (response) {
    const h = response.headers();
    check((h['content-type'] || '').startsWith('text/html'), `${tag}: answers HTML, not ${h['content-type']}`);
    check((h['content-security-policy'] || '').includes("default-src 'none'"), `${tag}: has the CSP header`);
    check(h['x-frame-options'] === 'DENY', `${tag}: X-Frame-Options DENY`);
    check(h['referrer-policy'] === 'no-referrer', `${tag}: Referrer-Policy`);
  }
  check(await page.getAttribute('html', 'lang') === lang, `${tag}: <html lang="${lang}">`);
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
  });
  const serious = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  check(serious.length === 0, `${tag}: axe serious/critical violations: ${JSON.stringify(serious)}`);
  await page.screenshot({ path: `${SCREENS}/${name}-${lang}.png`, fullPage: true });
}

async function visit(page, path, name, lang, status = 200) {
  const r = await page.goto(BASE + path);
  check(r.status() === status, `${name} (${lang}): ${path} answers ${status}, not ${r.status()}`);
  await audit(page, name, lang, r);
  return r;
}

async function signIn(page, who) {
  await page.goto(`${BASE}/signin`);
  await page.getByLabel(/Login|Nama pengguna/).fill(who.login);
  await page.locator('#password').fill(who.password);
  const [r] = await Promise.all([page.waitForNavigation(), page.locator('form.stack button[type=submit]').click()]);
  return r;
}

async function compose(page, lang, explanation, target) {
  const r = await page.goto(`${BASE}/notices/new`);
  await audit(page, 'notice-new', lang, r);
  await page.getByLabel(lang === 'id' ? 'Platform' : 'Platform', { exact: true }).selectOption({ label: 'Chat A' });
  await page.locator('#legal_ref').fill('Law 11/2008 art. 40(2b)');
  await page.locator('#legal_text').fill('The government prevents the dissemination of unlawful content.');
  await page.locator('#explanation').fill(explanation);
  await page.locator('#item_kind_0').selectOption('url');
  await page.locator('#item_value_0').fill(target);
  // evidence: a file hashed on upload (the page runs no script: the server
  // hashes it and keeps only the hash)
  await page.locator('details.evidence summary').first().click();
  await page.locator('#evidence_file_0').setInputFiles({ name: `shot-${lang}.png`, mimeType: 'image/png', buffer: EVIDENCE });
  await page.locator('#evidence_description_0').fill(`screenshot (${lang})`);
  await page.locator('#evidence_captured_0').fill('2026-03-02T08:30');
  // keyboard only: focus the submit button and press Enter
  await page.locator('form.stack button[type=submit]').focus();
  const [nav] = await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  return nav;
}

try {
  // ---- public pages, both languages, desktop and phone width
  for (const lang of ['en', 'id']) {
    const page = await newPage(lang);
    await visit(page, '/', 'landing', lang);
    check((await page.textContent('h1')).includes(lang === 'id' ? 'Pemberitahuan' : 'Takedown'), `landing (${lang}) is in its language`);
    await visit(page, '/transparency', 'transparency', lang);
    await visit(page, '/register', 'register', lang);
    await visit(page, '/register?kind=notices&category=nope', 'register-invalid', lang, 422);
    await visit(page, '/lookup?name=example.com', 'lookup', lang);
    await visit(page, '/lookup?name=not_a..name', 'lookup-invalid', lang);
    await visit(page, '/appeal?order=0190f5e2-8f3c-7b4e-9a1d-3c5e7f9b1d2a&name=example.com', 'appeal', lang);
    const b = await page.goto(`${BASE}/block?name=example.com`);
    await audit(page, 'block', lang, b);
    check(b.status() === 200, `block page (${lang}) answers 200 for a name not blocked`);
    await visit(page, '/no/such/page', 'not-found', lang, 404);
    await visit(page, '/signin', 'signin', lang);
    await visit(page, `/invitations/${INVITE}`, 'invitation', lang);
    await visit(page, RESET, 'reset', lang);
    await page.context().close();
    const phone = await newPage(lang, 390);
    await phone.goto(`${BASE}/`);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
    check(!overflow, `landing (${lang}) fits a phone-width screen`);
    await phone.screenshot({ path: `${SCREENS}/landing-phone-${lang}.png`, fullPage: true });
    await phone.context().close();
  }

  // ---- the API keeps answering JSON, even for a path it does not know
  {
    const r = await fetch(`${BASE}/api/v1/no-such-route`);
    check(r.status === 404 && (r.headers.get('content-type') || '').startsWith('application/json'), `an unknown API path is a JSON 404: ${r.status} ${r.headers.get('content-type')}`);
  }

  // ---- the language switch is remembered
  {
    const page = await newPage('en');
    await page.goto(`${BASE}/transparency`);
    await Promise.all([page.waitForNavigation(), page.locator('a.lang').click()]);
    check(await page.getAttribute('html', 'lang') === 'id', 'the switch turns the page to Bahasa Indonesia');
    check(new URL(page.url()).pathname === '/transparency', 'the switch comes back to the same page');
    await page.goto(`${BASE}/`);
    check(await page.getAttribute('html', 'lang') === 'id', 'the language choice is remembered by cookie');
    await page.context().close();
  }

  // ---- the officer sets a password from the one-time link, signs in, submits notices
  for (const lang of ['en', 'id']) {
    const page = await newPage(lang);
    if (lang === 'en') {
      await page.goto(BASE + RESET);
      await page.locator('#password').fill(OFFICER.password);
      await page.locator('#password2').fill(OFFICER.password);
      await Promise.all([page.waitForNavigation(), page.locator('form.stack button[type=submit]').click()]);
      check(new URL(page.url()).pathname === '/signin', 'the one-time link leads to sign-in');
      const again = await page.goto(BASE + RESET);
      check(again.status() === 404, 'a one-time link works once');
    }
    const r = await signIn(page, OFFICER);
    check(new URL(page.url()).pathname === '/dashboard', `officer (${lang}) lands on the dashboard, not ${page.url()}`);
    await audit(page, 'dashboard', lang, r);
    const nav = await compose(page, lang, `${HOSTILE} (${lang})`, `https://bad.example/${lang}/${HOSTILE}`);
    check(nav.status() === 200 && /\/notices\/[0-9a-f-]{36}$/.test(page.url()), `officer (${lang}) submitted a notice: ${page.url()} ${nav.status()}`);
    await audit(page, 'notice-detail', lang, nav);
    const shown = await page.textContent('main');
    check(shown.includes(EVIDENCE_SHA) && shown.includes(`file shot-${lang}.png, 20000 bytes`), `the notice (${lang}) carries the uploaded file's SHA-256, name and size`);
    // escaping: the hostile text shows as text, makes no element, runs nothing
    const text = await page.textContent('main');
    check(text.includes('<b id="injected">bold</b>'), `notice detail (${lang}) shows user HTML as text`);
    check(await page.locator('#injected').count() === 0, `notice detail (${lang}) made no element from user HTML`);
    check(await page.evaluate(() => window.__pwned === undefined), `no user script ran (${lang})`);
    const list = await visit(page, '/notices?state=submitted', 'notices', lang);
    check(list.status() === 200 && (await page.locator('tbody tr').count()) >= 1, `the notice list (${lang}) shows notices`);
    check(await page.locator('#f-state').inputValue() === 'submitted', `filters (${lang}) are in the URL and shown`);
    await visit(page, '/notices?state=submitted&sort=deadline&dir=asc', 'notices-sorted', lang);
    check(await page.locator('th[aria-sort=ascending] a[href*="sort=deadline"][href*="state=submitted"]').count() === 1, `the notice list (${lang}) sorts by a column link that keeps the filter`);
    await page.context().close();
  }

  // ---- CSRF: a form whose token is wrong is refused with an HTML 403
  {
    const page = await newPage('en');
    await signIn(page, OFFICER);
    // first, the idempotency key: the same form sent twice (a double
    // click) makes one notice
    await page.goto(`${BASE}/notices/new`);
    await page.locator('#legal_ref').fill('Law 11/2008 art. 40(2b)');
    await page.locator('#legal_text').fill('twice');
    await page.locator('#explanation').fill('sent twice');
    await page.locator('#item_value_0').fill('https://twice.example/');
    // (as a plain form: the composer also takes one, without files)
    const fields = await page.evaluate(() => Object.fromEntries([...new FormData(document.querySelector('form.stack'))].filter(([, v]) => typeof v === 'string')));
    const first = await page.request.post(`${BASE}/notices/new`, { form: fields, maxRedirects: 0 });
    const second = await page.request.post(`${BASE}/notices/new`, { form: fields, maxRedirects: 0 });
    check(first.status() === 303 && /^\/notices\/[0-9a-f-]{36}$/.test(first.headers().location || '')
      && first.headers().location === second.headers().location,
      `the same form twice makes one notice: ${first.status()} ${first.headers().location} / ${second.status()} ${second.headers().location}`);
    await page.goto(`${BASE}/notices/new`);
    await page.locator('#legal_ref').fill('x');
    await page.locator('#legal_text').fill('x');
    await page.locator('#explanation').fill('x');
    await page.locator('#item_value_0').fill('https://csrf.example/');
    await page.evaluate(() => { document.querySelector('form.stack input[name=csrf]').value = 'forged'; });
    const [r] = await Promise.all([page.waitForNavigation(), page.locator('form.stack button[type=submit]').click()]);
    check(r.status() === 403, `a forged CSRF token is refused with 403, not ${r.status()}`);
    await audit(page, 'csrf-refused', 'en', r);
    // and without any token, from outside (no cookie can ride along: SameSite=Strict)
    const outside = await fetch(`${BASE}/signout`, { method: 'POST', body: 'csrf=', headers: { 'content-type': 'application/x-www-form-urlencoded' }, redirect: 'manual' });
    check(outside.status === 303 || outside.status === 403, `a cross-site POST does nothing: ${outside.status}`);
    // an account with two roles switches between them
    await page.goto(`${BASE}/notices`);
    check(await page.locator('#role-switch').count() === 1, `the role switch is shown on ${page.url()}: ${(await page.textContent('header')).slice(0, 300)}`);
    await page.locator('#role-switch').selectOption('approver');
    await Promise.all([page.waitForNavigation(), page.locator('form[action="/role"] button').click()]);
    check(new URL(page.url()).pathname === '/approvals', `switching role leads to the role's home: ${page.url()}`);
    check(await page.locator('header a[href="/notices/new"]').count() === 0, 'an approver has no composer link');
    const composer = await page.goto(`${BASE}/notices/new`);
    check(composer.status() === 403, `an approver may not compose notices: ${composer.status()}`);
    await audit(page, 'forbidden', 'en', composer);
    check(await page.locator('header nav a[href="/dashboard"]').count() === 1, 'an error page keeps the signed-in navigation');
    await page.goto(`${BASE}/dashboard`);
    await page.locator('#role-switch').selectOption('officer');
    await Promise.all([page.waitForNavigation(), page.locator('form[action="/role"] button').click()]);
    await page.context().close();
  }

  // ---- invitation: the platform's person makes their own account, signs in,
  //      sees its own notices and not another platform's
  {
    const page = await newPage('id');
    await page.goto(`${BASE}/invitations/${INVITE}`);
    check((await page.textContent('main')).includes('Chat A'), 'the invitation names the party');
    await page.locator('#person').fill('<i>Dewi</i> Lestari');
    await page.locator('#login').fill(AGENT.login);
    await page.locator('#password').fill(AGENT.password);
    await page.locator('#password2').fill(AGENT.password);
    await Promise.all([page.waitForNavigation(), page.locator('form.stack button[type=submit]').click()]);
    check(page.url().includes('/signin?welcome=1'), `the invitation makes an account: ${page.url()}`);
    await audit(page, 'signin-welcome', 'id', null);
    const spent = await page.goto(`${BASE}/invitations/${INVITE}`);
    check(spent.status() === 404, 'an invitation works once');
    await signIn(page, AGENT);
    check(new URL(page.url()).pathname === '/inbox', `the platform agent lands on its inbox: ${page.url()}`);
    await page.goto(`${BASE}/notices`);
    await audit(page, 'platform-notices', 'id', null);
    check(await page.locator('#injected').count() === 0 && (await page.textContent('header')).includes('<i>dewi</i>'), 'the person name is shown as text');
    const rows = await page.locator('tbody tr a[href^="/notices/"]').count();
    check(rows >= 2, `the platform sees the officer's notices to it (${rows})`);
    const other = await page.goto(`${BASE}/notices/${OTHER_NOTICE}`);
    check(other.status() === 404, `another platform's notice is a 404 page, not ${other.status()}`);
    check((other.headers()['content-type'] || '').startsWith('text/html'), "another platform's notice: an HTML page");
    await audit(page, 'not-yours', 'id', other);
    const forbidden = await page.goto(`${BASE}/notices/new`);
    check(forbidden.status() === 403, `a platform agent may not compose notices: ${forbidden.status()}`);
    await page.context().close();
  }

  // ---- the platform inbox: the agent sees the officer's notices most
  //      pressing first, acknowledges one and decides one item, in both
  //      languages (before the lockout below locks this account)
  for (const lang of ['en', 'id']) {
    const tag = `inbox (${lang})`;
    const page = await newPage(lang);
    await signIn(page, AGENT);
    check(await page.locator('header nav a[href="/inbox"]').count() === 1, `${tag}: the platform's navigation links the inbox`);
    await visit(page, '/inbox', 'inbox', lang);
    const rows = await page.locator('tbody tr a[href^="/notices/"]').count();
    check(rows >= 1, `${tag}: lists the officer's notices to the platform (${rows})`);
    check((await page.textContent('main')).includes(lang === 'id' ? 'Sisa waktu' : 'Time remaining'), `${tag}: the page is in its language`);
    check(!(await page.textContent('main')).includes('for Chat B only') && await page.locator(`a[href="/notices/${OTHER_NOTICE}"]`).count() === 0, `${tag}: another platform's notice is not listed`);
    // acknowledge the first notice that waits for it, from its row
    const form = page.locator('tbody form[action$="/acknowledge"]').first();
    check(await form.count() === 1, `${tag}: a notice waits to be acknowledged`);
    const action = await form.getAttribute('action');
    const id = action.split('/')[2];
    await form.locator('button').focus();
    const [acked] = await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    check(acked.status() === 200 && new URL(page.url()).pathname === '/inbox', `${tag}: acknowledging comes back to the inbox: ${page.url()} ${acked.status()}`);
    check(await page.locator(`tbody form[action="/notices/${id}/acknowledge"]`).count() === 0, `${tag}: the acknowledged notice has no acknowledge button any more`);
    await Promise.all([page.waitForNavigation(), page.locator(`tbody a[href="/notices/${id}"]`).first().click()]);
    const ackedText = await page.textContent('main');
    check(ackedText.includes(lang === 'id' ? 'dikonfirmasi' : 'acknowledged'), `${tag}: the notice shows as acknowledged`);
    check(ackedText.includes('bad.example') || ackedText.includes('twice.example'), `${tag}: it is the officer's notice`);
    // a refusal without its reason: the page again, with the message
    const decision = page.locator('form[action*="/items/"]').first();
    await decision.locator('select[name=decision]').selectOption('rejected');
    const [bad] = await Promise.all([page.waitForNavigation(), decision.locator('button[type=submit]').click()]);
    check(bad.status() === 422 && (bad.headers()['content-type'] || '').startsWith('text/html'), `${tag}: a refusal without a reason is a 422 page: ${bad.status()}`);
    check(await page.locator('main p.error[role=alert]').count() === 1, `${tag}: the page says why`);
    await audit(page, 'decision-refused', lang, bad);
    // restricted, with a reason
    const again = page.locator('form[action*="/items/"]').first();
    await again.locator('select[name=decision]').selectOption('restricted');
    await again.locator('textarea[name=reason]').fill(`Restricted in Indonesia (${lang})`);
    const [decided] = await Promise.all([page.waitForNavigation(), again.locator('button[type=submit]').click()]);
    check(decided.status() === 200 && new URL(page.url()).pathname === `/notices/${id}`, `${tag}: the decision is recorded: ${page.url()} ${decided.status()}`);
    const after = await page.textContent('main');
    check(after.includes(`Restricted in Indonesia (${lang})`) && after.includes(lang === 'id' ? 'dibatasi' : 'restricted'), `${tag}: the item shows its decision and reason`);
    await audit(page, 'notice-decided', lang, decided);
    // another platform's notice stays a 404 page, for the forms too
    const csrf = await page.locator('input[name=csrf]').first().inputValue();
    const foreign = await page.request.post(`${BASE}/notices/${OTHER_NOTICE}/acknowledge`, { form: { csrf }, maxRedirects: 0 });
    check(foreign.status() === 404 && (foreign.headers()['content-type'] || '').startsWith('text/html'), `${tag}: acknowledging another platform's notice is a 404 page: ${foreign.status()}`);
    const forged = await page.request.post(`${BASE}/notices/${id}/acknowledge`, { form: { csrf: 'forged' }, maxRedirects: 0 });
    check(forged.status() === 403, `${tag}: an acknowledgement with a forged CSRF token is refused: ${forged.status()}`);
    await page.context().close();
  }

  // ---- the role pages: approvals, orders, authoriser desk, ISP, audit
  await rolePages({ BASE, env, check, newPage, audit, visit, signIn, OFFICER, AGENT });

  // ---- lockout: five wrong passwords lock the account, even for the right one
  {
    const page = await newPage('en');
    let last;
    for (let i = 1; i <= 5; i++) {
      last = await signIn(page, { login: AGENT.login, password: `wrong guess number ${i}` });
      check(last.status() === (i < 5 ? 401 : 429), `wrong password ${i} answers ${i < 5 ? 401 : 429}, not ${last.status()}`);
    }
    check((await page.textContent('main')).includes('locked'), 'the page says the account is locked');
    await audit(page, 'signin-locked', 'en', last);
    const right = await signIn(page, AGENT);
    check(right.status() === 429, `the right password is refused while locked: ${right.status()}`);
    await page.context().close();
  }

  // ---- session expiry on the (simulated) clock
  {
    const page = await newPage('en');
    await signIn(page, OFFICER);
    check(new URL(page.url()).pathname === '/dashboard', 'signed in before the expiry test');
    const adv = await fetch(`${BASE}/api/v1/admin/clock/advance`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ seconds: 31 * 60 }),
    });
    check(adv.status === 200, `the clock moves 31 minutes: ${adv.status}`);
    await page.goto(`${BASE}/dashboard`);
    check(page.url().includes('/signin') && page.url().includes('expired=1'), `an idle session ends: ${page.url()}`);
    check((await page.textContent('main')).includes('session ended'), 'the sign-in page says the session ended');
    await audit(page, 'session-expired', 'en', null);
    // sign in again and out
    await signIn(page, OFFICER);
    await Promise.all([page.waitForNavigation(), page.locator('form[action="/signout"] button').click()]);
    const after = await page.goto(`${BASE}/dashboard`);
    check(after.url().includes('/signin'), 'after sign-out the dashboard asks to sign in');
    await page.context().close();
  }
} catch (e) {
  failures.push(`the run stopped: ${e.stack || e}`);
} finally {
  await browser.close();
}

console.log(`${checks} checks, ${failures.length} failed; screenshots in ${SCREENS}`);
if (failures.length) {
  for (const f of failures) console.log(`  - ${f}`);
  process.exit(1);
}
