// The role pages in a real browser: approvals, an order's page, the
// authoriser desk, the ISP page, a platform's orders and the audit log.
// Called by run.mjs with its helpers; crates/tapis/tests/browser.rs has
// prepared an open escalation (TAPIS_ESCALATION), one-time links for the
// people (TAPIS_ACCOUNTS) and the authoriser's private key
// (TAPIS_AUTHORISER_KEY, used only here, as the authoriser would on their
// own computer).

import { execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import { morePages } from './more.mjs';
import { flagPages } from './flags.mjs';

const PASSWORD = 'role pages passphrase 2026';

/// A person sets their password from the one-time link.
async function claim(h, path) {
  const page = await h.newPage('en');
  await page.goto(h.BASE + path);
  await page.locator('#password').fill(PASSWORD);
  await page.locator('#password2').fill(PASSWORD);
  await Promise.all([page.waitForNavigation(), page.locator('form.stack button[type=submit]').click()]);
  h.check(new URL(page.url()).pathname === '/signin', `the one-time link ${path} leads to sign-in: ${page.url()}`);
  await page.context().close();
}

/// A signed-in page for `login` in `lang`; checks where the role lands.
async function as(h, login, lang, home) {
  const page = await h.newPage(lang);
  await h.signIn(page, { login, password: PASSWORD });
  if (home) h.check(new URL(page.url()).pathname === home, `${login} lands on ${home}, not ${page.url()}`);
  return page;
}

/// Submit a form the page does not offer (a person trying anyway), as a
/// browser would: a real navigation, so the answer can be audited.
async function forcePost(page, action, fields) {
  const [r] = await Promise.all([
    page.waitForNavigation(),
    page.evaluate(({ action, fields }) => {
      const f = document.createElement('form');
      f.method = 'post';
      f.action = action;
      for (const [k, v] of Object.entries(fields)) {
        const i = document.createElement('input');
        i.type = 'hidden'; i.name = k; i.value = v;
        f.appendChild(i);
      }
      document.body.appendChild(f);
      f.submit();
    }, { action, fields }),
  ]);
  return r;
}

async function switchRole(page, role) {
  await page.locator('#role-switch').selectOption(role);
  await Promise.all([page.waitForNavigation(), page.locator('form[action="/role"] button').click()]);
}

export async function rolePages(h) {
  const { BASE, check, audit, visit } = h;
  const ESCALATION = h.env('TAPIS_ESCALATION');
  const accounts = JSON.parse(h.env('TAPIS_ACCOUNTS'));
  const KEY = h.env('TAPIS_AUTHORISER_KEY');
  for (const path of Object.values(accounts)) await claim(h, path);

  // ---- the officer drafts an order from the escalation
  const siti = await h.newPage('en');
  await h.signIn(siti, h.OFFICER);
  check(await siti.locator('header nav a[href="/approvals"]').count() === 1, 'an officer has a link to approvals');
  await visit(siti, '/approvals', 'approvals', 'en');
  check(await siti.locator(`a[href="/escalations/${ESCALATION}"]`).count() === 1, 'approvals list the open escalation');
  await visit(siti, `/escalations/${ESCALATION}`, 'escalation', 'en');
  check(await siti.locator('form[action$="/decision"]').count() === 0, 'an officer is not offered the escalation decision');
  const draftForm = siti.locator('form[action$="/draft-order"]');
  check(await draftForm.count() === 1, 'an officer may draft an order from the escalation');
  const [drafted] = await Promise.all([siti.waitForNavigation(), draftForm.locator('button[type=submit]').click()]);
  const match = /\/orders\/([0-9a-f-]{36})$/.exec(siti.url());
  check(drafted.status() === 200 && match, `drafting leads to the order's page: ${siti.url()} ${drafted.status()}`);
  if (!match) return;
  const ORDER = match[1];
  await audit(siti, 'order-draft', 'en', drafted);
  const draftText = await siti.textContent('main');
  check(draftText.includes('chat-c.example') && draftText.includes('propaganda-mirror.example'), 'the draft blocks the escalated names');

  // ---- the same person, now as approver, is not offered the button, and is refused
  await switchRole(siti, 'approver');
  check(new URL(siti.url()).pathname === '/approvals', `an approver's home is approvals: ${siti.url()}`);
  await siti.goto(`${BASE}/orders/${ORDER}`);
  check(await siti.locator(`form[action="/orders/${ORDER}/approve"]`).count() === 0, 'the proposer is not offered the approve button');
  check((await siti.textContent('#actions')).includes('You proposed this order'), 'the page says why');
  const csrf = await siti.locator('input[name=csrf]').first().inputValue();
  const refused = await forcePost(siti, `/orders/${ORDER}/approve`, { csrf });
  check(refused.status() === 403, `the proposer's approval is refused: ${refused.status()}`);
  const refusal = await siti.locator('main p.error[role=alert]').textContent().catch(() => '');
  check(refusal.includes('Four eyes'), `the refusal is on the page: ${refusal}`);
  await audit(siti, 'order-four-eyes', 'en', refused);
  await switchRole(siti, 'officer');
  await siti.context().close();

  // ---- a second approver reads everything, then approves
  const budi = await as(h, 'budi', 'en', '/approvals');
  check(await budi.locator(`a[href="/orders/${ORDER}"]`).count() >= 1, 'the draft waits on the approvals page');
  await visit(budi, `/orders/${ORDER}`, 'order', 'en');
  const order = await budi.evaluate((id) => {
    const button = document.querySelector(`form[action="/orders/${id}/approve"] button`);
    const before = (sel) => {
      const el = document.querySelector(sel);
      return !!(el && button && (el.compareDocumentPosition(button) & Node.DOCUMENT_POSITION_FOLLOWING));
    };
    return {
      button: !!button,
      names: before('#names'), radius: before('#blast-radius'), due: before('#due-process'),
      responses: before('#responses'), authorisation: before('#authorisation'),
      radiusText: document.querySelector('#blast-radius')?.textContent || '',
      dueText: document.querySelector('#due-process')?.textContent || '',
      authText: document.querySelector('#authorisation')?.textContent || '',
    };
  }, ORDER);
  check(order.button, 'a second approver is offered the approve button');
  check(order.names && order.radius && order.due && order.responses && order.authorisation,
    `names, blast radius, due process, responses and authoriser status come before the approve button: ${JSON.stringify(order)}`);
  check(order.radiusText.includes('chat-c.example') && order.radiusText.includes('Chat C'), 'the blast radius names the platform touched');
  check(order.dueText.includes('needs an independent authorisation'), 'due process says an authorisation is needed');
  check(order.authText.includes('not given yet'), "the authoriser's status is shown");
  const [approved] = await Promise.all([budi.waitForNavigation(), budi.locator(`form[action="/orders/${ORDER}/approve"] button`).click()]);
  check(approved.status() === 200 && new URL(budi.url()).pathname === `/orders/${ORDER}`, `the approval is recorded: ${budi.url()} ${approved.status()}`);
  check((await budi.textContent('h1')).includes('scheduled'), 'the approved order is scheduled (it takes effect tomorrow)');
  check(/budi/i.test(await budi.textContent('main')), 'the page names the approver');
  await audit(budi, 'order-approved', 'en', approved);
  await visit(budi, '/orders?state=scheduled&sort=effective&dir=asc', 'orders', 'en');
  check(await budi.locator(`tbody a[href="/orders/${ORDER}"]`).count() === 1, 'the order list, filtered and sorted by URL, shows it');
  check(await budi.locator('th[aria-sort=ascending] a[href*="sort=effective"]').count() === 1, 'the sorted column says so');
  // the approver also decides the escalation itself, with a note
  await budi.goto(`${BASE}/escalations/${ESCALATION}`);
  const decide = budi.locator('form[action$="/decision"]');
  check(await decide.count() === 1, 'an approver is offered the escalation decision');
  await decide.locator('#esc-decision').selectOption('propose_order');
  await decide.locator('#esc-note').fill('Undeliverable for an hour; the order above answers it.');
  const [decidedEsc] = await Promise.all([budi.waitForNavigation(), decide.locator('button[type=submit]').click()]);
  check(decidedEsc.status() === 200 && new URL(budi.url()).pathname === '/approvals', `the escalation decision is recorded: ${budi.url()}`);
  check(await budi.locator(`a[href="/escalations/${ESCALATION}"]`).count() === 0, 'a decided escalation no longer waits');
  const bad = await budi.goto(`${BASE}/orders?sort=nonsense`);
  check(bad.status() === 400, `an unknown sort column is a 400 page: ${bad.status()}`);
  await budi.context().close();

  // ---- the authoriser signs offline what the desk shows
  const hakim = await as(h, 'hakim', 'en', '/authorise');
  await audit(hakim, 'authorise', 'en', null);
  check(await hakim.locator(`tbody a[href="/orders/${ORDER}"]`).count() === 1, 'the order waits on the authoriser desk');
  await visit(hakim, `/authorise/${ORDER}`, 'authorise-order', 'en');
  const statement = await hakim.textContent('#statement-authorise');
  let parsed = {};
  try { parsed = JSON.parse(statement); } catch { /* checked below */ }
  check(parsed.order_id === ORDER && parsed.decision === 'authorise' && parsed.type === 'tapis.authorisation.v1',
    `the desk shows the statement to sign: ${statement}`);
  const command = await hakim.textContent('#command-authorise');
  // a wrong signature first: refused, with the reason
  await hakim.locator('#auth-reasons').fill('The channel and its mirror carry terrorist propaganda.');
  await hakim.locator('#auth-signature').fill('bm90IGEgc2lnbmF0dXJl');
  const [wrong] = await Promise.all([hakim.waitForNavigation(), hakim.locator('form.stack button[type=submit]').click()]);
  check(wrong.status() === 422 && (await hakim.locator('main p.error[role=alert]').count()) === 1, `a wrong signature is refused on the page: ${wrong.status()}`);
  // the real one, made by running the desk's own command line where the key is
  const signature = execFileSync('sh', ['-c', command], { cwd: dirname(KEY) }).toString().trim();
  await hakim.locator('#auth-signature').fill(signature);
  const [signed] = await Promise.all([hakim.waitForNavigation(), hakim.locator('form.stack button[type=submit]').click()]);
  check(signed.status() === 200 && (await hakim.locator('main p.notice-box[role=status]').first().textContent()).includes('valid'),
    `the signature made with the desk's command verifies: ${signed.status()}`);
  await audit(hakim, 'authorise-verified', 'en', signed);
  await hakim.goto(`${BASE}/authorise`);
  check(await hakim.locator(`tbody a[href="/orders/${ORDER}"]`).count() === 0, 'a decided order leaves the desk');
  await hakim.goto(`${BASE}/orders/${ORDER}`);
  check((await hakim.textContent('#authorisation')).includes('Required, and given'), "the order's page shows the authorisation");
  await hakim.context().close();

  // ---- the ISP sees the order coming; once its time has come (the
  //      authorisation lets it into the zone) it is in force, and the ISP
  //      acknowledges the serial
  let eko = await as(h, 'eko', 'en', '/isp');
  await audit(eko, 'isp-coming', 'en', null);
  check(await eko.locator(`tbody a[href="/orders/${ORDER}"]`).count() === 1, 'the ISP page shows the coming order');
  check(await eko.locator('form[action="/isp/acknowledge"]').count() === 0, 'with an empty zone there is nothing to acknowledge');
  await eko.context().close();
  const adv = await fetch(`${BASE}/api/v1/admin/clock/advance`, {
    method: 'POST', headers: { authorization: `Bearer ${h.env('TAPIS_ADMIN_TOKEN')}`, 'content-type': 'application/json' }, body: JSON.stringify({ seconds: 25 * 3600 }),
  });
  check(adv.status === 200, `the clock moves a day: ${adv.status}`);
  eko = await as(h, 'eko', 'en', '/isp');
  await audit(eko, 'isp', 'en', null);
  const row = eko.locator('tbody tr', { has: eko.locator(`a[href="/orders/${ORDER}"]`) });
  check((await row.textContent().catch(() => '')).includes('in force'), 'the authorised order is in force on the ISP page');
  check((await eko.textContent('main')).includes('tsig') || (await eko.textContent('main')).includes('TSIG'), 'the ISP page shows its TSIG key');
  const [acked] = await Promise.all([eko.waitForNavigation(), eko.locator('form[action="/isp/acknowledge"] button').click()]);
  check(acked.status() === 200 && (await eko.textContent('main')).includes('current'), `the ISP acknowledges the serial: ${acked.status()}`);
  for (const path of ['/approvals', '/audit', `/authorise/${ORDER}`]) {
    const r = await eko.goto(BASE + path);
    check(r.status() === 403, `an ISP person may not open ${path}: ${r.status()}`);
  }
  await eko.context().close();

  // ---- the platform whose name the order touches answers it from its inbox
  const putri = await as(h, 'putri@chatc', 'en', '/inbox');
  await audit(putri, 'inbox-orders', 'en', null);
  check(await putri.locator(`#platform-orders a[href="/orders/${ORDER}"]`).count() === 1, "the order is in the platform's inbox");
  await visit(putri, `/orders/${ORDER}`, 'platform-order', 'en');
  await putri.locator('#response-kind').selectOption('dispute');
  await putri.locator('#response-text').fill('The channel was removed; do not block chat-c.example.');
  const [answered] = await Promise.all([putri.waitForNavigation(), putri.locator(`form[action="/orders/${ORDER}/responses"] button`).click()]);
  check(answered.status() === 200 && (await putri.textContent('#responses')).includes('do not block chat-c.example'), `the response is on the order: ${answered.status()}`);
  const list = await putri.goto(`${BASE}/orders`);
  check(new URL(putri.url()).pathname === '/inbox', `a platform's order list is its inbox: ${list.url()}`);
  await putri.context().close();

  // ---- another platform's person cannot open the order by URL
  const dewi = await h.newPage('en');
  await h.signIn(dewi, h.AGENT);
  const foreign = await dewi.goto(`${BASE}/orders/${ORDER}`);
  check(foreign.status() === 404, `another platform's person gets a 404 for the order: ${foreign.status()}`);
  await dewi.context().close();

  // ---- the auditor sees the events and the chain intact
  const rina = await as(h, 'rina', 'en', '/audit');
  await audit(rina, 'audit', 'en', null);
  check((await rina.textContent('#chain-status')).includes('intact'), 'the audit page says the chain is intact');
  await visit(rina, `/audit?subject=${ORDER}&sort=seq&dir=asc`, 'audit-order', 'en');
  const events = await rina.locator('tbody td code').allTextContents();
  for (const e of ['order.proposed', 'order.approved', 'order.authorised', 'order.platform_responded']) {
    check(events.includes(e), `the audit log of the order has ${e}: ${events.join(' ')}`);
  }
  await rina.goto(`${BASE}/audit?type=order.approved&actor=budi`);
  check(await rina.locator('tbody tr td.num').count() === 1, 'the log filters by type and actor');
  await rina.context().close();

  // ---- the admin, account, appeals and TSIG key pages, both languages
  await morePages(h);
  // ---- flags, trusted flaggers, reports and the representative page
  await flagPages(h);

  // ---- every new page in Bahasa Indonesia too
  const pages = [
    ['siti', [['/approvals', 'approvals'], [`/escalations/${ESCALATION}`, 'escalation'], [`/orders/${ORDER}`, 'order'], ['/orders', 'orders']]],
    ['hakim', [['/authorise', 'authorise'], [`/authorise/${ORDER}`, 'authorise-order']]],
    ['eko', [['/isp', 'isp']]],
    ['rina', [['/audit', 'audit'], [`/audit?subject=${ORDER}&sort=seq&dir=asc`, 'audit-order']]],
    ['putri@chatc', [['/inbox', 'inbox-orders'], [`/orders/${ORDER}`, 'platform-order']]],
  ];
  for (const [login, visits] of pages) {
    const page = login === 'siti' ? await h.newPage('id') : await as(h, login, 'id');
    if (login === 'siti') await h.signIn(page, h.OFFICER);
    for (const [path, name] of visits) await visit(page, path, name, 'id');
    if (login === 'rina') check((await page.textContent('#chain-status')).includes('utuh'), 'the audit page (id) says the chain is intact');
    if (login === 'siti') {
      await page.goto(`${BASE}/orders/${ORDER}`);
      check((await page.textContent('#blast-radius')).includes('Jangkauan dampak'), 'the order page is in Bahasa Indonesia');
    }
    await page.context().close();
  }
}
