// publish.js: the Publish page (docs/console.md): a deal form, simulate first (who,
// how many, the texts), a test send to named subscribers, then publish.

import { api } from './api.js';
import { guardBox } from './deal.js';
import { el, table } from './dom.js';

const FIELDS = [
  ['id', 'Deal id', 'text', true],
  ['title', 'Title', 'text', true],
  ['url', 'Link to the deal', 'url', true],
  ['price', 'Price', 'number', false],
  ['list_price', 'List price', 'number', false],
  ['currency', 'Currency', 'text', false],
  ['category', 'Category', 'text', false],
  ['brand', 'Brand', 'text', false],
  ['campaign', 'Campaign', 'text', false],
  ['code', 'Code (shared)', 'text', false],
  ['code_pool', 'Code pool (codes:name)', 'text', false],
  ['quantity', 'Quantity (first N)', 'number', false],
  ['starts_in', 'Starts in (minutes)', 'number', false],
  ['expires_in', 'Ends in (minutes)', 'number', true],
];

// The deal document of the form's values, its start and end counted from now (the
// notifier's clock, which may be moved: a deal is timed on it, not on this browser's);
// throws with a message when incomplete.
function dealOf(form, now) {
  const v = (k) => form.elements[k].value.trim();
  const d = {};
  for (const [k, , type] of FIELDS) {
    if (k === 'starts_in' || k === 'expires_in' || v(k) === '') continue;
    d[k] = type === 'number' ? Number(v(k)) : v(k);
  }
  const ends = Number(v('expires_in'));
  if (!(ends > 0)) throw new Error('Ends in: a number of minutes above 0');
  d.expires_at = now + Math.round(ends * 60);
  if (v('starts_in') !== '') d.starts_at = now + Math.round(Number(v('starts_in')) * 60);
  return d;
}

export function publishPage(page, canChange) {
  const form = el('form', { id: 'publish-form' });
  for (const [k, label, type, required] of FIELDS) {
    form.append(el('label', { for: `f-${k}` }, label),
      el('input', { id: `f-${k}`, name: k, type: type === 'number' ? 'text' : type,
        inputmode: type === 'number' ? 'decimal' : null, required,
        value: k === 'currency' ? 'USD' : k === 'expires_in' ? '60' : null }));
  }
  const testTo = el('input', { id: 'test-to', 'aria-label': 'test send to',
    placeholder: 'subscriber ids, comma-separated' });
  const out = el('div', { id: 'publish-out' });
  const error = el('p', { class: 'error', role: 'alert', id: 'publish-error' });
  const run = async (what) => {
    error.textContent = '';
    let d;
    try {
      const clock = await api('GET', '/v1/deals');
      d = dealOf(form, Math.floor(typeof clock.now === 'number' ? clock.now :
        Date.now() / 1000));
    } catch (e) {
      error.textContent = e.message;
      return;
    }
    try {
      if (what === 'simulate') {
        showSimulation(out, await api('POST', '/v1/deals/simulate', d));
      } else if (what === 'test') {
        const ids = testTo.value.split(',').map((s) => s.trim()).filter(Boolean);
        if (ids.length === 0) throw new Error('name at least one subscriber to test with');
        const t = { ...d, id: `${d.id}.test-${Date.now()}`, campaign: 'test', test_to: ids };
        const r = await api('POST', '/v1/deals', t);
        out.replaceChildren(el('p', { id: 'published' }, `Test send published as ${r.deal}. `,
          el('a', { href: `#/deal/${encodeURIComponent(r.deal)}` }, 'Watch it')));
      } else {
        const r = await api('POST', '/v1/deals', d);
        const guard = guardBox(r.deal, canChange);
        out.replaceChildren(el('p', { id: 'published' }, `Published ${r.deal}. `,
          el('a', { href: `#/deal/${encodeURIComponent(r.deal)}` }, 'Watch it go out')),
          guard.box);
        watchGuard(r.deal, guard);
      }
    } catch (e) {
      error.textContent = e.body && e.body.field ? `${e.body.field}: ${e.message}` : e.message;
    }
  };
  const button = (id, label, what, cls) => el('button', { id, type: 'button', class: cls,
    disabled: !canChange, onclick: () => run(what) }, label);
  page('Publish', form,
    el('div', {}, button('simulate', 'Simulate', 'simulate', 'secondary'), ' ',
      testTo, ' ', button('test-send', 'Test send', 'test', 'secondary'), ' ',
      button('publish', 'Publish', 'publish')),
    error, out);
}

// Looks at a deal just published once a second for GUARD_LOOKS seconds, while the
// page shows it: a deal the guards held shows the confirmation (deal.js).
const GUARD_LOOKS = 15;
async function watchGuard(id, guard) {
  for (let i = 0; i < GUARD_LOOKS && document.contains(guard.box); i++) {
    try {
      const s = await api('GET', `/v1/deals/${encodeURIComponent(id)}`);
      guard.update(s);
      if (s.state !== 'planning' && s.state !== 'queued') return;
    } catch {
      // not read by ingest yet (404): look again
    }
    await new Promise((done) => setTimeout(done, 1000));
  }
}

function showSimulation(out, s) {
  const ex = s.excluded || {};
  out.replaceChildren(
    el('h3', {}, 'Simulation'),
    table(['', 'count'], [
      ['recipients', Number(s.recipients || 0)],
      ['pushes', Number(s.pushes || 0)],
      ['by sms', Number((s.by_channel || {}).sms || 0)],
      ['by dm', Number((s.by_channel || {}).dm || 0)],
      ['held out', Number(s.held_out || 0)],
      ...Object.entries(ex).map(([k, v]) => [`excluded: ${k}`, Number(v)]),
      ...Object.entries(s.deferred || {}).map(([k, v]) => [`deferred: ${k}`, Number(v)]),
    ]),
    el('h3', {}, 'Sample texts'),
    table(['subscriber', 'channel', 'rule', 'text', 'segments'],
      (s.sample || []).slice(0, 20).map((x) => [x.subscriber, x.channel, x.rule, x.text,
        Number(x.segments || 0)])));
  out.id = 'publish-out';
  out.dataset.recipients = String(s.recipients || 0);
}
