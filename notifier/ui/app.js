// app.js: the console's start, sign-in and pages (docs/console.md). Pages are routed
// by the URL's hash (#/live, #/deal/<id>, #/rules); each page that shows live figures
// polls at most every 2 seconds, and stops when another page is shown.

import { api, setCsrf, whenUnauthorized } from './api.js';
import { codesPage } from './codes.js';
import { dealPage } from './deal.js';
import { el, table } from './dom.js';
import { gatewaysPage } from './gateways.js';
import { repliesPage, subscribersPage } from './people.js';
import { publishPage } from './publish.js';
import { reportsPage } from './reports.js';
import { ruleEditorPage, rulesPage } from './rules.js';

const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);
let timer = null;
let charts = [];
let me = null;

function stopPolling() {
  if (timer) clearInterval(timer);
  timer = null;
  for (const c of charts) c.destroy();
  charts = [];
}

// A chart the page drew: destroyed when another page is shown. Returns it.
function keepChart(c) {
  charts.push(c);
  return c;
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

// ---- start and routing ------------------------------------------------------------

function route() {
  stopPolling();
  if (!me) return;
  const h = location.hash || '#/live';
  const m = /^#\/deal\/(.+)$/.exec(h);
  const rm = /^#\/rules\/(.+)$/.exec(h);
  if (m) dealPage(page, canChange(), poll, keepChart, decodeURIComponent(m[1]));
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
