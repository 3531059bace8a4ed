/* The trifle serve dashboard: plain JavaScript, no framework, no build step.
 *
 * Views (by URL hash): #/ explore, #/dashboards (list), #/dashboards/<id> (one), #/monitors.
 * Every number comes from the public API with the token the user pasted: GET /api/v1/sources
 * (what the token may see), GET /api/v1/metrics (the series; without a key: the system key,
 * whose `keys` list the keys seen), POST /api/v1/metrics/query (category and aggregate), and the
 * dashboards and monitors CRUD. The token lives in sessionStorage and goes out only in the
 * Authorization header. Every chart is followed by the table of its values. */
'use strict';

const $ = (sel) => document.querySelector(sel);
const PRESETS = { '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400, '90d': 90 * 86400 };
const COLORS = ['#2457c5', '#d9480f', '#2b8a3e', '#862e9c', '#c2255c', '#0b7285'];

const state = {
  token: sessionStorage.getItem('trifle.token'),
  sources: [],
  source: null,        // the chosen source object
  paths: [],           // available value paths of the current key
  checked: new Set(),  // value paths shown
  series: null,        // the last GET /metrics answer
  timer: null,
  charts: [],
};

/* ---- API ---------------------------------------------------------------------------------- */

class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(method, path, body) {
  const headers = { Authorization: 'Bearer ' + state.token };
  if (state.source) headers['X-Trifle-Source-Id'] = state.source.id;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store', credentials: 'omit',
  });
  const doc = await res.json().catch(() => null);
  if (!res.ok) {
    const e = doc && doc.errors;
    throw new ApiError(res.status, (e && (e.detail || e.error)) || 'HTTP ' + res.status);
  }
  return doc.data;
}

function say(text, isError) {
  const s = $('#status');
  s.textContent = text || '';
  s.className = isError ? 'error' : '';
  s.setAttribute('role', isError ? 'alert' : 'status');
}

function fail(e) {
  if (e instanceof ApiError && e.status === 401) return signOut('The token was refused.');
  say(e.message, true);
}

/* ---- Time and values ---------------------------------------------------------------------- */

const iso = (secs) => new Date(secs * 1000).toISOString().replace(/\.\d+Z$/, 'Z');

function localInput(secs) { // a datetime-local value in the browser's zone
  const d = new Date(secs * 1000);
  return new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
}

function windowOf(range) {
  const now = Math.floor(Date.now() / 1000);
  if (typeof range === 'string') return { from: iso(now - PRESETS[range]), to: iso(now) };
  return range;
}

function valueAt(obj, path) {
  for (const seg of path.split('.')) {
    if (obj === null || typeof obj !== 'object') return null;
    obj = obj[seg];
  }
  return typeof obj === 'number' ? obj : null;
}

