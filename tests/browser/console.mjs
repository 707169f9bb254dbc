// console.mjs: the console in a real browser (Debian's chromium, driven by
// playwright-core; never a downloaded browser). Run by test_console.sh on the `make
// run` setup, with DP_UI_BASE (the notifier's http://127.0.0.1:PORT), DP_UI_MARKETER
// and DP_UI_VIEWER (tokens of those roles), DP_UI_DEAL (a deal that was sent) and
// DP_CHROMIUM. Prints "ok - ..." / "not ok - ..." and "console: N passed, M failed".

import { chromium } from 'playwright-core';

const base = process.env.DP_UI_BASE;
const marketer = process.env.DP_UI_MARKETER;
const viewer = process.env.DP_UI_VIEWER;
const admin = process.env.DP_UI_ADMIN;
const shots = process.env.DP_UI_SHOTS;       // a folder for each page's screenshot

async function shot(page, name) {
  if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}
const deal = process.env.DP_UI_DEAL;
const WAIT = { timeout: 10000 };
let passed = 0;
let failed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}: ${String(e.message).split('\n')[0]}`);
  }
}

function expect(cond, what) {
  if (!cond) throw new Error(what);
}

const browser = await chromium.launch({
  executablePath: process.env.DP_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const problems = [];

async function newPage(viewport = { width: 1280, height: 800 }) {
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  // A 401 before signing in or a 400 for a refused deal is an answer the page
  // expects (the browser logs each as "Failed to load resource"); a script error
  // or a "Refused to ..." from the Content-Security-Policy is not.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource'))
      problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  return { ctx, page };
}

// What the API says, asked from inside the page with its cookie.
const inPage = (page, path) => page.evaluate(async (p) => {
  const r = await fetch(p, { credentials: 'same-origin' });
  return { status: r.status, body: await r.text() };
}, path);

async function signIn(page, token) {
  await page.goto(`${base}/ui/`);
  await page.waitForSelector('#sign-in-form', { state: 'visible', ...WAIT });
  await page.fill('#token', token);
  await page.click('#sign-in-form button[type=submit]');
  await page.waitForSelector('#nav', { state: 'visible', ...WAIT });
}

// The console's lift, computed in the page, on figures with a known answer.
await check('lift: the difference with its 95% interval; small samples said so',
  async () => {
    const { liftOf } = await import('../../notifier/ui/reports.js');
    const big = liftOf({ treated_audience: 10000, treated_conversion_rate: 0.05,
      audience: 2000, holdout_conversion_rate: 0.03, redeemed: 60 });
    expect(Math.abs(big.diff - 0.02) < 1e-12, `diff ${big.diff}`);
    expect(Math.abs(big.low - 0.011390) < 1e-5 && Math.abs(big.high - 0.028610) < 1e-5,
      `interval ${big.low} ${big.high}`);
    expect(big.text === '+2.00 pts (95%: 1.14 pts to 2.86 pts)', big.text);
    expect(liftOf({ treated_audience: 160, treated_conversion_rate: 0.01875, audience: 40,
      holdout_conversion_rate: 0.025, redeemed: 1 }).text === 'not enough data yet', 'small');
    expect(liftOf(null).text === 'no holdout', 'none');
  });

await check('A/B standing: a decided test and a running one, in words and rows',
  async () => {
    const { abSummary } = await import('../../notifier/ui/deal.js');
    const done = abSummary('flash', { held: 320, released: 320, metric: 'clicks',
      fallback: 'a', state: 'decided', variants: {
        a: { sent: 41, clicked: 0, redeemed: 0, click_rate: 0, redemption_rate: 0 },
        b: { sent: 39, clicked: 39, redeemed: 0, click_rate: 1, redemption_rate: 0 } },
      decision: { variant: 'b', how: 'early', fallback: false, z: 8.83, confidence: 1 } });
    expect(done.line === 'flash: b won early (sequential test) (z 8.83, 100.0% confident); ' +
      'the rest (320) gets b, 320 sent so far.', done.line);
    expect(JSON.stringify(done.rows) ===
      '[["a",41,0,0,"0.0%","0.0%"],["b",39,39,0,"100.0%","0.0%"]]', JSON.stringify(done.rows));
    const run = abSummary('flash', { held: 80, released: 0, metric: 'clicks', fallback: 'a',
      state: 'running', decide_by: '2026-12-05T17:01:02Z', variants: {},
      standing: { best: null } });
    expect(run.line.includes('running, by clicks') && run.line.includes('no leader yet') &&
      run.line.includes('80 held back (fallback a)'), run.line);
  });

await check('channel lift: revenue added on a channel against its own holdout',
  async () => {
    const { channelLiftOf } = await import('../../notifier/ui/reports.js');
    const sms = channelLiftOf({ sent: 160, incremental_revenue: 12.5,
      incremental_revenue_ci95: [-3.25, 28.25] });
    expect(sms.value === 12.5 && sms.text === '+12.50 (95%: -3.25 to 28.25)', sms.text);
    expect(channelLiftOf({ sent: 0 }).text === 'not sent', 'not sent');
    expect(channelLiftOf({ sent: 5, incremental_revenue: null,
      incremental_revenue_ci95: null }).text === 'no holdout yet', 'no holdout');
  });

try {
  const { ctx, page } = await newPage();

  await check('the console asks to sign in', async () => {
    await page.goto(`${base}/ui/`);
    await page.waitForSelector('#sign-in-form', { state: 'visible', ...WAIT });
    expect(await page.isHidden('#nav'), 'the menu shows before signing in');
  });

  await check('a wrong token is refused with a message', async () => {
    await page.fill('#token', 'dp_' + '0'.repeat(64));
    await page.click('#sign-in-form button[type=submit]');
    await page.waitForFunction(() =>
      document.getElementById('sign-in-error').textContent.includes('not valid'), null, WAIT);
  });

  await check('a marketer signs in and sees the Live page', async () => {
    await signIn(page, marketer);
    const who = await page.textContent('#who-name');
    expect(who.includes('(marketer)'), `signed in as "${who}"`);
    await page.waitForSelector('#pause-state .badge', WAIT);
  });

  await check('Live lists the deals on now with their counts and time left', async () => {
    await page.waitForFunction(() => {
      const t = document.getElementById('live-deals');
      return t && t.textContent.includes('Console test deal') && /\d+m \d+s/.test(t.textContent);
    }, null, WAIT);
    const row = await page.$$eval('#live-deals tr', (rows) => rows
      .map((r) => [...r.children].map((c) => c.textContent))
      .find((c) => c[0] === 'Console test deal'));
    expect(row && Number(row[4]) >= 1, `row: ${row}`);
    await shot(page, 'live');
  });

  await check('a deal title holding <script> and HTML is shown as text', async () => {
    await page.waitForFunction(() => {
      const t = document.getElementById('live-deals');
      return t && t.textContent.includes('<script>window.pwned=1</script><b>Bold</b> deal');
    }, null, WAIT);
    expect(await page.evaluate(() => window.pwned === undefined), 'the script ran');
    expect((await page.$$('#live-deals b')).length === 0, 'the markup was parsed');
  });

  await check('the session cookie is HttpOnly and SameSite=Strict', async () => {
    const c = (await ctx.cookies()).find((x) => x.name === 'dp_session');
    expect(c, 'no dp_session cookie');
    expect(c.httpOnly, 'not HttpOnly');
    expect(c.sameSite === 'Strict', `SameSite=${c.sameSite}`);
    expect(!(await page.evaluate(() => document.cookie)).includes('dp_session'),
      'the page script can read the cookie');
  });

  await check('pause and resume from the Live page', async () => {
    await page.fill('#pause-reason', 'browser test');
    await page.click('#pause');
    await page.waitForFunction(() =>
      document.getElementById('pause-state').textContent.includes('Paused'), null, WAIT);
    const p = JSON.parse((await inPage(page, '/v1/pause')).body);
    expect(p.paused === true, 'the API does not say paused');
    await page.click('#resume');
    await page.waitForFunction(() =>
      document.getElementById('pause-state').textContent.includes('Sending'), null, WAIT);
  });

  await check('after a reload the session and its CSRF token still work', async () => {
    await page.reload();
    await page.waitForSelector('#pause-state .badge', WAIT);
    await page.click('#pause');
    await page.waitForFunction(() =>
      document.getElementById('pause-state').textContent.includes('Paused'), null, WAIT);
    await page.click('#resume');
    await page.waitForFunction(() =>
      document.getElementById('pause-state').textContent.includes('Sending'), null, WAIT);
  });

  await check("a deal's funnel is drawn and its figures shown", async () => {
    await page.fill('#deal-id', deal);
    await page.click('#deal-form button[type=submit]');
    await page.waitForSelector('#figures table', WAIT);
    const sent = await page.$$eval('#figures tr', (rows) => rows
      .map((r) => [...r.children].map((c) => c.textContent))
      .find((c) => c[0] === 'sent'));
    expect(sent && Number(sent[1].replace(/,/g, '')) > 0, `sent row: ${sent}`);
    const drawn = await page.$eval('#funnel', (c) => c.width > 0 && c.height > 0 &&
      window.Chart && window.Chart.getChart(c) !== undefined);
    expect(drawn, 'no chart on the canvas');
  });

  await check('the per-minute series is drawn after the sends', async () => {
    await page.waitForFunction(() => {
      const c = document.getElementById('series');
      return c && Number(c.dataset.total || 0) > 0 && window.Chart.getChart(c) !== undefined;
    }, null, WAIT);
    const sent = await page.$eval('#series', (c) => window.Chart.getChart(c).data.datasets
      .find((d) => d.label === 'sent').data.reduce((a, b) => a + b, 0));
    expect(sent > 0, `sent per minute sums to ${sent}`);
    await shot(page, 'deal');
  });

  await check("a pool deal's page shows its codes left", async () => {
    await page.goto(`${base}/ui/#/deal/ui-deal-codes`);
    await page.waitForSelector('#deal-codes[data-left]', WAIT);
    const left = Number(await page.getAttribute('#deal-codes', 'data-left'));
    const r = JSON.parse((await inPage(page, '/v1/codes/ui-shop')).body);
    expect(left === r.remaining && left <= 3, `codes left ${left}, the pool ${r.remaining}`);
    expect((await page.textContent('#deal-codes')).includes('Codes left'), 'no label');
  });

  await check("a deal the guards held waits; a marketer confirms it", async () => {
    await page.goto(`${base}/ui/#/deal/ui-held`);
    await page.waitForSelector('#guard:not([hidden])', WAIT);
    expect((await page.textContent('#guard')).includes('over the guard'), 'no reason');
    await shot(page, 'deal-guard');
    await page.click('#confirm-deal');
    await page.waitForFunction(() =>
      document.getElementById('guard').textContent.includes('Confirmed'), null, WAIT);
    await page.waitForFunction(async () => {
      const r = await fetch('/v1/deals/ui-held', { credentials: 'same-origin' });
      return r.ok && (await r.json()).state !== 'waiting_confirmation';
    }, null, WAIT);
  });

  await check('publish: simulate, then publish a deal that goes out', async () => {
    await page.click('#nav a[href="#/publish"]');
    await page.waitForSelector('#publish-form', WAIT);
    await page.fill('#f-id', 'ui-deal-2');
    await page.fill('#f-title', 'Console deal two');
    await page.fill('#f-url', 'https://shop.example/d/ui-2');
    await page.fill('#f-price', '89');
    await page.fill('#f-list_price', '149');
    await page.fill('#f-category', 'headphones');
    await page.click('#simulate');
    await page.waitForFunction(() => {
      const o = document.getElementById('publish-out');
      return o && Number(o.dataset.recipients || 0) > 0;
    }, null, WAIT);
    expect((await page.textContent('#publish-out')).includes('Console deal two'),
      'no sample text');
    await shot(page, 'publish');
    await page.click('#publish');
    await page.waitForSelector('#published', WAIT);
    await page.click('#published a');
    await page.waitForFunction(() => {
      const st = document.getElementById('deal-state');
      return st !== null && /sending|done|planned/.test(st.textContent);
    }, null, WAIT);
  });

  await check('a deal cancelled from its page, after a confirmation', async () => {
    page.once('dialog', (d) => d.accept());
    await page.click('#cancel-deal');
    await page.waitForFunction(() => {
      const st = document.getElementById('deal-state');
      return st !== null && st.textContent.includes('cancelled');
    }, null, WAIT);
  });

  await check('publish: a refused deal names its field', async () => {
    await page.click('#nav a[href="#/publish"]');
    await page.waitForSelector('#publish-form', WAIT);
    await page.fill('#f-id', 'ui-deal-3');
    await page.fill('#f-title', 'Bad link');
    await page.fill('#f-url', 'ftp://shop.example/x');
    await page.click('#publish');
    await page.waitForFunction(() =>
      document.getElementById('publish-error').textContent.startsWith('url'), null, WAIT);
  });

  await check('codes: a pool filled from text, bad lines counted, codes left shown',
    async () => {
      await page.click('#nav a[href="#/codes"]');
      await page.waitForSelector('#codes-text', WAIT);
      await page.fill('#pool', 'ui-pool');
      await page.fill('#codes-text', 'UI-001\nUI-002\nbad code\nUI-001\n');
      await page.click('#codes-add');
      await page.waitForSelector('#codes-left', WAIT);
      expect((await page.textContent('#codes-left')).includes('2 codes left'),
        await page.textContent('#codes-out'));
      await shot(page, 'codes');
    });

  await check('reports: every rule with its figures, sorted by a column', async () => {
    await page.click('#nav a[href="#/reports"]');
    await page.waitForSelector('#reports table', WAIT);
    await page.click('#reports th:nth-child(3) button');        // sent, descending
    const sent = await page.$$eval('#reports tbody tr', (rows) =>
      rows.map((r) => Number(r.children[2].textContent)));
    expect(sent.length > 0 && sent.every((v, i) => i === 0 || sent[i - 1] >= v),
      `sent column: ${sent}`);
    const heads = await page.$$eval('#reports th', (th) => th.map((h) => h.textContent));
    expect(['halo revenue', 'SMS added', 'DM added'].every((h) => heads.includes(h)),
      `columns: ${heads}`);
    await shot(page, 'reports');
  });

  await check('replies: the reply shown as text, the sender masked', async () => {
    await page.click('#nav a[href="#/replies"]');
    await page.waitForSelector('#replies table', WAIT);
    const t = await page.textContent('#replies');
    expect(t.includes('is the <b>blue</b> one back?'), `replies: ${t}`);
    expect(!t.includes('+15125550188') && t.includes('0188'), 'the number is not masked');
    expect((await page.$$('#replies b')).length === 0, 'markup in a reply was parsed');
    await shot(page, 'replies');
  });

  await check('subscribers: a marketer is told the lookup needs an admin', async () => {
    await page.click('#nav a[href="#/subscribers"]');
    await page.fill('#sub-id', 'ui-me');
    await page.click('#sub-form button[type=submit]');
    await page.waitForFunction(() =>
      document.querySelector('#page .error').textContent.includes('admin role'), null, WAIT);
  });

  await check('gateways: each gateway with its breaker and counts', async () => {
    await page.click('#nav a[href="#/gateways"]');
    await page.waitForSelector('#gateways table', WAIT);
    const t = await page.textContent('#gateways');
    expect(t.includes('closed'), `gateways: ${t}`);
    expect(t.includes('429s'), 'no 429 column');
  });

  await check('rules: listed; an error marked at its line as typed; fixed, applied',
    async () => {
      await page.click('#nav a[href="#/rules"]');
      await page.waitForSelector('#rules table', WAIT);
      expect((await page.$$('#rules tbody tr')).length > 0, 'no rule listed');
      await page.fill('#new-rule-name', 'ui-rule');
      await page.click('#new-rule-form button[type=submit]');
      await page.waitForSelector('#rule-text', WAIT);
      await page.fill('#rule-text', 'rule ui_rule\n  when deal.colour = "red"\n' +
        '  send sms\nend\n');
      await page.waitForFunction(() =>
        document.getElementById('rule-errors').textContent.includes('2:8:') &&
        document.querySelector('#rule-lines li.bad') !== null, null, WAIT);
      const msg = await page.textContent('#rule-errors');
      expect(msg.includes("unknown field 'deal.colour'"), msg);
      await shot(page, 'rules');
      expect(await page.isDisabled('#rule-apply'), 'Apply is enabled with errors');
      await page.fill('#rule-text', 'rule ui_rule\n  when deal.category = "headphones"\n' +
        '  priority 1000\n  send sms\n' +
        '  template sms "UI rule: {title} {link} Reply STOP to end"\nend\n');
      await page.waitForFunction(() =>
        document.getElementById('rule-status').textContent.startsWith('Compiles'),
      null, WAIT);
      await page.click('#rule-apply');
      await page.waitForFunction(() =>
        document.getElementById('rule-status').textContent.startsWith('Applied'), null, WAIT);
      // Applied, the next deal uses it: a headphones deal published now is matched by
      // ui_rule first (the highest priority), and its report counts them.
      const pub = await page.evaluate(async (exp) => {
        const { api } = await import('/ui/api.js');
        try {
          const { now } = await api('GET', '/v1/deals');      // the notifier's clock
          await api('POST', '/v1/deals', { id: 'ui-after-rule', title: 'After the rule',
            category: 'headphones', price: 79, list_price: 129, currency: 'USD',
            url: 'https://shop.example/d/ui-3', expires_at: now + exp });
          return 'ok';
        } catch (e) {
          return e.message;
        }
      }, 3600);
      expect(pub === 'ok', `publishing after the rule: ${pub}`);
      let matched = 0;
      let last = '';
      for (let i = 0; i < 50 && matched === 0; i++) {
        const r = await inPage(page, '/v1/reports/rule/ui_rule');
        last = `${r.status} ${r.body}`;
        if (r.status === 200) matched = Number(JSON.parse(r.body).matched || 0);
        if (matched === 0) await new Promise((res) => setTimeout(res, 200));
      }
      const st = await inPage(page, '/v1/deals/ui-after-rule');
      expect(matched > 0, `the applied rule matched nobody of the next deal: ${last} ` +
        `(deal: ${st.body})`);
    });

  await check('rules: a draft simulated against a recent deal; versions with a diff',
    async () => {
      await page.waitForSelector('#rule-history details', WAIT);
      await page.fill('#rule-text', 'rule ui_rule\n  when deal.category = "headphones"\n' +
        '  audience all\n  send sms\n' +
        '  template sms "UI draft: {title} {link} Reply STOP to end"\nend\n');
      await page.waitForFunction(() =>
        document.querySelector('#draft-deal option[value="ui-deal-1"]') !== null, null, WAIT);
      await page.selectOption('#draft-deal', 'ui-deal-1');
      await page.click('#draft-simulate');
      await page.waitForFunction(() => {
        const o = document.getElementById('draft-out');
        return o && Number(o.dataset.recipients || 0) > 0;
      }, null, WAIT);
      const t = await page.textContent('#draft-out');
      expect(t.includes('UI draft:') && t.includes('excluded:'), `draft: ${t.slice(0, 200)}`);
      // Nothing applied: the rule in use still has the old text.
      const inUse = JSON.parse((await inPage(page, '/v1/rules/ui-rule')).body);
      expect(inUse.text.includes('UI rule:'), 'the draft was applied');
      await page.click('#rule-apply');
      await page.waitForFunction(() =>
        document.querySelectorAll('#rule-history details').length >= 2, null, WAIT);
      const diff = await page.$eval('#rule-history details', (d) => ({
        add: [...d.querySelectorAll('.add')].map((e) => e.textContent).join(''),
        del: [...d.querySelectorAll('.del')].map((e) => e.textContent).join(''),
      }));
      expect(diff.add.includes('UI draft:') && diff.del.includes('UI rule:') &&
        !diff.add.includes('when deal.category'), `diff: ${JSON.stringify(diff)}`);
      await shot(page, 'rules-draft');
    });

  await check('no script error and no Content-Security-Policy violation', async () => {
    expect(problems.length === 0, problems.join(' | '));
  });

  await check('sign out ends the session', async () => {
    await page.click('#sign-out');
    await page.waitForSelector('#sign-in-form', { state: 'visible', ...WAIT });
    const s = await inPage(page, '/v1/session');
    expect(s.status === 401, `GET /v1/session answered ${s.status}`);
  });
  await ctx.close();

  await check('an admin looks a subscriber up: number masked, consent history',
    async () => {
      const a = await newPage();
      await signIn(a.page, admin);
      await a.page.click('#nav a[href="#/subscribers"]');
      await a.page.fill('#sub-id', 'ui-me');
      await a.page.click('#sub-form button[type=submit]');
      await a.page.waitForSelector('#sub-out table', WAIT);
      const t = await a.page.textContent('#sub-out');
      expect(t.includes('\u2022\u2022\u20220188') && !t.includes('5125550188'),
        `subscriber: ${t}`);
      expect(t.includes('granted'), 'no consent history');
      await a.page.fill('#sub-id', '+15125550188');
      await a.page.click('#sub-form button[type=submit]');
      await a.page.waitForSelector('#sub-found', WAIT);
      // The count shows first; each subscriber's record as it is read.
      await a.page.waitForFunction(() =>
        document.getElementById('sub-out').textContent.includes('Subscriber '), null, WAIT)
        .catch(() => {});
      const f = await a.page.textContent('#sub-out');
      expect(f.includes('Subscriber ui-me') && !f.includes('5125550188'), `by phone: ${f}`);
      await shot(a.page, 'subscribers');
      // The guard's confirmation made from the Deal page is in the audit, by its maker.
      const audit = JSON.parse((await inPage(a.page, '/v1/audit?limit=200')).body);
      expect(audit.entries.some((e) => e.what === 'deals.confirm' && e.id === 'ui-held' &&
        e.who === 'ui-marketer'), 'no deals.confirm entry for ui-held by ui-marketer');
      await a.page.fill('#sub-id', '+1512');
      await a.page.click('#sub-form button[type=submit]');
      await a.page.waitForFunction(() =>
        document.querySelector('#page .error').textContent.includes('E.164'), null, WAIT);
      await a.ctx.close();
    });

  await check('a phone (375 px): the Live page fits its width; keyboard sign-in',
    async () => {
      const p = await newPage({ width: 375, height: 740 });
      await p.page.goto(`${base}/ui/`);
      await p.page.waitForSelector('#sign-in-form', { state: 'visible', ...WAIT });
      // Keyboard only: focus the token, type it, Enter submits.
      await p.page.focus('#token');
      await p.page.keyboard.type(viewer);
      await p.page.keyboard.press('Enter');
      await p.page.waitForSelector('#live-deals table', WAIT);
      const wide = await p.page.evaluate(() =>
        document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(wide <= 1, `the page is ${wide} px wider than the phone`);
      await shot(p.page, 'live-phone');
      await p.ctx.close();
    });

  await check('a viewer sees the pause but cannot change it', async () => {
    const v = await newPage();
    await signIn(v.page, viewer);
    await v.page.waitForSelector('#pause-state .badge', WAIT);
    expect(await v.page.isDisabled('#pause'), 'the Pause button is enabled');
    await v.ctx.close();
  });
} finally {
  await browser.close();
}
console.log(`console: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
