// reports.js: the Reports page (docs/console.md): every rule's and campaign's report
// in one table, sorted by any column (click its heading), with the holdout lift: the
// treated audience's conversion rate against the held-out one's, the difference with
// its 95% confidence interval, or "not enough data yet" while the sample is small;
// the halo revenue (other products bought after a push, never in "revenue"); and per
// channel (SMS, DM) the revenue each added against its own holdout, with its 95%
// interval (docs/attribution.md §5, §6).

import { api } from './api.js';
import { el } from './dom.js';

// Below these a lift is noise: said so rather than shown.
export const MIN_HOLDOUT = 100;        // held-out subscribers
export const MIN_CONVERSIONS = 10;     // conversions in both groups together

// The lift of a report's holdout: {text, diff, low, high}, or {text} alone.
export function liftOf(h) {
  if (!h) return { text: 'no holdout' };
  const n1 = Number(h.treated_audience || 0);
  const n2 = Number(h.audience || 0);
  const p1 = Number(h.treated_conversion_rate || 0);
  const p2 = Number(h.holdout_conversion_rate || 0);
  const conv = Math.round(p1 * n1) + Number(h.redeemed || 0);
  if (n1 === 0 || n2 < MIN_HOLDOUT || conv < MIN_CONVERSIONS)
    return { text: 'not enough data yet' };
  const diff = p1 - p2;
  const se = Math.sqrt((p1 * (1 - p1)) / n1 + (p2 * (1 - p2)) / n2);
  const low = diff - 1.96 * se;
  const high = diff + 1.96 * se;
  const pct = (x) => `${(x * 100).toFixed(2)} pts`;
  return { diff, low, high,
    text: `${diff >= 0 ? '+' : ''}${pct(diff)} (95%: ${pct(low)} to ${pct(high)})` };
}

// A channel's incremental revenue against its own holdout: {text, value}, the value
// null when there is none to sort by. ch is the report's channels.sms or channels.dm.
export function channelLiftOf(ch) {
  if (!ch || Number(ch.sent || 0) === 0) return { text: 'not sent', value: null };
  const inc = ch.incremental_revenue;
  const ci = ch.incremental_revenue_ci95;
  if (inc === null || inc === undefined || !Array.isArray(ci))
    return { text: 'no holdout yet', value: null };
  const money = (x) => `${x < 0 ? '-' : ''}${Math.abs(x).toFixed(2)}`;
  return { value: Number(inc),
    text: `${inc >= 0 ? '+' : ''}${money(Number(inc))} (95%: ${money(Number(ci[0]))} to ` +
      `${money(Number(ci[1]))})` };
}

const sortable = (v) => (v === null ? -Infinity : v);

const COLUMNS = [
  ['kind', (r) => r.kind], ['name', (r) => r.name], ['sent', (r) => Number(r.sent || 0)],
  ['clicked', (r) => Number(r.clicked || 0)], ['redeemed', (r) => Number(r.redeemed || 0)],
  ['revenue', (r) => Number(r.revenue || 0)],
  ['per 1000 pushes', (r) => Number(r.revenue_per_1000_pushes || 0)],
  ['halo revenue', (r) => Number(r.halo_revenue || 0)],
  ['lift', (r) => (r.lift.diff === undefined ? -Infinity : r.lift.diff)],
  ['SMS added', (r) => sortable(r.sms.value)],
  ['DM added', (r) => sortable(r.dm.value)],
];
const NUMERIC = new Set(['sent', 'clicked', 'redeemed', 'revenue', 'per 1000 pushes',
  'halo revenue']);
const TEXT = { lift: (r) => r.lift.text, 'SMS added': (r) => r.sms.text,
  'DM added': (r) => r.dm.text };

export async function reportsPage(page) {
  const out = el('div', { id: 'reports' }, 'Loading…');
  const error = el('p', { class: 'error', role: 'alert' });
  page('Reports', out, error);
  let rows = [];
  try {
    const rules = ((await api('GET', '/v1/rules')).rules || []).map((r) => ['rule', r.name]);
    const camps = [...new Set(((await api('GET', '/v1/deals')).deals || [])
      .map((d) => d.campaign).filter(Boolean))].map((c) => ['campaign', c]);
    rows = (await Promise.all([...rules, ...camps].map(async ([kind, name]) => {
      try {
        const r = await api('GET', `/v1/reports/${kind}/${encodeURIComponent(name)}`);
        const ch = r.channels || {};
        return { ...r, kind, name, lift: liftOf(r.holdout), sms: channelLiftOf(ch.sms),
          dm: channelLiftOf(ch.dm) };
      } catch (e) {
        const none = { text: '', value: null };
        return e.status === 404 ? null :
          { kind, name, lift: { text: e.message }, sms: none, dm: none };
      }
    }))).filter(Boolean);
  } catch (e) {
    out.textContent = '';
    error.textContent = `Cannot read the reports: ${e.message}`;
    return;
  }
  let by = 1;
  let desc = false;
  const draw = () => {
    const get = COLUMNS[by][1];
    rows.sort((a, b) => {
      const x = get(a);
      const y = get(b);
      return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1);
    });
    out.replaceChildren(rows.length === 0 ? el('p', { class: 'muted' }, 'Nothing counted yet.') :
      el('table', {},
        el('thead', {}, el('tr', {}, COLUMNS.map(([label], i) => el('th', {
          class: NUMERIC.has(label) ? 'num' : null, 'aria-sort': i === by ?
            (desc ? 'descending' : 'ascending') : null },
          el('button', { type: 'button', class: 'sort', onclick: () => {
            desc = by === i ? !desc : true;
            by = i;
            draw();
          } }, label))))),
        el('tbody', {}, rows.map((r) => el('tr', {},
          COLUMNS.map(([label, get2]) => el('td', { class: NUMERIC.has(label) ? 'num' : null },
            TEXT[label] ? TEXT[label](r) : String(get2(r)))))))));
  };
  draw();
}
