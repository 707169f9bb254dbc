// rulesdraft.js: the rule editor's draft simulation and version history
// (docs/console.md). A draft (the editor's text, not applied) is simulated against a
// recent deal (GET /v1/deals?payload=1) or a pasted deal document (POST
// /v1/deals/simulate with "draft"); the history is the source's audit entries (GET
// /v1/rules/<name>?history=1), each shown as a line diff of its text before and after.

import { api } from './api.js';
import { el, table } from './dom.js';

// The line diff of a and b: [['=', line] | ['-', line] | ['+', line]], from their
// longest common subsequence of lines (O(n x m): rule sources are small; over
// DIFF_MAX lines each, every line of a is removed and every line of b added).
const DIFF_MAX = 2000;
export function lineDiff(a, b) {
  const x = a === null || a === undefined ? [] : String(a).split('\n');
  const y = b === null || b === undefined ? [] : String(b).split('\n');
  if (x.length > DIFF_MAX || y.length > DIFF_MAX)
    return [...x.map((l) => ['-', l]), ...y.map((l) => ['+', l])];
  const n = x.length;
  const m = y.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) {
      out.push(['=', x[i]]);
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) {
      out.push(['-', x[i++]]);
    } else {
      out.push(['+', y[j++]]);
    }
  }
  while (i < n) out.push(['-', x[i++]]);
  while (j < m) out.push(['+', y[j++]]);
  return out;
}

function diffView(before, after) {
  return el('pre', { class: 'diff' }, lineDiff(before, after).map(([op, l]) =>
    el('span', { class: op === '+' ? 'add' : op === '-' ? 'del' : null },
      `${op === '=' ? ' ' : op} ${l}\n`)));
}

// The version history of source name, newest first, each with its diff.
export async function historySection(name) {
  const box = el('div', { id: 'rule-history' }, 'Loading…');
  try {
    const h = await api('GET', `/v1/rules/${encodeURIComponent(name)}?history=1`);
    if (h.versions.length === 0) {
      box.replaceChildren(el('p', { class: 'muted' }, 'No change recorded yet.'));
      return box;
    }
    box.replaceChildren(...h.versions.map((v) => el('details', { class: 'version' },
      el('summary', {}, `${new Date(v.ms).toLocaleString()} · ${v.who} · ` +
        `${v.what === 'rules.delete' ? 'deleted' : v.before === null ? 'created' : 'changed'}` +
        `${v.truncated ? ' (cut at 4 KiB)' : ''}`),
      diffView(v.before, v.after))));
    const first = box.querySelector('details');
    if (first) first.open = true;
  } catch (e) {
    box.replaceChildren(el('p', { class: 'error' }, `Cannot read the history: ${e.message}`));
  }
  return box;
}

// Simulating the editor's text (getText()) as source name against a deal.
export function draftSection(name, getText, canChange) {
  const pick = el('select', { id: 'draft-deal', 'aria-label': 'a recent deal' },
    el('option', { value: '' }, 'a recent deal…'));
  const pasted = el('textarea', { id: 'draft-json', rows: 4, spellcheck: 'false',
    'aria-label': 'or a deal document (JSON)', placeholder: 'or paste a deal document (JSON)' });
  const price = el('input', { id: 'draft-price', type: 'number', step: '0.0001', min: '0',
    value: '0.0079', 'aria-label': 'price of one SMS segment' });
  const run = el('button', { id: 'draft-simulate', type: 'button', class: 'secondary',
    disabled: !canChange }, 'Simulate the draft');
  const out = el('div', { id: 'draft-out' });
  const error = el('p', { class: 'error', role: 'alert' });
  const recent = new Map();
  (async () => {
    try {
      const r = await api('GET', '/v1/deals?payload=1');
      for (const d of r.deals) {
        if (!d.payload) continue;
        recent.set(d.deal, d.payload);
        pick.append(el('option', { value: d.deal }, `${d.title || d.deal} (${d.deal})`));
      }
    } catch {
      // pasting still works
    }
  })();
  run.addEventListener('click', async () => {
    error.textContent = '';
    let deal = recent.get(pick.value);
    if (pasted.value.trim()) {
      try {
        deal = JSON.parse(pasted.value);
      } catch (e) {
        error.textContent = `The deal document is not JSON: ${e.message}`;
        return;
      }
    }
    if (!deal) {
      error.textContent = 'Pick a recent deal or paste a deal document.';
      return;
    }
    try {
      const s = await api('POST', '/v1/deals/simulate',
        { deal, draft: { name, text: getText() } });
      showDraft(out, s, Number(price.value) || 0);
    } catch (e) {
      const list = (e.body && e.body.errors) || [];
      error.textContent = list.length ? `The draft does not compile: ${list.map((x) =>
        `${x.line}:${x.column}: ${x.message}`).join('; ')}` :
        e.body && e.body.field ? `${e.body.field}: ${e.message}` : e.message;
      out.replaceChildren();
    }
  });
  return el('div', { id: 'draft' }, el('h3', {}, 'Simulate the draft'),
    el('div', { class: 'row' }, pick, ' ', el('label', { for: 'draft-price' }, 'segment price'),
      ' ', price, ' ', run), pasted, error, out);
}

function showDraft(out, s, segPrice) {
  const sample = (s.sample || []).slice(0, 20);
  const sms = sample.filter((x) => x.channel === 'sms');
  const avg = sms.length ? sms.reduce((n, x) => n + Number(x.segments || 0), 0) / sms.length : 0;
  const smsPushes = Number((s.by_channel || {}).sms || 0);
  out.replaceChildren(
    table(['', 'count'], [
      ['audience (recipients)', Number(s.recipients || 0)],
      ['pushes', Number(s.pushes || 0)],
      ['matched', Number(s.matched || 0)],
      ...Object.entries(s.excluded || {}).map(([k, v]) => [`excluded: ${k}`, Number(v)]),
      ...Object.entries(s.deferred || {}).map(([k, v]) => [`deferred: ${k}`, Number(v)]),
      ['estimated SMS cost', `${(smsPushes * avg * segPrice).toFixed(2)} ` +
        `(${smsPushes} SMS × ${avg.toFixed(2)} segments × ${segPrice})`],
    ]),
    el('h4', {}, 'Sample texts'),
    table(['subscriber', 'channel', 'rule', 'text', 'segments', 'cost'],
      sample.map((x) => [x.subscriber, x.channel, x.rule, x.text, Number(x.segments || 0),
        x.channel === 'sms' ? (Number(x.segments || 0) * segPrice).toFixed(4) : ''])));
  out.dataset.recipients = String(s.recipients || 0);
}
