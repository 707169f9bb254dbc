// app.js: the console's start, sign-in and pages (docs/console.md). Pages are routed
// by the URL's hash (#/live, #/deal/<id>, #/rules); each page that shows live figures
// polls at most every 2 seconds, and stops when another page is shown.

import { api, setCsrf, whenUnauthorized } from './api.js';
import { codesPage } from './codes.js';
import { el, table } from './dom.js';
import { gatewaysPage } from './gateways.js';
import { repliesPage, subscribersPage } from './people.js';
import { publishPage } from './publish.js';
import { reportsPage } from './reports.js';
import { ruleEditorPage, rulesPage } from './rules.js';

const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);
let timer = null;
let chart = null;
let me = null;

function stopPolling() {
  if (timer) clearInterval(timer);
  timer = null;
  if (chart) chart.destroy();
  chart = null;
}

function showSignIn(message) {
  stopPolling();
  me = null;
  $('nav').hidden = true;
  $('who').hidden = true;
  $('page').hidden = true;
  $('sign-in').hidden = false;
  $('sign-in-error').textContent = message || '';
}

async function signIn(ev) {
  ev.preventDefault();
  const token = $('token').value.trim();
  $('sign-in-error').textContent = '';
  try {
    const s = await api('POST', '/v1/session', { token });
    setCsrf(s.csrf_token);
    $('token').value = '';
    await start();
  } catch (e) {
    $('sign-in-error').textContent = e.status === 401 ? 'That token is not valid.' :
      `Sign-in failed: ${e.message}`;
  }
}

async function signOut() {
  try {
    await api('DELETE', '/v1/session');
  } catch {
    // signed out either way
  }
  setCsrf(null);
  showSignIn('Signed out.');
}

function page(title, ...children) {
  const p = $('page');
  p.replaceChildren(el('h2', {}, title), ...children);
  p.hidden = false;
  for (const a of document.querySelectorAll('#nav a'))
    a.classList.toggle('active', location.hash.startsWith(a.getAttribute('href')));
}

function poll(fn) {
  fn();
  timer = setInterval(fn, POLL_MS);
}

const canChange = () => me && (me.role === 'marketer' || me.role === 'admin');

// ---- Live: the deals on now, the global pause, and a way to a deal ----------------

// Seconds the notifier's clock is ahead of this browser's (its answer says its now).
let skew = 0;

const left = (t) => {
  const s = Math.max(0, Math.floor(t - (Date.now() / 1000 + skew)));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return s === 0 ? 'ended' : `${h > 0 ? `${h}h ` : ''}${m}m ${s % 60}s`;
};

function livePage() {
  const state = el('p', { id: 'pause-state' }, 'Loading…');
  const error = el('p', { class: 'error', role: 'alert' });
  const reason = el('input', { id: 'pause-reason', 'aria-label': 'pause reason',
    placeholder: 'reason (optional)' });
  const pauseBtn = el('button', { id: 'pause', type: 'button' }, 'Pause all sending');
  const resumeBtn = el('button', { id: 'resume', type: 'button', class: 'secondary' },
    'Resume');
  const deal = el('input', { id: 'deal-id', 'aria-label': 'deal id', placeholder: 'deal id',
    required: true });
  const deals = el('div', { id: 'live-deals' }, 'Loading…');
  let shown = [];
  const refresh = async () => {
    try {
      const p = await api('GET', '/v1/pause');
      state.replaceChildren(
        el('span', { class: p.paused ? 'badge paused' : 'badge' },
          p.paused ? 'Paused' : 'Sending'),
        p.paused && p.reason ? ` ${p.reason}` : '');
      pauseBtn.disabled = !canChange() || p.paused;
      resumeBtn.disabled = !canChange() || !p.paused;
      const answer = await api('GET', '/v1/deals');
      if (typeof answer.now === 'number') skew = answer.now - Date.now() / 1000;
      const list = answer.deals || [];
      shown = await Promise.all(list.slice(0, 20).map(async (d) => {
        try {
          return { ...d, status: await api('GET', `/v1/deals/${encodeURIComponent(d.deal)}`) };
        } catch {
          return { ...d, status: { state: 'unknown', counts: {} } };
        }
      }));
      draw();
      error.textContent = '';
    } catch (e) {
      error.textContent = `Cannot read the live state: ${e.message}`;
    }
  };
  // The countdown moves every second between two polls.
  const draw = () => {
    deals.replaceChildren(shown.length === 0 ? el('p', { class: 'muted' }, 'No deal on now.') :
      table(['deal', 'state', 'time left', 'planned', 'sent', 'delivered', 'clicked',
        'redeemed', 'revenue'], shown.map((d) => {
        const c = d.status.counts || {};
        return [el('a', { href: `#/deal/${encodeURIComponent(d.deal)}` }, d.title || d.deal),
          d.status.state, left(d.expires_at), Number(c.planned || 0), Number(c.sent || 0),
          Number(c.delivered || 0), Number(c.clicked || 0), Number(c.redeemed || 0),
          Number(c.revenue || 0)];
      })));
  };
  const change = async (path, body) => {
    try {
      await api('POST', path, body);
      await refresh();
    } catch (e) {
      error.textContent = e.message;
    }
  };
  pauseBtn.addEventListener('click', () => change('/v1/pause',
    reason.value.trim() ? { reason: reason.value.trim() } : {}));
  resumeBtn.addEventListener('click', () => change('/v1/resume', {}));
  page('Live', state, el('div', {}, reason, ' ', pauseBtn, ' ', resumeBtn), error,
    el('h3', {}, 'Deals on now'), deals,
    el('h3', {}, 'A deal'),
    el('form', { id: 'deal-form', onsubmit: (ev) => {
      ev.preventDefault();
      if (deal.value.trim()) location.hash = `#/deal/${encodeURIComponent(deal.value.trim())}`;
    } }, deal, el('button', { type: 'submit' }, 'Show')));
  poll(refresh);
  const tick = setInterval(() => {
    if (!document.getElementById('live-deals')) clearInterval(tick);
    else if (shown.length) draw();
  }, 1000);
}

