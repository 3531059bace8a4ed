// The dashboard in Chromium, driven by playwright-core (started by test_dashboard.py, which
// starts the server, seeds the data and passes everything in TRIFLE_BROWSER_SPEC).
'use strict';
const assert = require('node:assert/strict');
const path = require('node:path');

const spec = JSON.parse(process.env.TRIFLE_BROWSER_SPEC);
const { chromium } = require(path.join(spec.modules, 'playwright-core'));

const fmt = (v) => String(Math.round(v * 1e6) / 1e6);

const expected = []; // console messages a step provoked on purpose

function step(name) {
  process.stdout.write(`  ${name}\n`);
}

/* Rows of the timeline widget's table of values: [[at, count, ...], ...]. */
async function timelineRows(page) {
  return page.$$eval('#explore-widgets section[data-mode="timeline"] details.values tbody tr',
    (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
}

/* What uPlot holds: [xs, ys...]. */
async function chartData(page) {
  return page.$eval('#explore-widgets .chart', (c) => c.uplot.data.map((s) => Array.from(s)));
}

async function waitStatus(page, text) {
  await page.waitForFunction((t) => document.querySelector('#status').textContent.includes(t),
    text, { timeout: 15000 });
}

// Fills the fields of the monitor form by name, in the order given, then submits it.
async function submitMonitor(page, fields) {
  for (const [name, value] of Object.entries(fields)) {
    await page.fill(`#mon-form [name="${name}"]`, value);
  }
  await page.click('#mon-form button');
}

async function signIn(page, token) {
  await page.goto(spec.url + '/');
  await page.waitForSelector('#signin:not([hidden])');
  // keyboard only: the token field has the focus, Enter submits
  assert.equal(await page.evaluate(() => document.activeElement.id), 'token');
  await page.keyboard.type(token);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#explore:not([hidden])');
}

async function explore(page, width) {
  await signIn(page, spec.writer);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('trifle.token')), spec.writer);
  assert.ok(!page.url().includes(spec.writer), 'the token never goes into a URL');

  step('pick a key');
  await page.waitForFunction(() => document.querySelectorAll('#key option').length === 2);
  const keys = await page.$$eval('#key option', (o) => o.map((x) => x.value));
  assert.deepEqual(keys, ['event::login', 'event::signup']);
  await page.selectOption('#key', 'event::signup');
  await waitStatus(page, 'event::signup: 25 points at 1h');

  step('the chart holds 25 hourly points with the seeded values');
  await page.check('#paths input[value="duration"]');
  await page.waitForFunction(() =>
    document.querySelector('#explore-widgets .chart').uplot.data.length === 3);
  let data = await chartData(page);
  let rows = await timelineRows(page);
  assert.equal(data[0].length, 25);
  assert.equal(rows.length, 25);
  let seen = 0;
  rows.forEach((r, i) => {
    const want = spec.hourly[r[0]];
    assert.equal(new Date(data[0][i] * 1000).toISOString().replace('.000', ''), r[0]);
    if (want) {
      seen++;
      assert.deepEqual(r.slice(1), [fmt(want.count), fmt(want.duration)], r[0]);
      assert.deepEqual([data[1][i], data[2][i]], [want.count, want.duration]);
    } else {
      assert.deepEqual(r.slice(1), ['–', '–'], r[0]);
      assert.deepEqual([data[1][i], data[2][i]], [null, null]);
    }
  });
  assert.equal(seen, Object.keys(spec.hourly).length);

  step('aggregates of the window');
  const agg = await page.$$eval('#explore-widgets section[data-mode="aggregate"] tbody tr',
    (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
  const counts = Object.values(spec.hourly).map((v) => v.count);
  const sum = counts.reduce((a, b) => a + b, 0);
  assert.deepEqual(agg[0], ['count', fmt(sum), fmt(sum / counts.length),
    fmt(Math.min(...counts)), fmt(Math.max(...counts))]);

  step('category breakdown');
  await page.fill('#breakdown', 'country');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#explore-widgets section[data-mode="category"] tbody tr');
  const bars = await page.$$eval('#explore-widgets section[data-mode="category"] tbody tr',
    (trs) => Object.fromEntries(trs.map((tr) => [tr.children[0].textContent,
      tr.children[1].textContent])));
  assert.deepEqual(bars, Object.fromEntries(Object.entries(spec.country).map(([k, v]) =>
    [k, fmt(v)])));
  await page.$eval('#explore-widgets details.values', (d) => { d.open = true; });
  await page.screenshot({ path: path.join(spec.artefacts, `explore-${width}.png`), fullPage: true });

  step('switch the granularity to 1d');
  await page.selectOption('#granularity', '1d');
  await waitStatus(page, 'event::signup: 2 points at 1d');
  rows = await timelineRows(page);
  data = await chartData(page);
  assert.equal(rows.length, 2);
  assert.equal(data[0].length, 2);
  for (const r of rows) {
    const want = spec.daily[r[0]];
    if (want) assert.deepEqual(r.slice(1), [fmt(want.count), fmt(want.duration)], r[0]);
    else assert.deepEqual(r.slice(1), ['–', '–'], r[0]);
  }

  if (width === 1280) {
    step('auto-refresh picks up a new value within 10 s');
    const hour = Object.keys(spec.hourly).sort().pop(); // the newest seeded bucket
    const day = new Date(Math.floor(Date.parse(hour) / 86400000) * 86400000).toISOString()
      .replace('.000', '');
    const before = spec.daily[day].count;
    const res = await fetch(spec.url + '/api/v1/metrics', {
      method: 'POST', headers: { Authorization: 'Bearer ' + spec.writer, 'Content-Type': 'application/json' },
      body: JSON.stringify({ key: 'event::signup', at: hour, values: { count: 5 } }) });
    assert.equal(res.status, 201);
    assert.equal((await timelineRows(page)).find((r) => r[0] === day)[1], fmt(before));
    await page.selectOption('#refresh', '10');
    await page.waitForFunction(([d, want]) => [...document.querySelectorAll(
      '#explore-widgets section[data-mode="timeline"] details.values tbody tr')].some((tr) =>
      tr.children[0].textContent === d && tr.children[1].textContent === want),
    [day, fmt(before + 5)], { timeout: 13000 });
    await page.selectOption('#refresh', '0');
    spec.daily[day].count += 5; // what the next run (390 px) must find
    spec.hourly[hour].count += 5;
  }

  step('save a dashboard, reload, find it again');
  const name = `Signups at ${width}px`;
  await page.fill('#save-name', name);
  await page.click('#save-form button');
  await page.waitForFunction((n) => document.querySelector('#dash-title').textContent === n, name);
  assert.match(page.url(), /#\/dashboards\/[0-9a-f]{16}$/);
  const dashUrl = page.url();
  await page.reload();
  await page.waitForFunction((n) => document.querySelector('#dash-title').textContent === n, name);
  await page.waitForSelector('#dash-widgets section[data-mode="timeline"] .chart');
  // the widgets render as their reads answer, in any order: wait for all three
  await page.waitForFunction(() => document.querySelectorAll('#dash-widgets section').length >= 3);
  const modes = await page.$$eval('#dash-widgets section', (s) => s.map((x) => x.dataset.mode));
  assert.deepEqual(modes, ['timeline', 'aggregate', 'category']);
  const dashRows = await page.$$eval('#dash-widgets section[data-mode="timeline"] details.values tbody tr',
    (trs) => trs.length);
  assert.equal(dashRows, 2); // saved at 1d
  await page.screenshot({ path: path.join(spec.artefacts, `dashboard-${width}.png`), fullPage: true });
  await page.click('#views a[href="#/dashboards"]');
  await page.waitForSelector(`#dash-list a[href="${new URL(dashUrl).hash}"]`);
  assert.ok((await page.textContent('#dash-list')).includes(name));

  step('monitors view');
  await page.click('#views a[href="#/monitors"]');
  await page.waitForSelector('#mon-table tbody tr');
  const mon = await page.$eval('#mon-table tbody tr', (tr) => tr.children[0].textContent);
  assert.equal(mon, 'signups');
  if (width === 1280) {
    step('create a monitor from the form');
    const hook = 'http://127.0.0.1:9/hook';
    await submitMonitor(page, {
      name: 'logins', key: 'event::login', threshold: '0', interval_s: '1', webhook_url: hook,
    });
    await waitStatus(page, 'Monitor created.');
    const names = await page.$$eval('#mon-table > tbody > tr > th', (t) => t.map((x) => x.textContent));
    assert.deepEqual(names, ['signups', 'logins']);
    // a bad field is reported with its name (Chromium logs the 422 it asked for)
    expected.push('1280 explore: Failed to load resource: the server responded with a status of 422');
    await submitMonitor(page, { key: 'event::login', window: '1mo', threshold: '1', webhook_url: hook });
    await waitStatus(page, 'window: must be a duration');
  }
  await page.screenshot({ path: path.join(spec.artefacts, `monitors-${width}.png`), fullPage: true });

  const overflow = await page.evaluate(() =>
    document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the ${width}px viewport`);
}

async function readOnly(page) {
  await signIn(page, spec.reader);
  await page.waitForSelector('#explore-widgets .chart');
  assert.equal(await page.isDisabled('#save-form button'), true);
  assert.match(await page.textContent('#who'), /read-only/);
  // the API refuses it too (asked from here: a 403 in the page would log a console error)
  const res = await fetch(spec.url + '/api/v1/dashboards', {
    method: 'POST', headers: { Authorization: 'Bearer ' + spec.reader, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'x', widgets: [] }) });
  assert.equal(res.status, 403);
  await page.click('#views a[href="#/monitors"]');
  await page.waitForSelector('#mon-table tbody tr');
  assert.equal(await page.isDisabled('#mon-form button'), true);
  assert.equal(await page.isDisabled('#mon-table tbody button'), true);
}

async function main() {
  const browser = await chromium.launch({ executablePath: spec.chromium, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const problems = [];
  try {
    for (const width of [1280, 390]) {
      for (const [name, fn] of [['explore', explore], ['read-only', readOnly]]) {
        process.stdout.write(`${name} at ${width}px\n`);
        const ctx = await browser.newContext({ viewport: { width, height: 900 } });
        const page = await ctx.newPage();
        page.on('console', (m) => { if (m.type() === 'error') problems.push(`${width} ${name}: ${m.text()}`); });
        page.on('pageerror', (e) => problems.push(`${width} ${name}: ${e.message}`));
        // the page talks to nothing but the server
        page.on('request', (r) => {
          if (!r.url().startsWith(spec.url) && !r.url().startsWith('data:'))
            problems.push(`request outside the server: ${r.url()}`);
        });
        await fn(page, width);
        await ctx.close();
      }
    }
  } finally {
    await browser.close();
  }
  const unexpected = problems.filter((p) => !expected.some((e) => p.startsWith(e)));
  assert.equal(problems.length - unexpected.length, expected.length);
  assert.deepEqual(unexpected, [], 'console errors or foreign requests');
  process.stdout.write('ok\n');
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
