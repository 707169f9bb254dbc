// reports.js: the Reports page (docs/console.md): every rule's and campaign's report
// in one table, sorted by any column (click its heading), with the holdout lift: the
// treated audience's conversion rate against the held-out one's, the difference with
// its 95% confidence interval, or "not enough data yet" while the sample is small.

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

const COLUMNS = [
  ['kind', (r) => r.kind], ['name', (r) => r.name], ['sent', (r) => Number(r.sent || 0)],
  ['clicked', (r) => Number(r.clicked || 0)], ['redeemed', (r) => Number(r.redeemed || 0)],
  ['revenue', (r) => Number(r.revenue || 0)],
  ['per 1000 pushes', (r) => Number(r.revenue_per_1000_pushes || 0)],
  ['lift', (r) => (r.lift.diff === undefined ? -Infinity : r.lift.diff)],
];

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
        return { ...r, kind, name, lift: liftOf(r.holdout) };
      } catch (e) {
        return e.status === 404 ? null : { kind, name, lift: { text: e.message } };
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
          class: i >= 2 && i < 7 ? 'num' : null, 'aria-sort': i === by ?
            (desc ? 'descending' : 'ascending') : null },
          el('button', { type: 'button', class: 'sort', onclick: () => {
            desc = by === i ? !desc : true;
            by = i;
            draw();
          } }, label))))),
        el('tbody', {}, rows.map((r) => el('tr', {},
          COLUMNS.map(([label, get2], i) => el('td', { class: i >= 2 && i < 7 ? 'num' : null },
            label === 'lift' ? r.lift.text : String(get2(r)))))))));
  };
  draw();
}
