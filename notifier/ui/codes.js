// codes.js: the Codes page (docs/console.md): fill a code pool from pasted text or a
// file (one code a line, or CSV whose first column is the code) and see what is left.

import { api } from './api.js';
import { el, table } from './dom.js';

// The codes of a CSV or plain text: the first field of each line.
function codesOf(text) {
  return text.split(/\r?\n/).map((l) => l.split(',')[0].trim().replace(/^"|"$/g, ''))
    .filter((c) => c !== '' && !c.startsWith('#')).join('\n');
}

export function codesPage(page, canChange) {
  const pool = el('input', { id: 'pool', 'aria-label': 'code pool name',
    placeholder: 'pool name, e.g. summer', required: true });
  const text = el('textarea', { id: 'codes-text', rows: 8, cols: 40, 'aria-label': 'codes',
    placeholder: 'one code a line, or a CSV file' });
  const file = el('input', { id: 'codes-file', type: 'file', 'aria-label': 'a file of codes',
    accept: '.txt,.csv,text/plain,text/csv' });
  const out = el('div', { id: 'codes-out' });
  const error = el('p', { class: 'error', role: 'alert' });
  file.addEventListener('change', async () => {
    if (file.files[0]) text.value = await file.files[0].text();
  });
  const name = () => encodeURIComponent(pool.value.trim());
  const count = async () => {
    error.textContent = '';
    try {
      const r = await api('GET', `/v1/codes/${name()}`);
      out.replaceChildren(el('p', { id: 'codes-left' }, `${r.pool}: ${r.remaining} codes left`));
    } catch (e) {
      error.textContent = e.message;
    }
  };
  const add = async () => {
    error.textContent = '';
    try {
      const r = await api('POST', `/v1/codes/${name()}`, codesOf(text.value));
      out.replaceChildren(table(['', 'count'], [['received', r.received], ['added', r.added],
        ['duplicates', r.duplicates], ['bad', r.bad]]),
      r.bad ? el('p', { class: 'error' }, `bad lines: ${(r.bad_lines || []).join(', ')}`) : '');
      await count();
    } catch (e) {
      error.textContent = e.body && e.body.field ? `${e.body.field}: ${e.message}` : e.message;
    }
  };
  page('Codes', el('div', {}, pool, ' ',
    el('button', { id: 'codes-count', type: 'button', class: 'secondary', onclick: count }, 'Count')),
  text, el('div', {}, file, ' ',
    el('button', { id: 'codes-add', type: 'button', disabled: !canChange, onclick: add }, 'Add codes')),
  error, out);
}
