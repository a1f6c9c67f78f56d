// Settings → Team server: where this app files its captures. Pointed at a team server, the
// desktop window shows the team's incidents, and captures are saved here first (the spool)
// and uploaded in order; this panel says how many wait and stores the address and token (in
// the OS keychain in the desktop app) for the next start.

import { api } from '../api.js';
import { errorLine, kbd, loading, toast } from '../components.js';
import { h, replace } from '../dom.js';
import { errorMessage } from '../app.js';
import type { TeamStatus } from '../types.js';

export function teamPanel(): HTMLElement {
  const status = h('div', { 'data-field': 'team-status' }, loading('Reading the team server link…'));
  const url = h('input', { name: 'team_url', type: 'url', placeholder: 'https://opslens.example.com:8443', 'aria-label': 'Team server address', size: 36 });
  const token = h('input', { name: 'team_token', type: 'password', placeholder: 'your token there', autocomplete: 'off', 'aria-label': 'Team server token', size: 24 });
  const form = h('form', { class: 'inline-form team-form' }, url, token, h('button', { type: 'submit' }, 'Save'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    api.saveTeam(url.value, token.value).then(
      (s) => {
        token.value = '';
        toast(`Saved ${s.server_url} in ${s.stored_in}. Restart OpsLens to connect.`);
      },
      (err: unknown) => toast(errorMessage(err), 'error'));
  });

  async function load(): Promise<void> {
    try {
      render(await api.team());
    } catch (e) {
      replace(status, errorLine(errorMessage(e)));
    }
  }

  function render(s: TeamStatus): void {
    if (!s.configured && (window as { __OPSLENS__?: { team?: boolean } }).__OPSLENS__?.team) {
      replace(status, h('p', null, "This desktop window shows the team server. Your captures are saved on this laptop first and uploaded in order; the window title and the tray count those waiting."));
      return;
    }
    if (!s.configured) {
      replace(status, h('p', null, 'Not connected: captures are stored on this machine.'));
      return;
    }
    const reach = s.reachable == null ? 'not tried yet' : s.reachable ? 'reachable' : 'unreachable';
    replace(status, h('dl', { class: 'facts' },
      h('dt', null, 'Captures go to'), h('dd', null, h('code', null, s.server_url ?? '')),
      h('dt', null, 'Waiting to upload'), h('dd', { 'data-field': 'team-waiting' }, String(s.waiting)),
      h('dt', null, 'Server'), h('dd', null, reach, s.last_error ? h('p', { class: 'error-line small' }, s.last_error) : null),
      h('dt', null, 'Uploaded'), h('dd', null, `${s.uploaded} since start${s.failed ? `; ${s.failed} refused (kept in the spool's failed/ folder)` : ''}`),
      h('dt', null, 'Analysis'), h('dd', null, s.local_analysis
        ? 'by the model on this machine; the findings go with the screenshot'
        : "by the team server's workers")),
      h('button', { type: 'button', class: 'ghost small', onclick: () => void load() }, 'Refresh'), ' ',
      h('button', { type: 'button', class: 'ghost small', onclick: () => {
        api.forgetTeam().then(() => toast('Disconnected from the next start; waiting captures stay in the spool.'),
          (err: unknown) => toast(errorMessage(err), 'error'));
      } }, 'Disconnect'));
  }

  void load();
  return h('div', null, status, form,
    h('p', { class: 'muted small' }, 'Or set ', kbd('OPSLENS_SERVER_URL'), ' and ', kbd('OPSLENS_SERVER_TOKEN'),
      ' (environment, or ', kbd('opslens secrets set OPSLENS_SERVER_TOKEN'), '). The window then shows the team\'s incidents; captures from the hotkey are saved here first and uploaded in order.'));
}