function leafPaths(obj, prefix, out) {
  for (const [k, v] of Object.entries(obj || {})) {
    const p = prefix ? prefix + '.' + k : k;
    if (v !== null && typeof v === 'object') leafPaths(v, p, out);
    else if (typeof v === 'number') out.add(p);
  }
  return out;
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

const fmt = (v) => (v === null || v === undefined ? '–' : String(Math.round(v * 1e6) / 1e6));

/* ---- Widgets ------------------------------------------------------------------------------ */

function table(caption, columns, rows) {
  const head = el('tr', null, ...columns.map((c) => el('th', { scope: 'col', text: c })));
  const body = rows.map((r) => el('tr', null, ...r.map((v, i) =>
    i === 0 ? el('th', { scope: 'row', text: v }) : el('td', { text: fmt(v) }))));
  return el('div', { class: 'scroll' },
    el('table', null, el('caption', { text: caption }), el('thead', null, head),
      el('tbody', null, ...body)));
}

function timeline(box, w, data) {
  const xs = data.at.map((a) => Date.parse(a) / 1000);
  const ys = w.paths.map((p) => data.values.map((v) => valueAt(v, p)));
  const chart = el('div', { class: 'chart', role: 'img',
    'aria-label': `Chart of ${w.paths.join(', ')} for ${w.key}; the table below lists its values` });
  box.append(chart);
  const u = new uPlot({
    width: Math.max(chart.clientWidth, 280), height: 240,
    scales: { x: { time: true } },
    series: [{}, ...w.paths.map((p, i) => ({ label: p, stroke: COLORS[i % COLORS.length],
      width: 2, spanGaps: false, points: { show: xs.length <= 60 } }))],
  }, [xs, ...ys], chart);
  chart.uplot = u; // read back by the browser test
  state.charts.push(u);
  const rows = data.at.map((a, i) => [a, ...ys.map((y) => y[i])]);
  box.append(el('details', { class: 'values' }, el('summary', { text: 'Table of values' }),
    table(`Values of ${w.key} at ${w.granularity}`, ['at', ...w.paths], rows)));
}

async function category(box, w, win) {
  const d = await api('POST', '/api/v1/metrics/query', { key: w.key, from: win.from, to: win.to,
    granularity: w.granularity, mode: 'category', value_path: w.paths[0] });
  const entries = Object.entries(d.result).sort((a, b) => b[1] - a[1]);
  const max = Math.max(1, ...entries.map((e) => Math.abs(e[1])));
  const rows = entries.map(([p, v]) => {
    const bar = el('span');
    bar.style.width = (100 * Math.abs(v) / max).toFixed(1) + '%'; // CSSOM: allowed by the CSP
    return el('tr', null, el('th', { scope: 'row', text: p }), el('td', { text: fmt(v) }),
      el('td', { class: 'bar', 'aria-hidden': 'true' }, bar));
  });
  box.append(el('div', { class: 'scroll' }, el('table', { class: 'bars' },
    el('caption', { text: `Breakdown of ${w.paths[0]} (sum over the window)` }),
    el('thead', null, el('tr', null, el('th', { scope: 'col', text: 'path' }),
      el('th', { scope: 'col', text: 'sum' }), el('td'))),
    el('tbody', null, ...rows))));
}

async function aggregate(box, w, win) {
  const aggs = ['sum', 'mean', 'min', 'max'];
  const rows = await Promise.all(w.paths.map(async (p) => [p, ...await Promise.all(aggs.map(
    (a) => api('POST', '/api/v1/metrics/query', { key: w.key, from: win.from, to: win.to,
      granularity: w.granularity, mode: 'aggregate', aggregator: a, value_path: p })
      .then((d) => (d.value === undefined ? null : d.value), () => null)))]));
  box.append(table(`Aggregates of ${w.key} over the window`, ['path', ...aggs], rows));
}

/* Render one widget into @p parent; @p data is a GET /metrics answer already fetched, if any. */
async function renderWidget(parent, w, data) {
  const win = windowOf(w.range);
  const box = el('section', { class: 'widget', 'data-mode': w.mode },
    el('h3', { text: w.title || `${w.key} · ${w.paths.join(', ')} · ${w.mode}` }));
  parent.append(box);
  if (w.mode === 'timeline') {
    if (!data) {
      const q = new URLSearchParams({ key: w.key, from: win.from, to: win.to,
        granularity: w.granularity });
      data = await api('GET', '/api/v1/metrics?' + q);
    }
    timeline(box, w, data);
  } else if (w.mode === 'category') {
    await category(box, w, win);
  } else {
    await aggregate(box, w, win);
  }
}

function clearCharts() {
  state.charts.forEach((u) => u.destroy());
  state.charts = [];
}

/* ---- Explore ------------------------------------------------------------------------------ */

function exploreRange() {
  const r = $('#range').value;
  if (r !== 'custom') return r;
  const f = new Date($('#from').value), t = new Date($('#to').value);
  if (isNaN(f) || isNaN(t) || t <= f) throw new Error('Choose a from time before the to time.');
  return { from: iso(f / 1000), to: iso(t / 1000) };
}

function exploreWidgets() {
  const base = { key: $('#key').value, granularity: $('#granularity').value,
    range: exploreRange(), aggregator: 'sum' };
  const paths = state.paths.filter((p) => state.checked.has(p));
  const list = [];
  if (paths.length) {
    list.push({ ...base, paths, mode: 'timeline' });
    list.push({ ...base, paths, mode: 'aggregate' });
  }
  const b = $('#breakdown').value.trim();
  if (b) list.push({ ...base, paths: [b], mode: 'category' });
  return list;
}

async function loadKeys() {
  const win = windowOf(exploreRange());
  const q = new URLSearchParams({ from: win.from, to: win.to, granularity: $('#granularity').value });
  const sys = await api('GET', '/api/v1/metrics?' + q);
  const keys = new Set();
  sys.values.forEach((v) => Object.keys(v.keys || {}).forEach((k) => keys.add(k)));
  const sel = $('#key'), keep = sel.value || sessionStorage.getItem('trifle.key');
  sel.replaceChildren(...[...keys].sort().map((k) => el('option', { value: k, text: k })));
  if (keys.has(keep)) sel.value = keep;
  if (!keys.size) say('No keys were tracked in this range.');
}

function renderPaths() {
  const box = $('#paths');
  box.replaceChildren(el('legend', { text: 'Value paths' }));
  if (!state.paths.some((p) => state.checked.has(p)) && state.paths.length)
    state.checked.add(state.paths.includes('count') ? 'count' : state.paths[0]);
  for (const p of state.paths) {
    const cb = el('input', { type: 'checkbox', value: p });
    cb.checked = state.checked.has(p);
    cb.addEventListener('change', () => {
      if (cb.checked) state.checked.add(p); else state.checked.delete(p);
      renderExplore().catch(fail);
    });
    box.append(el('label', null, cb, p));
  }
  const parents = new Set();
  state.paths.forEach((p) => p.split('.').slice(0, -1).forEach((_, i, a) =>
    parents.add(a.slice(0, i + 1).join('.'))));
  $('#parents').replaceChildren(...[...parents].map((p) => el('option', { value: p })));
}

async function loadExplore() {
  const key = $('#key').value;
  if (!key) { clearCharts(); $('#explore-widgets').replaceChildren(); return; }
  sessionStorage.setItem('trifle.key', key);
  const win = windowOf(exploreRange());
  const q = new URLSearchParams({ key, from: win.from, to: win.to, granularity: $('#granularity').value });
  state.series = await api('GET', '/api/v1/metrics?' + q);
  const paths = new Set();
  state.series.values.forEach((v) => leafPaths(v, '', paths));
  state.paths = [...paths].sort();
  renderPaths();
  await renderExplore();
  say(`${key}: ${state.series.at.length} points at ${$('#granularity').value}, updated ` +
    new Date().toLocaleTimeString());
}

async function renderExplore() {
  const box = $('#explore-widgets');
  const fresh = el('div');
  clearCharts();
  box.replaceChildren(fresh);
  for (const w of exploreWidgets())
    await renderWidget(fresh, w, w.mode === 'timeline' ? state.series : null);
}

function setRefresh() {
  clearInterval(state.timer);
  const secs = Number($('#refresh').value);
  if (secs > 0 && location.hash.replace(/^#\/?/, '') === '')
    state.timer = setInterval(() => loadExplore().catch(fail), secs * 1000);
}

function fillGranularities() {
  const opts = () => state.source.granularities.map((g) => el('option', { value: g, text: g }));
  $('#granularity').replaceChildren(...opts());
  $('#granularity').value = state.source.default_granularity;
  $('#mon-granularity').replaceChildren(...opts());
}

async function chooseSource(id) {
  state.source = state.sources.find((s) => s.id === id) || state.sources[0];
  sessionStorage.setItem('trifle.source', state.source.id);
  $('#source').value = state.source.id;
  fillGranularities();
  const ro = !state.source.write;
  document.querySelectorAll('button.write').forEach((b) => {
    b.disabled = ro;
    b.title = ro ? 'This token is read-only' : '';
  });
  $('#who').textContent = `${state.source.name} · ${ro ? 'read-only' : 'read and write'}`;
}

/* ---- Dashboards --------------------------------------------------------------------------- */

async function saveDashboard(ev) {
  ev.preventDefault();
  try {
    const widgets = exploreWidgets();
    if (!widgets.length) throw new Error('Choose at least one value path first.');
    const d = await api('POST', '/api/v1/dashboards',
      { dashboard: { name: $('#save-name').value.trim(), widgets } });
    $('#save-name').value = '';
    location.hash = '#/dashboards/' + d.id;
    say(`Saved dashboard "${d.name}".`);
  } catch (e) { fail(e); }
}

async function showDashboards(id) {
  clearCharts();
  $('#dash-widgets').replaceChildren();
  $('#dash-actions').hidden = !id;
  if (!id) {
    $('#dash-title').textContent = 'Dashboards';
    const list = await api('GET', '/api/v1/dashboards');
    $('#dash-list').replaceChildren(...list.map((d) => el('li', null,
      el('a', { href: '#/dashboards/' + d.id, text: d.name }),
      el('span', { class: 'muted', text: ` · ${d.widgets.length} widget(s)` }))));
    $('#dash-empty').hidden = list.length > 0;
    return;
  }
  $('#dash-list').replaceChildren();
  $('#dash-empty').hidden = true;
  const d = await api('GET', '/api/v1/dashboards/' + encodeURIComponent(id));
  $('#dash-title').textContent = d.name;
  $('#dash-delete').onclick = async () => {
    if (!confirm(`Delete the dashboard "${d.name}"?`)) return;
    try { await api('DELETE', '/api/v1/dashboards/' + d.id); location.hash = '#/dashboards'; }
    catch (e) { fail(e); }
  };
  for (const w of d.widgets) await renderWidget($('#dash-widgets'), w);
}

/* ---- Monitors ----------------------------------------------------------------------------- */

async function showMonitors() {
  const list = await api('GET', '/api/v1/monitors');
  const ro = !state.source.write;
  $('#mon-table tbody').replaceChildren(...list.map((m) => {
    const hist = el('details', null, el('summary', { text: `${m.history.length} change(s)` }),
      table(`History of ${m.name}`, ['at', 'state', 'value'],
        m.history.slice().reverse().map((h) => [h.at, h.state, h.value])));
    const del = el('button', { type: 'button', class: 'plain write', text: 'Delete' });
    del.disabled = ro;
    del.addEventListener('click', async () => {
      if (!confirm(`Delete the monitor "${m.name}"?`)) return;
      try { await api('DELETE', '/api/v1/monitors/' + m.id); await showMonitors(); }
      catch (e) { fail(e); }
    });
    const d = m.delivery;
    return el('tr', null, el('th', { scope: 'row', text: m.name }),
      el('td', { text: `${m.aggregator}(${m.key} ${m.value_path}, ${m.window}) ${m.condition} ${m.threshold}` }),
      el('td', null, el('span', { class: 'state ' + m.state, text: m.state })),
      el('td', { text: fmt(m.value) }), el('td', { text: m.evaluated_at || '–' }),
      el('td', { text: d ? d.status + (d.error ? ': ' + d.error : '') : '–' }),
      el('td', null, hist), el('td', null, del));
  }));
}

async function createMonitor(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target), body = Object.fromEntries(f.entries());
  body.threshold = Number(body.threshold);
  body.interval_s = Number(body.interval_s || 60);
  if (!body.name) delete body.name;
  try {
    await api('POST', '/api/v1/monitors', { monitor: body });
    ev.target.reset();
    await showMonitors();
    say('Monitor created.');
  } catch (e) { fail(e); }
}

/* ---- Routing and sign-in ------------------------------------------------------------------ */

function show(id) {
  for (const s of ['signin', 'explore', 'dashboards', 'monitors']) $('#' + s).hidden = s !== id;
  $('#views').hidden = $('#signout').hidden = id === 'signin';
  const hash = '#/' + (id === 'explore' ? '' : id);
  document.querySelectorAll('#views a').forEach((a) => {
    if (a.getAttribute('href') === hash) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
}

async function route() {
  if (!state.token) { show('signin'); $('#token').focus(); return; }
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  clearInterval(state.timer);
  try {
    if (parts[0] === 'dashboards') {
      show('dashboards');
      await showDashboards(parts[1] ? decodeURIComponent(parts[1]) : null);
    } else if (parts[0] === 'monitors') {
      show('monitors');
      await showMonitors();
    } else {
      show('explore');
      await loadKeys();
      await loadExplore();
      setRefresh();
    }
  } catch (e) { fail(e); }
}

async function signIn(token) {
  state.token = token;
  state.source = null;
  state.sources = await api('GET', '/api/v1/sources');
  if (!state.sources.length) throw new Error('This token may not read any source.');
  sessionStorage.setItem('trifle.token', token);
  $('#source').replaceChildren(...state.sources.map((s) =>
    el('option', { value: s.id, text: s.name })));
  await chooseSource(sessionStorage.getItem('trifle.source'));
}

function signOut(message) {
  sessionStorage.clear();
  state.token = null;
  clearInterval(state.timer);
  clearCharts();
  show('signin');
  say(message || '', Boolean(message));
}

function init() {
  const now = Math.floor(Date.now() / 1000);
  $('#from').value = localInput(now - 86400);
  $('#to').value = localInput(now);
  $('#signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await signIn($('#token').value.trim());
      $('#token').value = '';
      say('');
      await route();
    } catch (e) {
      state.token = null;
      say(e instanceof ApiError && e.status === 401 ? 'That token is not valid.' : e.message, true);
    }
  });
  $('#signout').addEventListener('click', () => signOut());
  $('#controls').addEventListener('submit', (ev) => {
    ev.preventDefault();
    loadExplore().then(setRefresh, fail);
  });
  $('#source').addEventListener('change', () => chooseSource($('#source').value).then(route));
  $('#key').addEventListener('change', () => loadExplore().catch(fail));
  for (const id of ['#granularity', '#range', '#from', '#to'])
    $(id).addEventListener('change', () => {
      document.querySelectorAll('.custom').forEach((c) => { c.hidden = $('#range').value !== 'custom'; });
      loadKeys().then(loadExplore).catch(fail);
    });
  $('#refresh').addEventListener('change', setRefresh);
  $('#save-form').addEventListener('submit', saveDashboard);
  $('#mon-form').addEventListener('submit', createMonitor);
  window.addEventListener('hashchange', route);
  let resize;
  window.addEventListener('resize', () => {
    clearTimeout(resize);
    resize = setTimeout(() => state.charts.forEach((u) => u.setSize(
      { width: Math.max(u.root.parentNode.clientWidth, 280), height: 240 })), 150);
  });
  if (state.token) signIn(state.token).then(route, (e) => signOut(e.message));
  else route();
}

init();
