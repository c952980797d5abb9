// Flags, trusted flaggers and representatives in the browser, in both
// languages, each page checked by axe-core and photographed: the public
// "Report content" form and its status page (no account), a flagger
// agency's "Flag content" form and "My flags", the officer's review queue
// with entries, the admin's trusted-flagger page, the flagger's yearly
// report, the issuers' figures, and a platform's representative page.
// Called by approvals.mjs after the people have claimed their accounts
// (same password), with run.mjs's helpers; crates/tapis/tests/browser.rs
// made the flagger party (TAPIS_FLAGGER), its flag on Chat C's channel
// (TAPIS_FLAG_REFERENCE) and its trusted-flagger grant with Chat C.

const PASSWORD = 'role pages passphrase 2026';

async function as(h, login, lang) {
  const page = await h.newPage(lang);
  await h.signIn(page, { login, password: PASSWORD });
  return page;
}

/// Press the form's submit button with the keyboard; the answer.
async function submit(page, form) {
  await form.locator('button[type=submit]').focus();
  const [r] = await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  return r;
}

export async function flagPages(h) {
  const { BASE, check, visit, audit } = h;
  const FLAGGER = h.env('TAPIS_FLAGGER');
  const FLAG_REFERENCE = h.env('TAPIS_FLAG_REFERENCE');
  const T = {
    en: { report: 'Report content', status: 'Your report', flag: 'Flag content', mine: 'My flags', queue: 'Flag queue',
      trusted: 'Trusted flaggers', flaggerReport: 'report for', issuers: "Issuers' accuracy", legal: 'Legal representative' },
    id: { report: 'Laporkan konten', status: 'Laporan Anda', flag: 'Tandai konten', mine: 'Laporan saya', queue: 'Antrean laporan',
      trusted: 'Pelapor tepercaya', flaggerReport: 'laporan tahun', issuers: 'Akurasi penerbit', legal: 'Perwakilan hukum' },
  };
  const h1 = async (page) => (await page.textContent('h1')).trim();

  // ---- the public report form and its status page (no account)
  for (const lang of ['en', 'id']) {
    const page = await h.newPage(lang);
    await visit(page, '/report', 'report', lang);
    check((await h1(page)).includes(T[lang].report), `the report form (${lang}) is in its language: ${await h1(page)}`);
    const form = page.locator('form[action="/report"]');
    await form.locator('#target_kind_0').selectOption('url');
    await form.locator('#target_value_0').fill(`https://scam-${lang}.example/lottery`);
    await form.locator('#category').selectOption('fraud');
    await form.locator('#reasons').fill(`a fake lottery asking for bank details (${lang})`);
    const r = await submit(page, form);
    const path = new URL(page.url()).pathname;
    check(r.status() === 200 && /^\/report\/[A-Z0-9-]+$/.test(path), `the report (${lang}) leads to its status page: ${r.status()} ${page.url()}`);
    await audit(page, 'report-status', lang, r);
    const reference = (await page.locator('dl.facts dd code').first().textContent()).trim();
    check(path === `/report/${reference}`, `the status page (${lang}) shows its reference ${reference}`);
    check((await page.locator('[role=status]').textContent()).includes(reference), `the status page (${lang}) thanks with the reference`);
    check((await page.textContent('main')).includes(`scam-${lang}.example`), `the status page (${lang}) lists the target`);
    // the reference alone opens it again, from the lookup form
    await page.goto(`${BASE}/report`);
    await page.locator('#reference').fill(reference.toLowerCase());
    const again = await submit(page, page.locator('form[action="/report/status"]'));
    check(again.status() === 200 && (await h1(page)).includes(T[lang].status), `the reference (${lang}) finds the report: ${page.url()}`);
    await page.context().close();
  }

  // ---- a flagger agency: its form, its flags, its yearly report
  for (const lang of ['en', 'id']) {
    const wati = await as(h, 'wati', lang);
    check(new URL(wati.url()).pathname === '/flags', `a flagger (${lang}) lands on its flags: ${wati.url()}`);
    await visit(wati, '/flags/new', 'flag-new', lang);
    check((await h1(wati)).includes(T[lang].flag), `the flag form (${lang}) is in its language`);
    const form = wati.locator('form[action="/flags/new"]');
    await form.locator('#target_kind_0').selectOption('platform_channel');
    await form.locator('#target_value_0').fill(`@jihad_${lang}`);
    await form.locator('#category').selectOption('terrorism');
    await form.locator('#reasons').fill(`execution videos posted daily (${lang})`);
    const r = await submit(wati, form);
    check(new URL(wati.url()).pathname === '/flags', `a flag (${lang}) leads to the flagger's flags: ${wati.url()}`);
    await audit(wati, 'flags-sent', lang, r);
    await visit(wati, '/flags', 'flags', lang);
    check((await h1(wati)).includes(T[lang].mine), `my flags (${lang}) are in their language`);
    const main = await wati.textContent('main');
    check(main.includes(FLAG_REFERENCE), `my flags (${lang}) list the API's flag ${FLAG_REFERENCE}`);
    check(main.includes(`@jihad_${lang}`), `my flags (${lang}) list the flag just sent`);
    check(!main.includes('scam-en.example'), `my flags (${lang}) show nobody else's`);
    await visit(wati, `/flaggers/${FLAGGER}/report`, 'flagger-report', lang);
    const title = await h1(wati);
    check(title.includes('Badan Siber') && title.includes(T[lang].flaggerReport), `the flagger's report (${lang}) names it: ${title}`);
    check(await wati.locator('main table th').count() >= 10, `the flagger's report (${lang}) has its figures`);
    // another flagger's report is not its to read
    const other = await wati.goto(`${BASE}/flaggers/00000000-0000-0000-0000-000000000000/report`);
    check(other.status() === 404, `another flagger's report (${lang}) is a 404: ${other.status()}`);
    await wati.context().close();
  }

  // ---- the officer's queue, with entries; the issuers' figures
  for (const lang of ['en', 'id']) {
    const page = await h.newPage(lang);
    await h.signIn(page, h.OFFICER);
    await visit(page, '/flags/queue', 'flag-queue', lang);
    check((await h1(page)).includes(T[lang].queue), `the queue (${lang}) is in its language`);
    const entries = page.locator('section.card');
    check(await entries.count() >= 3, `the queue (${lang}) has the flags as entries: ${await entries.count()}`);
    const main = await page.textContent('main');
    check(main.includes('chat-c.example/channel/recruiting') && main.includes('Badan Siber'), `the queue (${lang}) shows the agency's flag and names it`);
    check(await page.locator('form[action="/flags/queue/accept"]').count() >= 3, `the officer (${lang}) may accept each entry`);
    await visit(page, '/issuers/report', 'issuers-report', lang);
    check((await h1(page)).includes(T[lang].issuers), `the issuers' figures (${lang}) are in their language`);
    check(await page.locator('main tbody tr').count() >= 1, `the issuers' figures (${lang}) have a row`);
    await page.context().close();
  }

  // ---- the admin's trusted flaggers
  for (const lang of ['en', 'id']) {
    const ayu = await as(h, 'ayu', lang);
    await visit(ayu, '/trusted-flaggers', 'trusted-flaggers', lang);
    check((await h1(ayu)).includes(T[lang].trusted), `the trusted flaggers (${lang}) are in their language`);
    const row = ayu.locator('main tbody tr', { hasText: 'Badan Siber' });
    check(await row.count() === 1 && (await row.textContent()).includes('Chat C'), `the grant to Badan Siber with Chat C (${lang}) is listed`);
    check(await ayu.locator('form[action="/trusted-flaggers"]').count() === 1, `the admin (${lang}) may grant status`);
    await ayu.context().close();
  }

  // ---- a platform's representative and contacts
  for (const lang of ['en', 'id']) {
    const putri = await as(h, 'putri@chatc', lang);
    await visit(putri, '/representative', 'representative', lang);
    check((await putri.textContent('#legal-title')).includes(T[lang].legal), `the representative page (${lang}) is in its language`);
    for (const role of ['legal', 'technical', 'administrative']) {
      check(await putri.locator(`form[action="/representative/${role}"]`).count() === 1, `the platform (${lang}) may set its ${role} contact`);
    }
    await putri.context().close();
  }
}
