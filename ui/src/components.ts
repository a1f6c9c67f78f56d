// Shared pieces: badges, empty states, loading lines, toasts and dialogs.

import { h, type Child } from './dom.js';
import { ANALYSIS_LABEL, STATUS_LABEL, cap } from './format.js';
import type { AnalysisState, IncidentStatus, Severity } from './types.js';

export function severityBadge(s: Severity): HTMLElement {
  return h('span', { class: `badge sev sev-${s}`, title: `severity ${s}` }, cap(s));
}

export function statusBadge(s: IncidentStatus): HTMLElement {
  return h('span', { class: `badge status st-${s}` }, STATUS_LABEL[s]);
}

export function analysisBadge(s: AnalysisState): HTMLElement {
  return h('span', { class: `badge an an-${s}`, 'data-state': s }, ANALYSIS_LABEL[s]);
}

/** What to show when a list is empty: what it is, and what to do about it. */
export function empty(title: string, hint: Child | Child[]): HTMLElement {
  return h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, title), h('p', { class: 'empty-hint' }, hint));
}

/** A loading line; always with words, never a bare spinner. */
export function loading(what: string): HTMLElement {
  return h('p', { class: 'loading', role: 'status' }, h('span', { class: 'dot' }), what);
}

export function errorLine(message: string): HTMLElement {
  return h('p', { class: 'error-line', role: 'alert' }, message);
}

export function kbd(k: string): HTMLElement {
  return h('kbd', null, k);
}

let toastHost: HTMLElement | null = null;

/** A short message in the corner; errors stay longer. */
export function toast(message: string | HTMLElement, kind: 'ok' | 'error' = 'ok', ms?: number): void {
  if (!toastHost) {
    toastHost = h('div', { class: 'toasts', 'aria-live': 'polite' });
    document.body.appendChild(toastHost);
  }
  const t = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  toastHost.appendChild(t);
  setTimeout(() => t.remove(), ms ?? (kind === 'error' ? 8000 : 3500));
}

/** Opens a modal dialog; resolves when it closes. `Esc` closes it. */
export function dialog(title: string, body: HTMLElement, opts: { wide?: boolean } = {}): {
  el: HTMLDialogElement;
  close: () => void;
  closed: Promise<void>;
} {
  const el = h('dialog', { class: opts.wide ? 'dlg dlg-wide' : 'dlg', 'aria-label': title });
  const closeBtn = h('button', { class: 'ghost icon', type: 'button', 'aria-label': 'Close', title: 'Close (Esc)' }, '✕');
  el.append(h('header', { class: 'dlg-head' }, h('h2', null, title), closeBtn), body);
  document.body.appendChild(el);
  const closed = new Promise<void>((resolve) => {
    el.addEventListener('close', () => {
      el.remove();
      resolve();
    });
  });
  closeBtn.addEventListener('click', () => el.close());
  el.showModal();
  return { el, close: () => el.close(), closed };
}

/** Runs `fn` with the button disabled and a text label while it works. */
export async function busy<T>(btn: HTMLButtonElement, label: string, fn: () => Promise<T>): Promise<T> {
  const old = btn.textContent;
  btn.disabled = true;
  btn.textContent = label;
  try {
    return await fn();
  } finally {
    btn.disabled = false;
    btn.textContent = old;
  }
}
