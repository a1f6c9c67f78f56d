// Settings → Integrations: each integration with its health and recent errors, what it reads or
// sends where (destination with credentials masked, the kinds of events), a field per key
// (stored like `opslens secrets set`: the OS keychain, else secrets.env; never shown back) and
// a Test button that checks the keys as stored now.

import { api } from '../api.js';
import { errorLine, loading, toast } from '../components.js';
import { h, replace } from '../dom.js';
import { ago } from '../format.js';
import { errorMessage } from '../app.js';
import type { IntegrationCheck, IntegrationInfo } from '../types.js';

const LABEL: Record<string, string> = {
  pagerduty: 'PagerDuty', github: 'GitHub', slack: 'Slack', teams: 'Microsoft Teams',
  webhooks: 'Custom webhooks', grafana: 'Grafana', datadog: 'Datadog',
};

/** `ok`, `failing` or `not set up`, from the keys, the sync state and the latest error. */
export function health(i: IntegrationInfo): { word: string; cls: string } {
  if (!i.configured) return { word: 'not set up', cls: 'health-off' };
  const lastError = i.recent_errors[0]?.at;
  const lastOk = i.state?.last_success_at;
  if (lastError && (!lastOk || lastError > lastOk)) return { word: 'failing', cls: 'health-bad' };
  return { word: 'ok', cls: 'health-ok' };
}

export function integrationsPanel(): HTMLElement {
  const box = h('div', { class: 'integrations', 'data-field': 'integrations' }, loading('Reading the integrations…'));
  const checks = new Map<string, IntegrationCheck>();

  async function load(): Promise<void> {
    try {
      const ov = await api.integrations();
      replace(box, h('ul', { class: 'integration-list' }, ov.integrations.map(card)));
    } catch (e) {
      replace(box, errorLine(errorMessage(e)));
    }
  }

  function card(i: IntegrationInfo): HTMLElement {
    const hl = health(i);
    const result = h('p', { class: 'small', 'data-field': 'test-result' });
    const shown = checks.get(i.name);
    if (shown) showCheck(result, shown);
    const test = h('button', { type: 'button', class: 'small', 'data-action': 'test' }, 'Test');
    test.addEventListener('click', () => {
      test.disabled = true;
      replace(result, loading('Checking…'));
      api.testIntegration(i.name).then((c) => {
        checks.set(i.name, c);
        showCheck(result, c);
      }, (e: unknown) => replace(result, errorLine(errorMessage(e)))).finally(() => { test.disabled = false; });
    });
    return h('li', { class: 'integration', 'data-integration': i.name },
      h('div', { class: 'integration-head' },
        h('strong', null, LABEL[i.name] ?? i.name), ' ',
        h('span', { class: `badge ${hl.cls}`, 'data-field': 'health' }, hl.word),
        i.state?.last_success_at ? h('span', { class: 'muted small' }, ` · last sync ${ago(i.state.last_success_at)}`) : null,
        h('span', { class: 'grow' }), test),
      h('p', { class: 'small' }, `${i.what.charAt(0).toUpperCase()}${i.what.slice(1)}.`),
      h('dl', { class: 'facts small' },
        h('dt', null, 'Where'), h('dd', { 'data-field': 'destination' }, i.destination ?? h('span', { class: 'muted' }, 'not set up')),
        h('dt', null, 'Sends'), h('dd', { 'data-field': 'sends' }, i.sends.length ? i.sends.map((k) => h('code', { class: 'event-kind' }, k)) : h('span', { class: 'muted' }, 'nothing (reads only)')),
        h('dt', null, 'Keys'), h('dd', null, i.keys.map((k) => keyForm(k, i.missing_keys.includes(k))))),
      result,
      i.recent_errors.length
        ? h('details', { class: 'recent-errors', open: hl.word === 'failing' },
          h('summary', null, `Recent errors (${i.recent_errors.length})`),
          h('ul', { 'data-field': 'recent-errors' }, i.recent_errors.map((e) =>
            h('li', { class: 'small' }, h('span', { class: 'muted' }, `${ago(e.at)} · `), e.message))))
        : h('p', { class: 'muted small', 'data-field': 'recent-errors' }, 'No recent errors.'));
  }

  function keyForm(name: string, missing: boolean): HTMLElement {
    const input = h('input', {
      type: 'password', name, autocomplete: 'off', spellcheck: 'false', 'aria-label': name,
      placeholder: missing ? 'not set' : 'set — type to replace',
    });
    const form = h('form', { class: 'inline-form key-form' },
      h('label', { class: 'inline' }, h('code', null, name), ' ', input),
      h('button', { type: 'submit', class: 'small' }, 'Save'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      api.setKey(name, input.value).then((r) => {
        input.value = '';
        // The running integrations read their keys at start: say so where the key is.
        input.placeholder = 'stored — used after a restart; Test checks it now';
        form.dataset.stored = r.store;
        toast(`${name}: ${r.message}`, r.shadowed_by_env ? 'error' : 'ok', 8000);
      }, (e: unknown) => toast(errorMessage(e), 'error'));
    });
    return form;
  }

  void load();
  return box;
}

function showCheck(el: HTMLElement, c: IntegrationCheck): void {
  const cls = c.status === 'ok' ? 'health-ok' : c.status === 'error' ? 'health-bad' : 'health-off';
  replace(el, h('span', { class: `badge ${cls}` }, c.status.replace('_', ' ')), ' ', c.message,
    c.latency_ms != null ? h('span', { class: 'muted' }, ` (${c.latency_ms} ms)`) : null);
}
