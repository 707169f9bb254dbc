// people.js: the Subscribers and Replies pages (docs/console.md). A subscriber is
// looked up by id or by phone number: record (the number masked), channels, interests, consent now and
// its full history, for "when and how did this person opt in or out?" (admin).
// Replies: what subscribers texted back that was no keyword, newest first, the
// sender masked by the API, its subscriber and the deal it answers (the deal of the
// last push to the number before it, kept with the reply) (viewer).

import { api } from './api.js';
import { el, table } from './dom.js';

const masked = (p) => (typeof p === 'string' && p.length > 8 ?
  `${p.slice(0, 5)}\u2022\u2022\u2022${p.slice(-4)}` : p || '');
const when = (s) => (s ? new Date(Number(s) * 1000).toLocaleString() : '');

// One subscriber's record and its consent history, as elements.
async function subscriberView(subId) {
  const key = encodeURIComponent(subId);
  const s = await api('GET', `/v1/subscribers/${key}`);
  let c = { events: [], current: {} };
  try {
    c = await api('GET', `/v1/consent/${key}`);
  } catch (e) {
    if (e.status !== 404) throw e;
  }
  const i = s.interests || {};
  return [
    el('h3', {}, `Subscriber ${s.id}`),
    table(['', ''], [
      ['id', s.id], ['phone', masked(s.phone)], ['channels', (s.channels || []).join(', ')],
      ['time zone', s.timezone || ''], ['locale', s.locale || ''],
      ['interests', [...(i.categories || []), ...(i.brands || [])].join(', ')],
      ['consent now', Object.entries(c.current || {}).map(([k, v]) => `${k}: ${v}`)
        .join(', ')],
    ]),
    el('h4', {}, 'Consent history'),
    table(['when', 'channel', 'state', 'how', 'detail'],
      (c.events || []).map((e) => [e.at || e.raw || '', e.channel || '', e.state || '',
        e.how || '', e.detail || ''])),
  ];
}

// By id, or by phone number (E.164, exact: GET /v1/subscribers?phone=, every
// subscriber of the number is shown).
export function subscribersPage(page) {
  const id = el('input', { id: 'sub-id', 'aria-label': 'subscriber id or phone number',
    placeholder: 'subscriber id or +15125550100', required: true });
  const out = el('div', { id: 'sub-out' });
  const error = el('p', { class: 'error', role: 'alert' });
  const look = async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    out.replaceChildren();
    const v = id.value.trim();
    try {
      let ids = [v];
      if (v.startsWith('+')) {
        const r = await api('GET', `/v1/subscribers?phone=${encodeURIComponent(v)}`);
        ids = r.ids;
        if (ids.length === 0) {
          error.textContent = `No subscriber has the number ${r.phone}.`;
          return;
        }
        out.append(el('p', { id: 'sub-found' }, `${r.phone}: ${ids.length} subscriber` +
          `${ids.length === 1 ? '' : 's'}`));
      }
      for (const one of ids) out.append(...await subscriberView(one));
    } catch (e) {
      error.textContent = e.status === 404 ? 'No such subscriber.' :
        e.status === 403 ? 'Looking up subscribers needs the admin role.' :
          e.message;
    }
  };
  page('Subscribers', el('form', { id: 'sub-form', onsubmit: look }, id,
    el('button', { type: 'submit' }, 'Look up')), error, out);
}

export async function repliesPage(page) {
  const out = el('div', { id: 'replies' }, 'Loading…');
  const error = el('p', { class: 'error', role: 'alert' });
  page('Replies', out, error);
  try {
    const r = await api('GET', '/v1/replies?limit=100');
    out.replaceChildren(r.entries.length === 0 ? el('p', { class: 'muted' }, 'No replies yet.') :
      table(['received', 'from', 'subscriber', 'answers deal', 'channel', 'text', 'why kept'],
        r.entries.map((e) => [when(e.received_at), e.from || '', e.sub || '',
          e.deal ? el('a', { href: `#/deal/${encodeURIComponent(e.deal)}` }, e.deal) : '',
          e.channel || '', e.text || '', e.reason || ''])));
  } catch (e) {
    out.textContent = '';
    error.textContent = `Cannot read the replies: ${e.message}`;
  }
}
