// Entry point: takes over the token (one-time code in the URL, or the desktop's injection),
// then routes between the list, an incident and the settings, with global shortcuts.

import { api, session, UNAUTHORIZED_EVENT } from './api.js';
import { dialog, kbd, toast } from './components.js';
import { h, isTyping, replace } from './dom.js';
import {
  errorMessage, go, initTheme, newIncidentDialog, parseRoute, toggleTheme, type View,
} from './app.js';
import { connectView } from './views/connect.js';
import { detailView } from './views/detail.js';
import { listView } from './views/list.js';
import { settingsView } from './views/settings.js';
import { postmortemView } from './views/postmortem.js';
import { incidentShown, showIncident, startCaptureFeedback } from './focus.js';

declare global {
  interface Window {
    /** Set by the desktop shell before the page loads; absent in a plain browser. */
    __OPSLENS__?: { token?: string };
  }
}

const root = document.getElementById('app')!;
const main = h('main', { id: 'main', tabindex: -1 });
let current: View | null = null;
/** Server and model at a glance; a click opens the settings. */
const modelChip = h('a', { href: '#/settings', class: 'model-chip', 'data-field': 'model-chip', title: 'Server and analysis model (Settings)' });
let connected = false;
/** Shown above every page while the disk holding the data dir is nearly full. */
const diskBanner = h('div', { class: 'disk-banner', role: 'alert', 'data-field': 'disk-warning', hidden: true });

function shell(): HTMLElement {
  const nav = (hash: string, label: string, key: string): HTMLElement =>
    h('a', { href: hash, class: 'nav-link', 'data-nav': hash }, label, ' ', h('span', { class: 'nav-key' }, key));
  return h('div', { class: 'shell' },
    h('header', { class: 'topbar' },
      h('a', { href: '#/', class: 'brand', 'aria-label': 'OpsLens home' },
        h('img', { src: '/assets/favicon.svg', alt: '', width: 22, height: 22 }), 'OpsLens'),
      h('nav', null, nav('#/', 'Incidents', 'g i'), nav('#/settings', 'Settings', 'g s')),
      h('span', { class: 'grow' }),
      modelChip,
      h('button', { type: 'button', class: 'ghost', title: 'Switch theme (t)', onclick: toggleTheme }, 'Theme'),
      h('button', { type: 'button', class: 'ghost', title: 'Keyboard shortcuts (?)', onclick: help }, '?')),
    diskBanner,
    main);
}

async function updateChip(): Promise<void> {
  if (!connected) return;
  try {
    const m = await api.vlmStatus();
    const waiting = m.queue_length ? ` · ${m.queue_length} in queue` : '';
    const where = m.remote_url ? ` · remote ${m.remote_url}: screenshots leave this machine` : '';
    replace(modelChip, h('span', { class: `led led-${m.loaded ? 'ok' : 'warn'}` }),
      `${location.host} · model ${m.loaded ? 'ready' : m.state}${where}${waiting}`);
    modelChip.title = m.privacy ? `${m.privacy} (Settings)` : 'Server and analysis model (Settings)';
  } catch {
    replace(modelChip, h('span', { class: 'led led-err' }), `${location.host} · not reachable`);
  }
}

/** Warns before the disk fills (new evidence would then be refused with 507). */
async function updateDisk(): Promise<void> {
  if (!connected) return;
  try {
    const { storage } = await api.info();
    diskBanner.hidden = !storage.low;
    replace(diskBanner, storage.warning ? `Disk almost full: ${storage.warning}.` : '');
  } catch {
    // The model chip already says when the server is not reachable.
  }
}

function show(view: View): void {
  current?.dispose?.();
  current = view;
  replace(main, view.el);
}

function route(): void {
  if (!connected) return;
  const r = parseRoute(location.hash);
  startCaptureFeedback();
  const onScreen = r.name === 'incident' || r.name === 'postmortem' ? r.id : null;
  if (onScreen !== incidentShown()) showIncident(onScreen);
  for (const a of root.querySelectorAll<HTMLElement>('[data-nav]')) {
    a.classList.toggle('active', (a.dataset.nav === '#/settings') === (r.name === 'settings'));
  }
  if (r.name === 'incident') {
    document.title = `#${r.id} · OpsLens`;
    show(detailView(r.id));
  } else if (r.name === 'postmortem') {
    document.title = `Postmortem #${r.id} · OpsLens`;
    show(postmortemView(r.id));
  } else if (r.name === 'not-found') {
    document.title = 'Not found · OpsLens';
    show({ el: h('section', { class: 'not-found' }, h('h1', null, 'Page not found'),
      h('p', null, 'OpsLens has no page at ', h('code', null, location.hash), '.'), h('p', null, h('a', { href: '#/' }, 'Go to the incidents'))) });
  } else if (r.name === 'settings') {
    document.title = 'Settings · OpsLens';
    show(settingsView(signedOut));
  } else {
    document.title = 'Incidents · OpsLens';
    show(listView());
  }
  main.focus({ preventScroll: true });
}

