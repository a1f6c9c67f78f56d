// End-to-end tests of the web UI in real headless Chromium against the real `opslens serve`
// (debug build) and its SQLite file: sign-in link, incidents, evidence, screenshots with live
// analysis state, hypotheses, actions, search, settings. Screenshots go to target/ui-artifacts.
// The features added since (disk warning, comparison, capture feedback, drafts, remote
// analysis, first run, integrations settings) are in features.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { dashboardPng } from './png.js';
import {
  apiCall, artifacts, bin, chromePath, CHROME_FLAGS, contrast, finishAnalysis, shot, startServer,
} from './harness.js';

test('OpsLens web UI end to end', { timeout: 240_000 }, async (t) => {
  const s = await startServer();
  const browser: Browser = await chromium.launch({ executablePath: chromePath, args: CHROME_FLAGS, headless: true });
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: 'dark' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(15_000);
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  let incidentId = 0;
  let shotId = 0;
  try {
    await t.test('serves the UI at / without the token, under a CSP', async () => {
      const res = await fetch(`${s.base}/`);
      assert.equal(res.status, 200);
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /script-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-(inline|eval)/);
      assert.match(await res.text(), /<script type="module" src="\/assets\/main.js">/);
      const js = await fetch(`${s.base}/assets/main.js`);
      assert.equal(js.status, 200);
      assert.match(js.headers.get('content-type') ?? '', /javascript/);
      assert.equal((await fetch(`${s.base}/api/v1/incidents`)).status, 401);
    });

    await t.test('without a token the page says how to connect', async () => {
      const p = await ctx.newPage();
      await p.goto(`${s.base}/`);
      await p.getByRole('heading', { name: 'Connect to OpsLens' }).waitFor();
      await p.getByText('opslens open').first().waitFor();
      await p.close();
    });

    await t.test('`opslens open` signs the browser in with a one-time link', async () => {
      const url = execFileSync(bin, ['open', '--no-browser', '--data-dir', s.dir], { encoding: 'utf8' }).trim();
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/#code=[0-9a-f]{64}$/);
      await page.goto(url);
      await page.getByText('No open incidents.').waitFor();
      assert.ok(!page.url().includes('code='), `code left in the URL: ${page.url()}`);
      const stored = await page.evaluate(() => sessionStorage.getItem('opslens.token'));
      assert.equal(stored, s.token);
      // The same link again: refused, the page says what to do.
      const other = await browser.newContext();
      const p2 = await other.newPage();
      await p2.goto(url);
      await p2.getByText('The sign-in link did not work').waitFor();
      await other.close();
    });

    await t.test('creates an incident from the keyboard', async () => {
      await page.keyboard.press('n');
      const dlg = page.locator('dialog[open]');
      await dlg.locator('input[name=title]').fill('Checkout 5xx spike');
      await dlg.locator('select[name=severity]').selectOption('critical');
      await dlg.locator('textarea[name=description]').fill('p99 > 2s since 14:02, EU customers');
      await dlg.getByRole('button', { name: 'Open incident' }).click();
      await page.locator('.inc-head h1', { hasText: 'Checkout 5xx spike' }).waitFor();
      incidentId = Number(/#\/incident\/(\d+)/.exec(page.url())?.[1]);
      assert.ok(incidentId > 0);
      await page.locator('.inc-head .badge.sev-critical').waitFor();
      await page.locator('.timer[data-timer=open]').waitFor();
      await page.getByText('No evidence yet.').waitFor();
    });

    await t.test('adds log evidence', async () => {
      const form = page.locator('form.add-evidence');
      await form.locator('input[name=title]').fill('payment-svc logs');
      await form.locator('input[name=source]').fill('kubectl logs deploy/payment-svc');
      await form.locator('textarea[name=content]').fill(
        '14:02:11 ERROR upstream timeout after 2000ms (pool exhausted)\n14:02:12 WARN retrying charge 7f3a\n14:02:14 ERROR upstream timeout after 2000ms');
      await form.getByRole('button', { name: 'Add evidence' }).click();
      const card = page.locator('.card.text', { hasText: 'payment-svc logs' });
      await card.waitFor();
      await card.getByText('pool exhausted').waitFor();
      await page.locator('.tl-item', { hasText: 'payment-svc logs' }).first().waitFor();
    });

    await t.test('uploads a screenshot and shows it with its analysis state', async () => {
      await page.locator('.evidence input[type=file]').setInputFiles({
        name: 'grafana-checkout.png', mimeType: 'image/png', buffer: dashboardPng(),
      });
      const card = page.locator('.card.shot', { hasText: 'grafana-checkout.png' });
      await card.waitFor();
      await card.locator('.badge.an', { hasText: 'waiting for model' }).waitFor();
      shotId = Number(await card.getAttribute('data-id'));
      await page.waitForFunction((id) => {
        const img = document.querySelector<HTMLImageElement>(`img[data-evidence="${id}"]`);
        return img !== null && img.src.startsWith('blob:') && img.complete && img.naturalWidth === 960;
      }, shotId);
      await card.getByText('960×540').waitFor();
    });

    await t.test('pastes a screenshot from the clipboard', async () => {
      const png = dashboardPng(640, 360, [255, 160, 40]).toString('base64');
      await page.evaluate((b64) => {
        const bin = atob(b64);
        const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], '', { type: 'image/png' }));
        document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
      }, png);
      await page.locator('.card.shot', { hasText: '640×360' }).waitFor();
      assert.equal(await page.locator('.card.shot').count(), 2);
    });

    await t.test('drops a screenshot file onto the page', async () => {
      const png = dashboardPng(480, 270).toString('base64');
      await page.evaluate((b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'datadog-export.png', { type: 'image/png' }));
        const zone = document.querySelector('.drop')!;
        zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
        zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      }, png);
      await page.locator('.card.shot', { hasText: 'datadog-export.png' }).waitFor();
      assert.equal(await page.locator('.card.shot').count(), 3);
    });

    await t.test('a screenshot uploaded through the API appears in the open page within 2 s', async () => {
      // As from `opslens capture`, the hotkey or a teammate's script: not through this page.
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(dashboardPng(800, 450, [90, 200, 120]))], { type: 'image/png' }), 'from-a-script.png');
      const url = page.url();
      const started = Date.now();
      const res = await fetch(`${s.base}/api/v1/evidence/incident/${incidentId}/upload-screenshot`, {
        method: 'POST', headers: { Authorization: `Bearer ${s.token}` }, body: form,
      });
      assert.equal(res.status, 201);
      const id = ((await res.json()) as { id: number }).id;
      await page.waitForFunction((i) => {
        const img = document.querySelector<HTMLImageElement>(`img[data-evidence="${i}"]`);
        return img !== null && img.complete && img.naturalWidth === 800;
      }, id, { timeout: 2000 });
      const took = Date.now() - started;
      assert.ok(took < 2000, `thumbnail after ${took} ms`);
      await page.locator('.tl-item', { hasText: 'from-a-script.png' }).first().waitFor({ timeout: 1000 });
      assert.equal(page.url(), url, 'no navigation or reload');
      assert.equal(await page.locator('.card.shot').count(), 4);
      await shot(page, 'live-upload.png');
    });

    await t.test('shows the analysis as soon as it is done, without a reload', async () => {
      finishAnalysis(s, shotId);
      // The engine's own commit announces the screenshot on the change feed; this write went
      // behind the server's back, so announce the screenshot the way the API does: a question
      // about it (queued, it never runs here) is an evidence.updated of that screenshot.
      await apiCall(s, 'POST', `/evidence/${shotId}/analyze`, { question: 'what happened at 14:05?' });
      const card = page.locator(`.card.shot[data-id="${shotId}"]`);
      await card.locator('.badge.an', { hasText: 'analysed' }).waitFor({ timeout: 20_000 });
      await card.getByText('p99 latency of checkout-api spiked').waitFor();
      await card.getByRole('button', { name: 'View & analysis' }).click();
      const viewer = page.locator('dialog[open].viewer-dlg');
      await viewer.locator('.finding-panels', { hasText: 'checkout-api p99 latency' }).waitFor();
      await viewer.locator('.finding-panels .anomalies', { hasText: 'latency spike' }).waitFor();
      await viewer.locator('form.ask input[name=question]').waitFor();
      await viewer.locator('.finding-errors', { hasText: 'upstream connect error' }).waitFor();
      await viewer.getByText('Model: Qwen/Qwen3-VL-2B-Instruct · 8.4 s').waitFor();
      await page.waitForFunction(() => (document.querySelector<HTMLImageElement>('.viewer-img')?.naturalWidth ?? 0) > 0);
      await viewer.getByRole('button', { name: 'Zoom in (+)' }).click();
      await viewer.getByRole('button', { name: 'Zoom in (+)' }).click();
      const label = await viewer.locator('.zoom-label').textContent();
      assert.match(label ?? '', /^\d+%$/);
      await shot(page, 'viewer.png', false);
      await page.keyboard.press('0');
      assert.equal(await viewer.locator('.zoom-label').textContent(), 'fit');
      await page.keyboard.press('Escape');
      await viewer.waitFor({ state: 'detached' });
    });

    await t.test('adds a hypothesis linked to evidence and supports it', async () => {
      const form = page.locator('form.hyp-form');
      await form.locator('input[name=statement]').fill('The 14:00 deploy exhausted the DB connection pool');
      await form.locator('.link-box summary').click();
      await form.locator('label.check', { hasText: 'payment-svc logs' }).locator('input').check();
      await form.getByRole('button', { name: 'Propose' }).click();
      const card = page.locator('.column.col-proposed .hyp', { hasText: 'exhausted the DB connection pool' });
      await card.waitFor();
      await card.locator('.chip', { hasText: 'payment-svc logs' }).waitFor();
      await card.getByRole('button', { name: 'Supported' }).click();
      await page.locator('.column.col-supported .hyp', { hasText: 'exhausted the DB connection pool' }).waitFor();
      const hyps = (await apiCall(s, 'GET', `/incidents/${incidentId}/hypotheses`)) as { status: string; evidence_ids: number[] }[];
      assert.equal(hyps[0]?.status, 'supported');
      assert.equal(hyps[0]?.evidence_ids.length, 1);
    });

    await t.test('adds an action item and ticks it off', async () => {
      const form = page.locator('form.action-form');
      await form.locator('input[name=action]').fill('Roll back payment-svc to v1.41');
      await form.locator('input[name=owner]').fill('maria');
      await form.getByRole('button', { name: 'Add' }).click();
      const row = page.locator('.action', { hasText: 'Roll back payment-svc' });
      await row.getByText('@maria').waitFor();
      await row.locator('input[type=checkbox]').check();
      await page.locator('.action.st-done', { hasText: 'Roll back payment-svc' }).waitFor();
    });

    await t.test('acknowledges the incident and the timers follow', async () => {
      await page.getByRole('button', { name: 'Acknowledge' }).click();
      await page.locator('.inc-head .badge.status', { hasText: 'Acknowledged' }).waitFor();
      await page.locator('.timer[data-metric=tta]', { hasText: 'TTA' }).waitFor();
      await page.locator('.tl-item', { hasText: 'acknowledged' }).first().waitFor();
      await page.mouse.move(0, 0);
      await shot(page, 'incident.png');
      await page.evaluate(() => { document.documentElement.dataset.theme = 'light'; });
      await shot(page, 'incident-light.png');
      await page.evaluate(() => { document.documentElement.dataset.theme = 'dark'; });
    });

    await t.test('event time: a typed time orders the timeline, UTC by default even in a Berlin browser', async () => {
      const berlin = await browser.newContext({ viewport: { width: 1440, height: 900 }, timezoneId: 'Europe/Berlin' });
      await berlin.addInitScript((tok) => sessionStorage.setItem('opslens.token', tok), s.token);
      const p = await berlin.newPage();
      p.setDefaultTimeout(15_000);
      await p.goto(`${s.base}/#/incident/${incidentId}`);
      const form = p.locator('.timeline form.inline-form');
      await form.locator('input[name=note]').fill('deploy v2.41.0 finished');
      await form.locator('input[name=note_at]').fill('soon');
      await form.getByRole('button', { name: 'Add' }).click();
      await p.locator('.toast', { hasText: 'Cannot read "soon"' }).waitFor();
      assert.equal(await p.locator('.tl-item', { hasText: 'deploy v2.41.0 finished' }).count(), 0);
      await form.locator('input[name=note_at]').fill('00:00:01');
      await form.getByRole('button', { name: 'Add' }).click();
      await p.locator('.toast', { hasText: 'taken as UTC' }).waitFor();
      const item = p.locator('.tl-item', { hasText: 'deploy v2.41.0 finished' });
      await item.waitFor();
      assert.equal(await item.locator('time').innerText(), '00:00:01 UTC');
      assert.match(await item.locator('time').getAttribute('title') ?? '', /^\d{4}-\d\d-\d\dT00:00:01Z$/);
      // Newest first: the entry of 00:00:01 is the oldest, below the incident's opening.
      assert.match(await p.locator('.tl-item').last().innerText(), /deploy v2\.41\.0 finished/);
      // Log evidence with ISO stamps happened at its earliest one, marked as read from the text.
      const ev = p.locator('form.add-evidence');
      await ev.locator('input[name=title]').fill('api logs');
      await ev.locator('textarea[name=content]').fill('2026-11-30T00:00:07Z ERROR upstream timeout\n2026-11-30T00:00:03Z INFO ready');
      await ev.getByRole('button', { name: 'Add evidence' }).click();
      await p.locator('.toast', { hasText: 'time read from the text' }).waitFor();
      const card = p.locator('.card.text', { hasText: 'api logs' });
      assert.match(await card.locator('time').getAttribute('title') ?? '', /^2026-11-30T00:00:03Z/);
      // An action's due time is typed in the display zone too (UTC here), not the browser's.
      const act = p.locator('form.action-form');
      await act.locator('input[name=action]').fill('Page the DB team');
      await act.locator('input[name=due]').fill('2030-01-02T09:30');
      await act.getByRole('button', { name: 'Add' }).click();
      await p.locator('.action-title', { hasText: 'Page the DB team' }).waitFor();
      const acts = await apiCall(s, 'GET', `/incidents/${incidentId}/actions`) as { title: string; due_at?: string | null }[];
      const due = acts.find((a) => a.title === 'Page the DB team')?.due_at ?? '';
      assert.equal(new Date(due).toISOString(), '2030-01-02T09:30:00.000Z', `due_at ${due}`);
      // The local zone, chosen once in Settings and remembered.
      await p.goto(`${s.base}/#/settings`);
      await p.locator('select[name=zone]').selectOption('local');
      await p.goto(`${s.base}/#/incident/${incidentId}`);
      await p.reload();
      const local = p.locator('.tl-item', { hasText: 'deploy v2.41.0 finished' }).locator('time');
      await local.waitFor();
      // Berlin is UTC+1 in winter and UTC+2 in summer; past Berlin's midnight (22:00/23:00 UTC)
      // the entry is on another day there than "now", so the date is shown with it.
      const shown = /^(?:[A-Z][a-z]{2} \d{1,2} )?(0[12]):00:01 UTC\+(0[12]):00$/.exec(await local.innerText());
      assert.ok(shown, `local time shown as ${await local.innerText()}`);
      assert.equal(shown[1], shown[2], 'the hour is 00 UTC plus the zone offset');
      assert.match(await local.getAttribute('title') ?? '', new RegExp(`T${shown[1]}:00:01\\+${shown[2]}:00$`));
      const berlinDay = (d: Date) => new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Berlin' }).format(d);
      const at = new Date(await local.getAttribute('title') ?? '');
      assert.equal(/^[A-Z]/.test(await local.innerText()), berlinDay(at) !== berlinDay(new Date()), 'a date only on another day');
      await shot(p, 'event-time-berlin.png');
      await berlin.close();
    });

    await t.test('lists, filters and searches incidents', async () => {
      await apiCall(s, 'POST', '/incidents', { title: 'Disk full on db-1', severity: 'low' });
      await page.keyboard.press('g');
      await page.keyboard.press('i');
      await page.locator('.incident-list .row').nth(1).waitFor();
      assert.equal(await page.locator('.incident-list .row').count(), 2);
      await page.keyboard.press('/');
      await page.keyboard.type('checkout');
      await page.waitForFunction(() => document.querySelectorAll('.incident-list .row').length === 1);
      await page.locator('.row', { hasText: 'Checkout 5xx spike' }).waitFor();
      await page.locator('input.search').fill('pool');
      await page.locator('.hits .hit', { hasText: 'payment-svc logs' }).waitFor();
      // Search covers every kind of entry: the note written earlier is found, grouped under its
      // incident, labelled with its kind, and the version is marked whole.
      await page.locator('input.search').fill('v2.41.0');
      const noteHit = page.locator('.hits .hit-group .hit[data-kind=note]', { hasText: 'deploy v2.41.0 finished' });
      await noteHit.waitFor();
      assert.equal(await noteHit.locator('.kind').innerText(), 'Note');
      assert.deepEqual(await noteHit.locator('mark').allInnerTexts(), ['v2.41.0']);
      const group = page.locator('.hits .hit-group', { has: page.locator('.hit[data-kind=note]', { hasText: 'deploy v2.41.0 finished' }) });
      assert.match(await group.locator('.group-head').innerText(), /#\d+/);
      await shot(page, 'search-grouped.png', false);
      await page.locator('input.search').fill('"');
      await page.locator('.hits .error-line', { hasText: 'no words to search for' }).waitFor();
      await page.locator('input.search').fill('zebranothing');
      await page.getByText('No incidents match these filters.').waitFor();
      await page.getByRole('button', { name: 'clear the filters' }).click();
      await page.locator('select[name=severity]').selectOption('low');
      await page.waitForFunction(() => document.querySelectorAll('.incident-list .row').length === 1);
      await page.locator('.row', { hasText: 'Disk full on db-1' }).waitFor();
      await page.locator('select[name=severity]').selectOption('');
      await page.locator('.incident-list .row').nth(1).waitFor();
      await shot(page, 'incidents-dark.png', false);
      await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
      await page.keyboard.press('t');
      assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
      await shot(page, 'incidents-light.png', false);
      await page.keyboard.press('t');
    });

    await t.test('markup in data is shown as text, never run', async () => {
      const evil = '<img src=x onerror="window.__pwned=1">';
      const inc = (await apiCall(s, 'POST', '/incidents', { title: evil, severity: 'medium' })) as { id: number };
      await apiCall(s, 'POST', `/evidence/incident/${inc.id}`, { evidence_type: 'log', title: evil, content: `<script>window.__pwned=2</script>`, source: evil });
      await page.goto(`${s.base}/#/incident/${inc.id}`);
      await page.locator('.inc-head h1', { hasText: evil }).waitFor();
      await page.locator('.card.text pre', { hasText: '<script>window.__pwned=2</script>' }).waitFor();
      assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
      assert.equal(await page.locator('.inc-head img, .card img:not(.thumb)').count(), 0);
      await page.goto(`${s.base}/#/`);
      await page.locator('.row', { hasText: evil }).waitFor();
    });

    await t.test('the top bar shows the server and the model state', async () => {
      // Three screenshots wait for a model (one uploaded by a script), plus the question.
      await page.locator('[data-field=model-chip]', { hasText: `${new URL(s.base).host} · model missing · 4 in queue` }).waitFor({ timeout: 20_000 });
    });

    await t.test('? lists the keyboard shortcuts', async () => {
      await page.keyboard.press('?');
      const dlg = page.locator('dialog[open]', { hasText: 'Keyboard shortcuts' });
      await dlg.getByText('Paste a screenshot from the clipboard').waitFor();
      await page.keyboard.press('Escape');
      await dlg.waitFor({ state: 'detached' });
    });

    await t.test('settings show the data dir, the port, the token and the model status', async () => {
      await page.keyboard.press('g');
      await page.keyboard.press('s');
      await page.locator('[data-field=data_dir]', { hasText: s.dir }).waitFor();
      await page.locator('[data-field=port]', { hasText: new URL(s.base).port }).waitFor();
      await page.locator('[data-field=model-state]', { hasText: 'missing' }).waitFor();
      // The device row: the chooser's pick, its hardware and memory, the weights for it.
      await page.locator('[data-field=device]', { hasText: /^cpu\b.*· weights q4k$/ }).waitFor();
      await page.getByText('Ctrl+Shift+O').waitFor();
      await shot(page, 'settings.png');
    });

    await t.test('settings: the team server panel stores the address and token for the next start', async () => {
      await page.goto(`${s.base}/#/settings`);
      await page.locator('[data-field=team-status]', { hasText: 'Not connected' }).waitFor();
      await page.locator('input[name=team_url]').fill('http://ops.example.com:8443/');
      await page.locator('input[name=team_token]').fill('olu_test');
      await page.locator('form.team-form').getByRole('button', { name: 'Save' }).click();
      await page.locator('.toast', { hasText: 'Saved http://ops.example.com:8443' }).waitFor();
      assert.equal(await page.locator('input[name=team_token]').inputValue(), '');
      await page.locator('input[name=team_url]').fill('ftp://nope');
      await page.locator('input[name=team_token]').fill('t');
      await page.locator('form.team-form').getByRole('button', { name: 'Save' }).click();
      await page.locator('.toast-error', { hasText: 'team server URL' }).waitFor();
      const gone = await fetch(`${s.base}/api/v1/team`, { method: 'DELETE', headers: { Authorization: `Bearer ${s.token}` } });
      assert.equal(gone.status, 204);
    });

    await t.test('people: your name in Settings, roles assigned from the header, authors on the timeline', async () => {
      await page.goto(`${s.base}/#/settings`);
      await page.locator('input[name=me_name]').fill('Ana Lima');
      await page.locator('input[name=me_handle]').fill('@ana');
      await page.locator('form.me-form').getByRole('button', { name: 'Save' }).click();
      await page.locator('.toast', { hasText: 'Entries you write now show Ana Lima' }).waitFor();
      await apiCall(s, 'POST', '/people', { name: 'Bo Chen', handle: 'bo' });
      await page.goto(`${s.base}/#/incident/${incidentId}`);
      const bar = page.locator('.roles-bar');
      await bar.waitFor();
      await bar.locator('select[name=role]').selectOption('commander');
      await bar.locator('input[name=person]').fill('@bo');
      await bar.getByRole('button', { name: 'Assign' }).click();
      await bar.locator('[data-role=commander]', { hasText: 'Bo Chen' }).waitFor();
      const entry = page.locator('.tl-item', { hasText: 'Bo Chen is now incident commander' });
      await entry.waitFor();
      assert.match(await entry.locator('.tl-author').innerText(), /Ana Lima/);
      // An unknown handle is refused with a message naming the field; nothing changes.
      await bar.locator('input[name=person]').fill('@nobody-here');
      await bar.getByRole('button', { name: 'Assign' }).click();
      await page.locator('.toast-error', { hasText: 'person:' }).waitFor();
      await bar.locator('[data-role=commander]', { hasText: 'Bo Chen' }).waitFor();
      // A name nobody has is someone new: added to the people, then assigned.
      await bar.locator('select[name=role]').selectOption('scribe');
      await bar.locator('input[name=person]').fill('Dee Park');
      await bar.getByRole('button', { name: 'Assign' }).click();
      await page.locator('.toast', { hasText: 'Added Dee Park to the people' }).waitFor();
      await page.locator('.roles-bar [data-role=scribe]', { hasText: 'Dee Park' }).waitFor();
      const folks = await apiCall(s, 'GET', '/people') as { name: string }[];
      assert.equal(folks.filter((p) => p.name === 'Dee Park').length, 1);
      await shot(page, 'incident-roles.png');
    });

    await t.test('status update: posted from the incident page, next update shown, red once overdue', async () => {
      await page.goto(`${s.base}/#/incident/${incidentId}`);
      await page.getByRole('button', { name: 'Status update' }).click();
      const dlg = page.locator('dialog[open]');
      await dlg.locator('input[name=impact]').fill('EU checkout errors ~7%');
      await dlg.locator('textarea[name=update_text]').fill('Rolled back v2.41.0; p99 recovering');
      await dlg.locator('input[name=next_update]').fill('45m');
      await dlg.getByRole('button', { name: 'Post update' }).click();
      await page.locator('.tl-item.tl-status_update', { hasText: 'Rolled back v2.41.0' }).waitFor();
      const due = page.locator('[data-field=next-update]');
      await due.waitFor();
      assert.match(await due.innerText(), /^Next update .* \(in 4\dm\)$/);
      // Past due: red.
      const past = new Date(Date.now() - 5 * 60_000).toISOString();
      execFileSync('sqlite3', ['-cmd', '.timeout 5000', join(s.dir, 'opslens.db'),
        `UPDATE incident SET next_update_at='${past}' WHERE id=${incidentId};`]);
      await page.reload();
      await page.locator('[data-field=next-update].overdue', { hasText: 'Update overdue by' }).waitFor();
      const bg = await page.locator('[data-field=next-update]').evaluate((el) => getComputedStyle(el).backgroundColor);
      assert.equal(bg, 'rgb(198, 40, 40)');
    });

    await t.test('lifecycle: TTA/TTM/TTR in the header; a resolved incident looks closed and leaves the default list', async () => {
      const inc = await apiCall(s, 'POST', '/incidents', { title: 'Resolved later', severity: 'high' }) as { id: number };
      for (const status of ['acknowledged', 'mitigated']) await apiCall(s, 'PATCH', `/incidents/${inc.id}`, { status });
      await page.goto(`${s.base}/#/incident/${inc.id}`);
      await page.locator('.timer[data-metric=ttm]', { hasText: 'TTM' }).waitFor();
      assert.equal(await page.locator('.closed-banner').count(), 0);
      await page.getByRole('button', { name: 'Resolve' }).click();
      await page.locator('.closed-banner', { hasText: 'This incident is resolved' }).waitFor();
      await page.locator('.timer[data-metric=ttr]').waitFor();
      assert.match(await page.locator('.timer[data-metric=ttr]').getAttribute('title') ?? '', /Time to resolve/);
      assert.ok(await page.locator('.detail-view.finished').count() === 1);
      await shot(page, 'incident-resolved.png');
      await page.goto(`${s.base}/#/`);
      await page.locator('.incident-list .row').first().waitFor();
      assert.equal(await page.locator('.incident-list .row', { hasText: 'Resolved later' }).count(), 0);
      await page.locator('select[name=status]').selectOption('');
      const row = page.locator('.incident-list .row.finished', { hasText: 'Resolved later' });
      await row.waitFor();
      await page.locator('select[name=status]').selectOption('open');
    });

    await t.test('severity select is drawn by the page, readable in both themes', async () => {
      const probe = await apiCall(s, 'POST', '/incidents', { title: 'Severity contrast probe', severity: 'high' }) as { id: number };
      await page.goto(`${s.base}/#/incident/${probe.id}`);
      const sel = page.locator('.inc-head select[name=severity]');
      await sel.waitFor();
      const before = await sel.inputValue();
      const seen: string[] = [];
      for (const theme of ['dark', 'light']) {
        await page.evaluate((t) => document.documentElement.setAttribute('data-theme', t), theme);
        for (const sev of ['critical', 'high', 'medium', 'low']) {
          await sel.selectOption(sev);
          // Read the styles of the select that is in the page when the read runs: the change
          // re-renders the header, and a detached element's computed style is all empty
          // strings (seen once on a slow machine: appearance '' for "light critical").
          const st = await (await page.waitForFunction((s) => {
            const el = document.querySelector(`.inc-head select[name=severity].sev-${s}`);
            if (!el || !el.isConnected) return null;
            const cs = getComputedStyle(el);
            const opt = getComputedStyle(el.querySelector('option')!);
            if (!cs.appearance) return null;
            return { appearance: cs.appearance, color: cs.color, bg: cs.backgroundColor, arrow: cs.backgroundImage, optColor: opt.color, optBg: opt.backgroundColor };
          }, sev)).jsonValue();
          assert.ok(st, `${theme} ${sev}: no select in the page`);
          assert.equal(st.appearance, 'none', `${theme} ${sev}`);
          assert.match(st.arrow, /linear-gradient/, `${theme} ${sev}: the select keeps its arrow`);
          const ratio = contrast(st.color, st.bg);
          seen.push(`${theme}/${sev} ${ratio.toFixed(2)}`);
          assert.ok(ratio >= 4.5, `${theme} ${sev}: ${st.color} on ${st.bg} is ${ratio.toFixed(2)}:1, under 4.5:1`);
          assert.ok(contrast(st.optColor, st.optBg) >= 4.5, `${theme} ${sev} options: ${st.optColor} on ${st.optBg}`);
        }
      }
      console.log(`severity select contrast: ${seen.join(', ')}`);
      await page.evaluate(() => document.documentElement.setAttribute('data-theme', 'dark'));
      await sel.selectOption(before);
      await page.locator(`.inc-head select[name=severity].sev-${before}`).waitFor();
    });

    await t.test('rename and delete an incident from its page', async () => {
      const inc = await apiCall(s, 'POST', '/incidents', { title: 'Typo in titel', severity: 'low' }) as { id: number };
      await page.goto(`${s.base}/#/incident/${inc.id}`);
      await page.locator('h1.inc-title', { hasText: 'Typo in titel' }).click();
      const input = page.locator('input.title-input');
      await input.fill('Typo in title fixed');
      await input.press('Enter');
      await page.locator('h1.inc-title', { hasText: 'Typo in title fixed' }).waitFor();
      const got = await apiCall(s, 'GET', `/incidents/${inc.id}`) as { title: string };
      assert.equal(got.title, 'Typo in title fixed');
      await page.getByRole('button', { name: 'Delete incident', exact: true }).click();
      await page.locator('dialog[open]').getByRole('button', { name: `Delete incident #${inc.id}` }).click();
      await page.waitForFunction(() => location.hash === '#/');
      const res = await fetch(`${s.base}/api/v1/incidents/${inc.id}`, { headers: { Authorization: `Bearer ${s.token}` } });
      assert.equal(res.status, 404);
    });

    await t.test('unknown pages are a not-found page, not the API error', async () => {
      const p = await ctx.newPage();
      const res = await p.goto(`${s.base}/incidents/42/nope`);
      assert.equal(res?.status(), 404);
      await p.getByRole('heading', { name: 'Page not found' }).waitFor();
      await p.getByRole('link', { name: 'Go to the incidents' }).waitFor();
      assert.doesNotMatch(await p.content(), /missing API token|unauthorized/);
      await p.close();
    });

    await t.test('pasting an `opslens open` link into an open tab signs it in', async () => {
      const other = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const p = await other.newPage();
      await p.goto(`${s.base}/`);
      await p.getByRole('heading', { name: 'Connect to OpsLens' }).waitFor();
      const url = execFileSync(bin, ['open', '--no-browser', '--data-dir', s.dir], { encoding: 'utf8' }).trim();
      await p.evaluate((u) => { location.href = u; }, url);
      await p.locator('.incident-list .row').first().waitFor();
      assert.ok(!p.url().includes('code='), p.url());
      await other.close();
    });

    await t.test('the top bar stays on one line at 800 px', async () => {
      const narrow = await browser.newContext({ viewport: { width: 800, height: 700 } });
      await narrow.addInitScript((tok) => sessionStorage.setItem('opslens.token', tok), s.token);
      const p = await narrow.newPage();
      await p.goto(`${s.base}/#/`);
      await p.locator('[data-field=model-chip] .led').waitFor();
      // One line: every child centred on the same line, the bar one control high.
      const mids = await p.locator('.topbar > *').evaluateAll((els) => els.map((e) => {
        const r = e.getBoundingClientRect();
        return r.top + r.height / 2;
      }));
      const bar = await p.locator('.topbar').evaluate((e) => e.getBoundingClientRect().height);
      assert.ok(Math.max(...mids) - Math.min(...mids) < 4, `children on several lines: ${mids.join(', ')}`);
      assert.ok(bar < 60, `top bar ${bar}px high`);
      await shot(p, 'topbar-800.png', false);
      await narrow.close();
    });

    await t.test('postmortem: pin an entry, the draft is pre-filled, autosave, a stale tab does not overwrite, exports', async () => {
      await page.goto(`${s.base}/#/incident/${incidentId}`);
      const entry = page.locator('.tl-item', { hasText: 'Bo Chen is now incident commander' });
      await entry.hover();
      await entry.getByRole('button', { name: 'Pin', exact: true }).click();
      await entry.getByRole('button', { name: 'Pinned' }).waitFor();
      await page.getByRole('link', { name: 'Postmortem' }).click();
      await page.getByRole('heading', { name: 'Postmortem' }).waitFor();
      const timeline = page.locator('textarea[name=timeline]');
      await timeline.waitFor();
      assert.match(await timeline.inputValue(), /Bo Chen is now incident commander/);
      assert.match(await page.locator('textarea[name=summary]').inputValue(), /Checkout 5xx spike/);
      // No model here: "Draft summary" is there but disabled, saying why.
      await page.locator('[data-field=draft-why]', { hasText: 'Needs the analysis model' }).waitFor();
      assert.equal(await page.locator('[data-field=draft-summary]').isDisabled(), true);
      await page.locator('textarea[name=went_well]').fill('Rollback took 4 minutes');
      await page.locator('[data-field=save-state]', { hasText: 'version 1' }).waitFor();
      const saved = await apiCall(s, 'GET', `/incidents/${incidentId}/postmortem`) as { version: number; sections: { went_well: string } };
      assert.equal(saved.sections.went_well, 'Rollback took 4 minutes');
      // Another tab saves first: this page's next save is refused and it shows theirs.
      await apiCall(s, 'PUT', `/incidents/${incidentId}/postmortem`, { version: 1, sections: { ...saved.sections, went_badly: 'Paging was slow' } });
      await page.locator('textarea[name=went_well]').fill('mine, stale');
      await page.locator('.toast-error', { hasText: 'Someone else saved this postmortem first' }).waitFor();
      assert.equal(await page.locator('textarea[name=went_badly]').inputValue(), 'Paging was slow');
      const after = await apiCall(s, 'GET', `/incidents/${incidentId}/postmortem`) as { version: number; sections: { went_well: string } };
      assert.equal(after.version, 2);
      assert.equal(after.sections.went_well, 'Rollback took 4 minutes');
      await shot(page, 'postmortem.png');
      // The HTML export opens on its own with the screenshot inside.
      const res = await fetch(`${s.base}/api/v1/incidents/${incidentId}/postmortem/export?format=html`, { headers: { Authorization: `Bearer ${s.token}` } });
      const html = await res.text();
      mkdirSync(artifacts, { recursive: true });
      const file = join(artifacts, 'postmortem.html');
      writeFileSync(file, html);
      const p = await ctx.newPage();
      await p.goto(`file://${file}`);
      await p.getByRole('heading', { name: 'Root cause' }).waitFor();
      const loaded = await p.locator('figure img').first().evaluate((img) => (img as HTMLImageElement).naturalWidth);
      assert.ok(loaded > 0, 'screenshot shows from the HTML file alone');
      await p.close();
    });

    await t.test('similar incidents panel, the duplicate banner and merge; redaction boxes drawn in the viewer', async () => {
      const mk = async (title: string, description: string): Promise<number> =>
        ((await apiCall(s, 'POST', '/incidents', { title, description, severity: 'high' })) as { id: number }).id;
      const past = await mk('payments-api HTTP 503: connection pool exhausted', 'HikariPool timeouts after deploy v3.2');
      await apiCall(s, 'POST', `/incidents/${past}/actions`, { title: 'Alert on pool saturation' });
      await apiCall(s, 'PATCH', `/incidents/${past}`, { status: 'resolved' });
      const target = await mk('payments-api 503 errors above 5%', 'pool exhausted again');
      const dup = await mk('payments-api 503 errors above 5%', 'paged a second time');
      await page.goto(`${s.base}/#/incident/${dup}`);
      const banner = page.locator('.dup-banner');
      await banner.waitFor();
      assert.match(await banner.innerText(), new RegExp(`Possible duplicate of #${target} payments-api 503 errors above 5%`));
      const hits = page.locator('.similar .similar-hit');
      await hits.first().waitFor();
      assert.equal(await hits.first().getAttribute('data-id'), String(target));
      const old = page.locator(`.similar .similar-hit[data-id="${past}"]`);
      await old.getByText('same service payments-api').waitFor();
      await old.getByText('Alert on pool saturation').waitFor();
      assert.equal(await old.getByRole('link', { name: /postmortem/ }).getAttribute('href'), `#/incident/${past}/postmortem`);
      await shot(page, 'similar-and-duplicate.png');
      page.once('dialog', (d) => void d.accept());
      await banner.getByRole('button', { name: `Merge into #${target}` }).click();
      await page.waitForURL(new RegExp(`#/incident/${target}$`));
      await page.locator('.tl-item.tl-merged', { hasText: `#${dup}` }).waitFor();
      // The merged incident's address leads to the target.
      await page.goto(`${s.base}/#/incident/${dup}`);
      await page.waitForURL(new RegExp(`#/incident/${target}$`));
      await page.locator('.inc-head h1', { hasText: 'payments-api 503 errors above 5%' }).waitFor();

      // Redaction: draw a box over the screenshot, save, the server keeps it in image pixels.
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(dashboardPng(600, 300))], { type: 'image/png' }), 'to-redact.png');
      const up = await fetch(`${s.base}/api/v1/evidence/incident/${target}/upload-screenshot`, {
        method: 'POST', headers: { Authorization: `Bearer ${s.token}` }, body: form,
      });
      const ev = ((await up.json()) as { id: number }).id;
      const card = page.locator(`.card.shot[data-id="${ev}"]`);
      await card.getByRole('button', { name: 'View & analysis' }).click();
      await page.locator('dialog[open].viewer-dlg [data-action=redact]').click();
      const canvas = page.locator('dialog[open].redact-dlg canvas[data-ready="1"]');
      await canvas.waitFor();
      const box = (await canvas.boundingBox())!;
      const at = (x: number, y: number): [number, number] => [box.x + (x * box.width) / 600, box.y + (y * box.height) / 300];
      await page.mouse.move(...at(50, 40));
      await page.mouse.down();
      await page.mouse.move(...at(150, 90), { steps: 4 });
      await page.mouse.move(...at(250, 140), { steps: 4 });
      await page.mouse.up();
      await page.locator('dialog[open].redact-dlg .redact-boxes li[data-box="0"]').waitFor();
      await shot(page, 'redaction-box.png', false);
      await page.locator('dialog[open].redact-dlg [data-action=save-redaction]').click();
      await page.locator('dialog[open].redact-dlg').waitFor({ state: 'detached' });
      const saved = (await apiCall(s, 'GET', `/evidence/${ev}`)) as { redaction: { boxes: { x: number; y: number; width: number; height: number }[] } | null };
      const b = saved.redaction?.boxes[0];
      assert.ok(b, 'a redaction was saved');
      const near = (a: number, want: number): boolean => Math.abs(a - want) <= 3;
      assert.ok(near(b.x, 50) && near(b.y, 40) && near(b.width, 200) && near(b.height, 100), JSON.stringify(b));
      await page.locator('dialog[open].viewer-dlg [data-field=redacted]').waitFor();
      // The redacted copy really is black there (the original is untouched).
      const red = await fetch(`${s.base}/api/v1/evidence/${ev}/image?variant=redacted`, { headers: { Authorization: `Bearer ${s.token}` } });
      assert.equal(red.status, 200);
      const black = await page.evaluate(async ([url, tok]) => {
        const r = await fetch(url!, { headers: { Authorization: `Bearer ${tok}` } });
        const bmp = await createImageBitmap(await r.blob());
        const c = new OffscreenCanvas(bmp.width, bmp.height);
        const g = c.getContext('2d')!;
        g.drawImage(bmp, 0, 0);
        const inside = g.getImageData(60, 50, 180, 80).data;
        let dark = true;
        for (let i = 0; i < inside.length; i += 4) if (inside[i] || inside[i + 1] || inside[i + 2]) dark = false;
        return dark;
      }, [`${s.base}/api/v1/evidence/${ev}/image?variant=redacted`, s.token]);
      assert.ok(black, 'the box is black in the redacted copy');
      await page.keyboard.press('Escape');
    });

    await t.test('no script errors or CSP violations', () => {
      // Refusals the tests above provoke on purpose (an unknown person: 422, a stale
      // postmortem save: 409, the deleted incident's last refetch: 404) log as failed loads.
      const provoked = /Failed to load resource: the server responded with a status of (404|409|422)/;
      assert.deepEqual(problems.filter((p) => !provoked.test(p)), []);
    });
  } finally {
    await browser.close();
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
    rmSync(s.dir, { recursive: true, force: true });
  }
});
