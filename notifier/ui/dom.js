// dom.js: building the page from data without ever parsing data as HTML.

// el('td', { class: 'num' }, 'text', child, ...): an element with attributes and
// children (strings become text nodes).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// A table of rows (arrays of cells); numeric cells are right-aligned.
export function table(head, rows) {
  const cell = (tag, v) => el(tag, { class: typeof v === 'number' ? 'num' : null },
    typeof v === 'number' ? v.toLocaleString('en-US') : v);
  return el('table', {},
    el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((v) => cell('td', v))))));
}