function signedOut(problem?: string): void {
  connected = false;
  show(connectView(() => {
    connected = true;
    route();
  }, problem));
}

function help(): void {
  const row = (keys: string[], what: string): HTMLElement =>
    h('tr', null, h('td', null, keys.map((k) => kbd(k))), h('td', null, what));
  dialog('Keyboard shortcuts', h('table', { class: 'keys' }, h('tbody', null,
    row(['n'], 'New incident'),
    row(['/'], 'Search incidents'),
    row(['j', 'k'], 'Move in the list; Enter opens'),
    row(['g', 'i'], 'Go to incidents'),
    row(['g', 's'], 'Go to settings'),
    row(['e'], 'Add evidence (in an incident)'),
    row(['u'], 'Upload a screenshot'),
    row(['Ctrl+V'], 'Paste a screenshot from the clipboard'),
    row(['h'], 'Propose a hypothesis'),
    row(['a'], 'Add an action item'),
    row(['m'], 'Add a timeline note'),
    row(['+', '-', '0'], 'Zoom in the screenshot viewer'),
    row(['t'], 'Dark / light theme'),
    row(['Esc'], 'Close, or back to the list'),
  )));
}

let pendingG = 0;
document.addEventListener('keydown', (ev) => {
  if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (document.querySelector('dialog[open]')) return;
  if (isTyping(ev)) {
    if (ev.key === 'Escape') (ev.target as HTMLElement).blur();
    return;
  }
  if (!connected) return;
  if (Date.now() - pendingG < 1500) {
    pendingG = 0;
    if (ev.key === 'i') { go('#/'); ev.preventDefault(); return; }
    if (ev.key === 's') { go('#/settings'); ev.preventDefault(); return; }
  }
  if (current?.key?.(ev)) { ev.preventDefault(); return; }
  switch (ev.key) {
    case 'g': pendingG = Date.now(); break;
    case 'n': newIncidentDialog(); break;
    case 't': toggleTheme(); break;
    case '?': help(); break;
    case '/': go('#/'); setTimeout(() => document.querySelector<HTMLInputElement>('input.search')?.focus(), 50); break;
    default: return;
  }
  ev.preventDefault();
});

window.addEventListener(UNAUTHORIZED_EVENT, () => {
  if (!connected) return;
  session.clear();
  signedOut('The server refused the token (a different data dir, or it was replaced). Sign in again.');
});
// A sign-in link pasted into a tab that is already open changes only the hash: trade it too.
window.addEventListener('hashchange', () => {
  if (!/^#code=/.test(location.hash)) return route();
  void tradeCode().then((ok) => {
    if (!ok) return;
    connected = true;
    route();
    void updateChip();
  });
});

/** A one-time code from `opslens open` in the URL: stripped at once, then traded for the
 * token. False when there was none or it did not work (then the page says so). */
async function tradeCode(): Promise<boolean> {
  const m = /^#code=([0-9a-fA-F]+)/.exec(location.hash);
  if (!m?.[1]) return false;
  history.replaceState(null, '', `${location.pathname}#/`);
  try {
    const { token } = await api.exchange(m[1]);
    session.set(token, false);
    return true;
  } catch (e) {
    signedOut(`The sign-in link did not work: ${errorMessage(e)}`);
    return false;
  }
}

async function start(): Promise<void> {
  initTheme();
  replace(root, shell());
  if (/^#code=/.test(location.hash) && !(await tradeCode())) return;
  const injected = window.__OPSLENS__?.token;
  if (injected) session.set(injected, false);
  if (!session.get()) return signedOut();
  try {
    await api.info();
  } catch (e) {
    session.clear();
    return signedOut(errorMessage(e));
  }
  connected = true;
  route();
  void updateChip();
  void updateDisk();
  window.setInterval(() => void updateChip(), 10_000);
  window.setInterval(() => void updateDisk(), 30_000);
}

start().catch((e: unknown) => toast(errorMessage(e), 'error'));