// ---- Deal: the funnel as a chart ----------------------------------------------

const FUNNEL = ['matched', 'admitted', 'sent', 'delivered', 'clicked', 'redeemed'];

function dealPage(id) {
  const error = el('p', { class: 'error', role: 'alert' });
  const state = el('p', { id: 'deal-state' });
  const canvas = el('canvas', { id: 'funnel', 'aria-label': 'funnel' });
  const figures = el('div', { id: 'figures' });
  const cancel = el('button', { id: 'cancel-deal', type: 'button', class: 'secondary',
    disabled: !canChange() }, 'Cancel this deal');
  cancel.addEventListener('click', async () => {
    if (!window.confirm(`Cancel ${id}? Pushes not sent yet will not be sent.`)) return;
    try {
      await api('POST', '/v1/deals', { id, cancel: true });
      error.textContent = '';
    } catch (e) {
      error.textContent = e.message;
    }
  });
  page(`Deal ${id}`, state, cancel, el('div', { class: 'chart' }, canvas), figures, error);
  const refresh = async () => {
    let r;
    try {
      const s = await api('GET', `/v1/deals/${encodeURIComponent(id)}`);
      state.replaceChildren(el('span', { class: 'badge' }, s.state),
        s.dead_letter ? ` ${s.dead_letter.reason}: ${s.dead_letter.error || ''}` : '',
        s.expires_at ? ` · ends ${new Date(s.expires_at * 1000).toLocaleString()}` : '');
    } catch (e) {
      state.textContent = e.status === 404 ? 'No such deal.' : '';
    }
    try {
      r = await api('GET', `/v1/reports/deal/${encodeURIComponent(id)}`);
    } catch (e) {
      error.textContent = e.status === 404 ? 'Nothing counted for this deal yet.' :
        `Cannot read the report: ${e.message}`;
      return;
    }
    error.textContent = '';
    const values = FUNNEL.map((k) => Number(r[k] || 0));
    if (!chart && window.Chart) {
      chart = new window.Chart(canvas, {
        type: 'bar',
        data: { labels: FUNNEL, datasets: [{ label: 'pushes', data: values,
          backgroundColor: '#2f6fde' }] },
        options: { animation: false, maintainAspectRatio: false,
          plugins: { legend: { display: false } } },
      });
    } else if (chart) {
      chart.data.datasets[0].data = values;
      chart.update();
    }
    const rows = FUNNEL.map((k) => [k, Number(r[k] || 0)]);
    rows.push(['revenue', Number(r.revenue || 0)]);
    const skipped = Object.entries(r.skipped || {}).map(([k, v]) => [k, Number(v)]);
    figures.replaceChildren(table(['counter', 'value'], rows),
      skipped.length ? el('h3', {}, 'Skipped, by reason') : '',
      skipped.length ? table(['reason', 'pushes'], skipped) : '');
  };
  poll(refresh);
}

// ---- start and routing ------------------------------------------------------------

function route() {
  stopPolling();
  if (!me) return;
  const h = location.hash || '#/live';
  const m = /^#\/deal\/(.+)$/.exec(h);
  const rm = /^#\/rules\/(.+)$/.exec(h);
  if (m) dealPage(decodeURIComponent(m[1]));
  else if (rm) ruleEditorPage(page, decodeURIComponent(rm[1]), canChange());
  else if (h === '#/rules') rulesPage(page);
  else if (h === '#/publish') publishPage(page, canChange());
  else if (h === '#/codes') codesPage(page, canChange());
  else if (h === '#/reports') reportsPage(page);
  else if (h === '#/subscribers') subscribersPage(page);
  else if (h === '#/replies') repliesPage(page);
  else if (h === '#/gateways') gatewaysPage(page, poll);
  else if (h === '#/deal') livePage();
  else livePage();
}

async function start() {
  try {
    me = await api('GET', '/v1/session');
  } catch {
    showSignIn('');
    return;
  }
  $('sign-in').hidden = true;
  $('nav').hidden = false;
  $('who').hidden = false;
  $('who-name').textContent = `${me.name} (${me.role})`;
  route();
}

whenUnauthorized(() => showSignIn('Your session ended: sign in again.'));
$('sign-in-form').addEventListener('submit', signIn);
$('sign-out').addEventListener('click', signOut);
window.addEventListener('hashchange', route);
start();
