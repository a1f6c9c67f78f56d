// App-wide state shared by the views: navigation, theme and the "new incident" dialog.

import { api, ApiError } from './api.js';
import { busy, dialog, toast } from './components.js';
import { h, select } from './dom.js';
import { cap } from './format.js';
import { SEVERITIES, type Severity } from './types.js';

/** A screen: its element, what to do when leaving it, and its own keyboard shortcuts. */
export interface View {
  el: HTMLElement;
  dispose?: () => void;
  /** Returns true when it handled the key. */
  key?: (ev: KeyboardEvent) => boolean;
}

export type Route =
  | { name: 'list' }
  | { name: 'incident'; id: number }
  | { name: 'postmortem'; id: number }
  | { name: 'not-found' }
  | { name: 'settings' };

export function parseRoute(hash: string): Route {
  const pm = /^#\/incident\/(\d+)\/postmortem$/.exec(hash);
  if (pm?.[1]) return { name: 'postmortem', id: Number(pm[1]) };
  const m = /^#\/incident\/(\d+)$/.exec(hash);
  if (m?.[1]) return { name: 'incident', id: Number(m[1]) };
  if (hash.startsWith('#/settings')) return { name: 'settings' };
  if (hash === '' || hash === '#' || hash === '#/') return { name: 'list' };
  return { name: 'not-found' };
}

export function go(hash: string): void {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

const THEME_KEY = 'opslens.theme';

export function initTheme(): void {
  const saved = localStorage.getItem(THEME_KEY);
  const prefersLight = window.matchMedia?.('(prefers-color-scheme: light)').matches;
  document.documentElement.dataset.theme = saved ?? (prefersLight ? 'light' : 'dark');
}

export function toggleTheme(): void {
  const next = document.documentElement.dataset.theme === 'light' ? 'dark' : 'light';
  document.documentElement.dataset.theme = next;
  localStorage.setItem(THEME_KEY, next);
}

export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** The "new incident" dialog; opens the incident when created. */
export function newIncidentDialog(): void {
  const title = h('input', {
    name: 'title', required: true, maxlength: 500, autocomplete: 'off',
    placeholder: 'What is broken? e.g. Checkout 5xx spike',
  });
  const sev = select<Severity>(SEVERITIES, 'high', { name: 'severity', label: cap, title: 'Severity' });
  const desc = h('textarea', { name: 'description', rows: 3, placeholder: 'Context: since when, who is affected (optional)' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Open incident');
  const form = h('form', { class: 'form' },
    h('label', null, 'Title', title),
    h('label', null, 'Severity', sev),
    h('label', null, 'Description', desc),
    h('div', { class: 'form-actions' }, submit),
  );
  const d = dialog('New incident', form);
  title.focus();
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!title.value.trim()) {
      title.focus();
      return;
    }
    void busy(submit, 'Opening…', async () => {
      try {
        const inc = await api.createIncident({
          title: title.value.trim(),
          description: desc.value.trim() || undefined,
          severity: sev.value as Severity,
        });
        d.close();
        toast(`Incident #${inc.id} opened`);
        go(`#/incident/${inc.id}`);
      } catch (e) {
        toast(errorMessage(e), 'error');
      }
    });
  });
}
