// A tiny element builder. Text always goes in as text nodes (never innerHTML), so nothing a
// log line or a model's finding contains can run as markup.

export type Child = Node | string | number | null | undefined | false;
type Handler = (ev: Event) => void;
export type Props = Record<string, string | number | boolean | Handler | undefined | null>;

/** Creates `<tag>` with attributes, `on*` listeners and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props | null = null,
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === 'value' && 'value' in el) {
      (el as HTMLInputElement).value = String(v);
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

/** Appends children, flattening arrays and skipping empty values. */
export function append(el: Node, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** Replaces all children of `el`. */
export function replace(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

/** A `<select>` over `values` with `labels`; the first option may be an "any" entry. */
export function select<T extends string>(
  values: readonly T[],
  current: T | '',
  opts: { any?: string; label?: (v: T) => string; name?: string; title?: string } = {},
): HTMLSelectElement {
  const s = h('select', { name: opts.name, 'aria-label': opts.title ?? opts.name, title: opts.title });
  if (opts.any !== undefined) s.appendChild(h('option', { value: '' }, opts.any));
  for (const v of values) s.appendChild(h('option', { value: v }, opts.label ? opts.label(v) : v));
  s.value = current;
  return s;
}

/** Whether the key event comes from a field where typing must not trigger shortcuts. */
export function isTyping(ev: KeyboardEvent): boolean {
  const t = ev.target as HTMLElement | null;
  if (!t) return false;
  return t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName);
}
