// The pages the main flow and the role pages do not reach, in both
// languages: the admin's page, a person's own account page, the appeals
// queue, and the ISP's TSIG key rotation (rotate: the new secret shown
// once; retire the previous key). Called by approvals.mjs's rolePages
// after the people have claimed their accounts (same password), with
// run.mjs's helpers.

const PASSWORD = 'role pages passphrase 2026';

async function as(h, login, lang) {
  const page = await h.newPage(lang);
  await h.signIn(page, { login, password: PASSWORD });
  return page;
}

export async function morePages(h) {
  const { check, visit, audit } = h;

  // ---- the admin: parties and invitations; a person's own account page
  for (const lang of ['en', 'id']) {
    const ayu = await as(h, 'ayu', lang);
    check(new URL(ayu.url()).pathname === '/dashboard', `the admin (${lang}) lands on the dashboard: ${ayu.url()}`);
    await visit(ayu, '/admin', 'admin', lang);
    check(await ayu.locator('form[action="/admin/parties"]').count() === 1, `the admin page (${lang}) offers to create a party`);
    await visit(ayu, '/account', 'account', lang);
    // the admin has no ISP page and may not rotate an ISP's key
    const isp = await ayu.goto(`${h.BASE}/isp`);
    check(isp.status() === 403, `the admin (${lang}) has no ISP page: ${isp.status()}`);
    await ayu.context().close();
  }

  // ---- the appeals queue (the authority's officer)
  for (const lang of ['en', 'id']) {
    const page = await h.newPage(lang);
    await h.signIn(page, h.OFFICER);
    await visit(page, '/appeals', 'appeals', lang);
    await visit(page, '/account', 'account-officer', lang);
    await page.context().close();
  }

  // ---- the ISP rotates its TSIG key, in both languages
  for (const lang of ['en', 'id']) {
    const eko = await as(h, 'eko', lang);
    await visit(eko, '/isp', 'isp-keys', lang);
    const before = await eko.locator('main dl.facts dd code').first().textContent();
    const rotate = eko.locator('form[action="/isp/tsig-key/rotate"]');
    check(await rotate.count() === 1, `the ISP page (${lang}) offers to rotate the TSIG key`);
    await rotate.locator('button').focus();
    const [rotated] = await Promise.all([eko.waitForNavigation(), eko.keyboard.press('Enter')]);
    check(rotated.status() === 200, `rotating (${lang}) answers the page: ${rotated.status()}`);
    check((rotated.headers()['cache-control'] || '').includes('no-store'), `the page with the new secret (${lang}) is not cached`);
    const secret = await eko.locator('code.secret').textContent().catch(() => '');
    check(/^[A-Za-z0-9+/]{43}=$/.test(secret), `the new secret (${lang}) is shown once: ${secret}`);
    await audit(eko, 'isp-rotated', lang, rotated);
    await eko.goto(`${h.BASE}/isp`);
    const main = await eko.textContent('main');
    check(!main.includes(secret), `the secret (${lang}) is not shown again`);
    check(main.includes(before.trim()), `the previous key (${lang}) is named with its end: ${before}`);
    check(await eko.locator('dd time').count() >= 1, `times on the ISP page (${lang}) are <time> elements`);
    const retire = eko.locator('form[action="/isp/tsig-key/retire"]');
    check(await retire.count() === 1, `the ISP page (${lang}) offers to retire the previous key`);
    const [retired] = await Promise.all([eko.waitForNavigation(), retire.locator('button').click()]);
    check(retired.status() === 200 && new URL(eko.url()).pathname === '/isp', `retiring (${lang}) comes back to the ISP page: ${eko.url()}`);
    check(await eko.locator('form[action="/isp/tsig-key/retire"]').count() === 0, `after retiring (${lang}) nothing is left to retire`);
    await audit(eko, 'isp-retired', lang, retired);
    await eko.context().close();
  }
}
