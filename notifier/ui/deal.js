// deal.js: the Deal page (docs/console.md): the state, a guard's confirmation, the
// funnel as a bar chart, the per-minute series as a line chart, codes left, the A/B
// tests and their standing, skips by reason, cancel. Polls every 2 s through the
// caller's poll().

import { api } from './api.js';
import { el, table } from './dom.js';

const FUNNEL = ['matched', 'admitted', 'sent', 'delivered', 'clicked', 'redeemed'];
const SERIES = [['sent', '#2f6fde'], ['delivered', '#2e9d5b'], ['clicked', '#f0b400'],
  ['redeemed', '#b3261e']];
const SERIES_MIN_SHOWN = 30;   // minutes shown at least, up to the notifier's now

// "HH:MM" of epoch seconds t, in the browser's zone.
const hhmm = (t) => new Date(t * 1000).toTimeString().slice(0, 5);

// A box that shows when deal id waits for a guard's confirmation, with a Confirm
// button for a marketer (POST /v1/deals/<id>/confirm, audited as deals.confirm).
// update(status) takes the deal's GET /v1/deals/<id> answer.
export function guardBox(id, canChange) {
  const box = el('div', { id: 'guard', class: 'guard', hidden: true });
  const why = el('p', {});
  const note = el('p', { class: 'error', role: 'alert' });
  const confirm = el('button', { id: 'confirm-deal', type: 'button', disabled: !canChange },
    'Confirm and send');
  confirm.addEventListener('click', async () => {
    confirm.disabled = true;
    try {
      const r = await api('POST', `/v1/deals/${encodeURIComponent(id)}/confirm`);
      note.textContent = '';
      why.textContent = r.published_now === false ? 'It was confirmed before.' :
        'Confirmed: the deal is queued to go out.';
    } catch (e) {
      note.textContent = e.message;
      confirm.disabled = !canChange;
    }
  });
  box.append(el('h3', {}, 'Waiting for a confirmation'), why, confirm, note);
  const update = (s) => {
    const waiting = s && s.state === 'waiting_confirmation';
    box.hidden = !waiting;
    if (waiting && s.dead_letter)
      why.textContent = `The guards held it: ${s.dead_letter.error || s.dead_letter.reason}`;
  };
  return { box, update };
}

const pct = (x) => (x === null || x === undefined ? '–' : `${(Number(x) * 100).toFixed(1)}%`);
const conf = (c) => `${(Number(c) * 100).toFixed(1)}% confident`;
const HOW = { early: 'won early (sequential test)', final: 'won at the end of the window',
  fallback: 'no clear winner: the fallback', expiry: 'the deal ended first: decided then' };

// One A/B test of a deal's report (ab_tests[rule], docs/api.md): the line that says
// where it stands, and the rows of its variants [name, sent, clicked, redeemed, click
// rate, redemption rate].
export function abSummary(rule, t) {
  let line;
  if (t.state === 'decided' && t.decision) {
    const d = t.decision;
    line = `${rule}: ${d.variant} ${HOW[d.how] || d.how}` +
      (d.z !== null && d.z !== undefined ? ` (z ${Number(d.z).toFixed(2)}, ` +
        `${conf(d.confidence)})` : '') + `; the rest (${t.held}) gets ${d.variant}` +
      `, ${t.released} sent so far.`;
  } else {
    const st = t.standing || {};
    line = `${rule}: running, by ${t.metric}, decided by ` +
      `${new Date(t.decide_by).toLocaleTimeString()} at the latest; ` +
      (st.best ? `best so far ${st.best} (z ${Number(st.z).toFixed(2)}, ${conf(st.confidence)})`
        : 'no leader yet') + `; ${t.held} held back (fallback ${t.fallback}).`;
  }
  const rows = Object.entries(t.variants || {}).map(([name, v]) => [name,
    Number(v.sent || 0), Number(v.clicked || 0), Number(v.redeemed || 0),
    pct(v.click_rate), pct(v.redemption_rate)]);
  return { line, rows };
}

// The index of the first minute to chart: the first with a count, so that the
// chart starts where the deal did, but at least SERIES_MIN_SHOWN minutes back.
function firstShown(s) {
  const n = s.series.sent.length;
  let first = n;
  for (const [k] of SERIES) {
    const i = s.series[k].findIndex((v) => v > 0);
    if (i >= 0 && i < first) first = i;
  }
  return Math.max(0, Math.min(first, n - SERIES_MIN_SHOWN));
}

