// gateways.js: the Gateways page (docs/console.md), from the notifier's /metrics:
// each gateway's breaker, requests in flight, pushes by outcome, its 429 answers
// (dealpush_gateway_rate_limited_total), and the send rate
// between two looks (it polls every 2 s while shown).

import { el, table } from './dom.js';

const BREAKER = ['closed', 'open', 'half-open'];

// name{labels} value lines of the Prometheus text, for the names wanted.
function parse(text) {
  const rows = [];
  for (const line of text.split('\n')) {
    const m = /^(dealpush_[a-z_]+)\{([^}]*)\} ([0-9.eE+-]+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const kv of m[2].matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[kv[1]] = kv[2];
    rows.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return rows;
}

export function gatewaysPage(page, poll) {
  const out = el('div', { id: 'gateways' }, 'Loading…');
  const error = el('p', { class: 'error', role: 'alert' });
  let before = null;
  page('Gateways', out, error);
  poll(async () => {
    let text;
    try {
      const r = await fetch('/metrics', { cache: 'no-store' });
      text = await r.text();
    } catch (e) {
      error.textContent = `Cannot read /metrics: ${e.message}`;
      return;
    }
    error.textContent = '';
    const gw = {};
    const get = (n) => (gw[n] ||= { breaker: 0, inflight: 0, sent: 0, failed: 0, unknown: 0,
      limited: 0 });
    for (const m of parse(text)) {
      const g = m.labels.gateway;
      if (!g) continue;
      if (m.name === 'dealpush_gateway_breaker_state') get(g).breaker = m.value;
      else if (m.name === 'dealpush_gateway_in_flight') get(g).inflight = m.value;
      else if (m.name === 'dealpush_gateway_rate_limited_total') get(g).limited = m.value;
      else if (m.name === 'dealpush_pushes_total') {
        const o = m.labels.outcome;
        if (o === 'sent' || o === 'failed' || o === 'unknown') get(g)[o] += m.value;
      }
    }
    const now = Date.now();
    const rows = Object.entries(gw).map(([name, g]) => {
      const prev = before && before.gw[name];
      const rate = prev ? ((g.sent - prev.sent) * 1000) / (now - before.at) : 0;
      return [name, BREAKER[g.breaker] || String(g.breaker), g.inflight, g.sent, g.failed,
        g.unknown, g.limited, Math.round(rate * 10) / 10];
    });
    before = { at: now, gw };
    out.replaceChildren(rows.length === 0 ? el('p', { class: 'muted' }, 'No gateway yet.') :
      table(['gateway', 'breaker', 'in flight', 'sent', 'failed', 'unknown', '429s',
        'sent/s'], rows));
  });
}
