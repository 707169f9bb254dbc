// rules.js: the Rules pages (docs/console.md): the rules in use, and an editor that
// compiles the text as it is typed (PUT /v1/rules/<name>?check=1: the whole set with
// this text, nothing written) and marks each error at its line and column with the
// compiler's message; Apply puts it in use.

import { api } from './api.js';
import { el, table } from './dom.js';
import { draftSection, historySection } from './rulesdraft.js';

const NEW_RULE = `rule NAME
  when deal.category = "laptops"
  audience interested
  send sms
  template sms "{title}: {price} {link} Reply STOP to end"
end
`;

export async function rulesPage(page) {
  const error = el('p', { class: 'error', role: 'alert' });
  const list = el('div', { id: 'rules' }, 'Loading…');
  const name = el('input', { id: 'new-rule-name', 'aria-label': 'new rule source name',
    placeholder: 'name of a new rule source' });
  page('Rules', list, el('form', { id: 'new-rule-form', onsubmit: (ev) => {
    ev.preventDefault();
    if (name.value.trim()) location.hash = `#/rules/${encodeURIComponent(name.value.trim())}`;
  } }, name, el('button', { type: 'submit' }, 'Write a new one')), error);
  try {
    const r = await api('GET', '/v1/rules');
    list.replaceChildren(table(['rule', 'priority', 'channels', 'audience', 'file', ''],
      (r.rules || []).map((x) => [x.name, Number(x.priority), (x.channels || []).join(', '),
        x.audience, x.file ? `${x.file}:${x.line}` : x.source,
        x.source === 'default' ? '' :
          el('a', { href: `#/rules/${encodeURIComponent(x.source === 'api' ?
            x.file.replace(/^api\//, '').replace(/\.rules$/, '') : x.name)}` }, 'edit')])));
  } catch (e) {
    list.textContent = '';
    error.textContent = `Cannot read the rules: ${e.message}`;
  }
}

// The text with each line numbered and the lines with an error marked.
function listing(text, errors) {
  const bad = new Map(errors.map((e) => [e.line, e]));
  return el('ol', { id: 'rule-lines', class: 'listing' }, text.split('\n').map((l, i) => {
    const e = bad.get(i + 1);
    return el('li', { class: e ? 'bad' : null, title: e ? e.message : null }, l || ' ');
  }));
}

export async function ruleEditorPage(page, name, canChange) {
  const text = el('textarea', { id: 'rule-text', rows: 14, cols: 80, spellcheck: 'false',
    'aria-label': `rules of ${name}` });
  const status = el('p', { id: 'rule-status', role: 'status' }, '');
  const errors = el('ul', { id: 'rule-errors', class: 'error' });
  const lines = el('div', { id: 'rule-listing' });
  const apply = el('button', { id: 'rule-apply', type: 'button', disabled: true }, 'Apply');
  let timer = null;
  let seq = 0;
  const check = async () => {
    const mine = ++seq;
    try {
      const r = await api('PUT', `/v1/rules/${encodeURIComponent(name)}?check=1`, text.value);
      if (mine !== seq) return;
      status.textContent = `Compiles: ${(r.rules || []).map((x) => x.name).join(', ')}`;
      errors.replaceChildren();
      lines.replaceChildren(listing(text.value, []));
      apply.disabled = !canChange;
    } catch (e) {
      if (mine !== seq) return;
      const list = (e.body && e.body.errors) || [];
      status.textContent = list.length ? `${list.length} error(s)` : e.message;
      errors.replaceChildren(...list.map((x) =>
        el('li', {}, `${x.line}:${x.column}: ${x.message}`)));
      lines.replaceChildren(listing(text.value, list.filter((x) =>
        x.file === `api/${name}.rules`)));
      apply.disabled = true;
    }
  };
  text.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  });
  const history = el('div', {});
  const showHistory = async () => history.replaceChildren(await historySection(name));
  apply.addEventListener('click', async () => {
    const sent = text.value;
    clearTimeout(timer);
    seq++;                          // a check still on its way must not redraw
    try {
      const r = await api('PUT', `/v1/rules/${encodeURIComponent(name)}`, sent);
      status.textContent = `Applied: ${r.rules_in_use} rules in use (version ${r.version})`;
      errors.replaceChildren();
      lines.replaceChildren(listing(sent, []));
      showHistory();
    } catch (e) {
      status.textContent = e.message;
    }
  });
  page(`Rules: ${name}`, text, el('div', {}, apply), status, errors, lines,
    draftSection(name, () => text.value, canChange), el('h3', {}, 'Versions'), history);
  showHistory();
  try {
    const r = await api('GET', `/v1/rules/${encodeURIComponent(name)}`);
    text.value = r.text || '';
  } catch (e) {
    text.value = NEW_RULE.replace('NAME', name);
  }
  check();
}