export function dealPage(page, canChange, poll, keepChart, id) {
  const error = el('p', { class: 'error', role: 'alert' });
  const state = el('p', { id: 'deal-state' });
  const guard = guardBox(id, canChange);
  const canvas = el('canvas', { id: 'funnel', 'aria-label': 'funnel' });
  const lineCanvas = el('canvas', { id: 'series', 'aria-label': 'pushes per minute' });
  const seriesNote = el('p', { id: 'series-note', class: 'muted' });
  const codes = el('p', { id: 'deal-codes' });
  const ab = el('div', { id: 'deal-ab' });
  const figures = el('div', { id: 'figures' });
  const cancel = el('button', { id: 'cancel-deal', type: 'button', class: 'secondary',
    disabled: !canChange }, 'Cancel this deal');
  let funnel = null;
  let line = null;
  cancel.addEventListener('click', async () => {
    if (!window.confirm(`Cancel ${id}? Pushes not sent yet will not be sent.`)) return;
    try {
      await api('POST', '/v1/deals', { id, cancel: true });
      error.textContent = '';
    } catch (e) {
      error.textContent = e.message;
    }
  });
  page(`Deal ${id}`, state, guard.box, cancel, el('div', { class: 'chart' }, canvas),
    codes, ab, el('h3', {}, 'Per minute'), el('div', { class: 'chart' }, lineCanvas),
    seriesNote, figures, error);

  // The last 6 hours up to the notifier's now (the API's default range).
  const drawSeries = async () => {
    let s;
    try {
      s = await api('GET', `/v1/deals/${encodeURIComponent(id)}/series`);
    } catch (e) {
      seriesNote.textContent = e.status === 404 ? 'Nothing counted yet.' :
        `Cannot read the series: ${e.message}`;
      return;
    }
    const first = firstShown(s);
    for (const [k] of SERIES) s.series[k] = s.series[k].slice(first);
    const labels = s.series.sent.map((_, i) => hhmm(s.from + (first + i) * s.step_s));
    const total = SERIES.reduce((n, [k]) => n + s.series[k].reduce((a, b) => a + b, 0), 0);
    seriesNote.textContent = total === 0 ? 'Nothing counted yet.' :
      `${labels[0]} to ${labels[labels.length - 1]}, one point a minute.`;
    lineCanvas.dataset.total = String(total);
    if (!line && window.Chart) {
      line = keepChart(new window.Chart(lineCanvas, {
        type: 'line',
        data: { labels, datasets: SERIES.map(([k, c]) => ({ label: k, data: s.series[k],
          borderColor: c, backgroundColor: c, pointRadius: 0, tension: 0 })) },
        options: { animation: false, maintainAspectRatio: false,
          scales: { y: { beginAtZero: true } } },
      }));
    } else if (line) {
      line.data.labels = labels;
      SERIES.forEach(([k], i) => { line.data.datasets[i].data = s.series[k]; });
      line.update();
    }
  };

  const refresh = async () => {
    let r;
    try {
      const status = await api('GET', `/v1/deals/${encodeURIComponent(id)}`);
      state.replaceChildren(el('span', { class: 'badge' }, status.state),
        status.dead_letter ? ` ${status.dead_letter.reason}: ${status.dead_letter.error || ''}` : '',
        status.expires_at ? ` · ends ${new Date(status.expires_at * 1000).toLocaleString()}` : '');
      guard.update(status);
    } catch (e) {
      state.textContent = e.status === 404 ? 'No such deal.' : '';
    }
    drawSeries();
    try {
      r = await api('GET', `/v1/reports/deal/${encodeURIComponent(id)}`);
    } catch (e) {
      error.textContent = e.status === 404 ? 'Nothing counted for this deal yet.' :
        `Cannot read the report: ${e.message}`;
      return;
    }
    error.textContent = '';
    const values = FUNNEL.map((k) => Number(r[k] || 0));
    if (!funnel && window.Chart) {
      funnel = keepChart(new window.Chart(canvas, {
        type: 'bar',
        data: { labels: FUNNEL, datasets: [{ label: 'pushes', data: values,
          backgroundColor: '#2f6fde' }] },
        options: { animation: false, maintainAspectRatio: false,
          plugins: { legend: { display: false } } },
      }));
    } else if (funnel) {
      funnel.data.datasets[0].data = values;
      funnel.update();
    }
    if (r.codes_left === null || r.codes_left === undefined) {
      codes.textContent = '';
    } else {
      const left = Number(r.codes_left);
      codes.replaceChildren('Codes left: ', el('strong', {}, left.toLocaleString('en-US')),
        left === 0 ? el('span', { class: 'badge paused' }, ' sold out') : '');
      codes.dataset.left = String(left);
    }
    const tests = Object.entries(r.ab_tests || {});
    ab.replaceChildren(...(tests.length ? [el('h3', {}, 'A/B tests')] : []),
      ...tests.flatMap(([rule, t]) => {
        const { line, rows: vr } = abSummary(rule, t);
        return [el('p', { class: 'ab-line' }, line), table(['variant', 'sent', 'clicked',
          'redeemed', 'click rate', 'redemption rate'], vr)];
      }));
    const rows = FUNNEL.map((k) => [k, Number(r[k] || 0)]);
    rows.push(['revenue', Number(r.revenue || 0)]);
    const skipped = Object.entries(r.skipped || {}).map(([k, v]) => [k, Number(v)]);
    figures.replaceChildren(table(['counter', 'value'], rows),
      el('h3', {}, 'Skipped, by reason'),
      skipped.length ? table(['reason', 'pushes'], skipped) :
        el('p', { class: 'muted' }, 'None skipped.'));
  };
  poll(refresh);
}
