// UI tests of single features in real headless Chromium against the real `opslens serve`:
// the low-disk banner, screenshot comparison, capture feedback, postmortem drafts, a remote
// analysis streaming in, the first run (getting the model), integrations in Settings.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dashboardPng } from './png.js';
import { apiCall, artifacts, bin, chromePath, CHROME_FLAGS, repo, shot, startServer, type Server } from './harness.js';

test('a nearly full disk is announced on every page before writes fail', { timeout: 60_000 }, async () => {
  // A threshold above any real disk: this data dir counts as nearly full.
  const s = await startServer({ OPSLENS_LOW_DISK_MB: '1000000000' });
  const browser = await chromium.launch({ executablePath: chromePath, args: CHROME_FLAGS, headless: true });
  try {
    const page = await browser.newPage();
    const url = execFileSync(bin, ['open', '--no-browser', '--data-dir', s.dir], { encoding: 'utf8' }).trim();
    await page.goto(url);
    const banner = page.locator('[data-field="disk-warning"]');
    await banner.waitFor({ state: 'visible' });
    assert.match(await banner.innerText(), /Disk almost full: .* free \(warning under /);
    assert.ok((await banner.innerText()).includes(s.dir), 'names the data dir');
    await page.goto(`${s.base}/#/settings`);
    await page.locator('[data-field="disk"] .error-line').waitFor();
    // The model's download is refused up front, with the figures, when it would fill the disk.
    const check = page.locator('[data-field="first-run"] [data-field="disk-check"].error-line');
    await check.waitFor();
    assert.match(await check.innerText(), /^Not enough disk space: the download needs .* should stay free, but .* has only .* free\./);
    assert.ok(await page.locator('[data-field="first-run"] [data-action="get-model"]').isDisabled());
    await shot(page, 'disk-warning.png', false);
  } finally {
    await browser.close();
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('two screenshots compare side by side, faded and split', { timeout: 90_000 }, async () => {
  const s = await startServer();
  const browser = await chromium.launch({ executablePath: chromePath, args: CHROME_FLAGS, headless: true });
  try {
    const inc = await apiCall(s, 'POST', '/incidents', { title: 'checkout p99 spike after deploy v2.41.0' }) as { id: number };
    for (const [name, color] of [['before-deploy.png', [90, 200, 120]], ['after-deploy.png', [242, 73, 92]]] as const) {
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(dashboardPng(640, 360, [...color]))], { type: 'image/png' }), name);
      const res = await fetch(`${s.base}/api/v1/evidence/incident/${inc.id}/upload-screenshot`, {
        method: 'POST', headers: { Authorization: `Bearer ${s.token}` }, body: form,
      });
      assert.equal(res.status, 201, await res.text());
    }
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const url = execFileSync(bin, ['open', '--no-browser', '--data-dir', s.dir], { encoding: 'utf8' }).trim();
    await page.goto(url);
    await page.waitForFunction(() => !document.querySelector('.connect'));
    await page.goto(`${s.base}/#/incident/${inc.id}`);
    const open = page.locator('[data-action="compare"]');
    await open.waitFor({ state: 'visible' });
    await open.click();
    const stage = page.locator('[data-field="compare-stage"]');
    await stage.locator('img[data-role="before"]').waitFor();
    await stage.locator('img[data-role="after"]').waitFor();
    // Both images really load (through the token-carrying image cache).
    const widths = await stage.locator('img').evaluateAll((imgs) => imgs.map((i) => (i as HTMLImageElement).naturalWidth));
    assert.deepEqual(widths, [640, 640]);
    await shot(page, 'compare-side.png', false);
    await page.getByRole('button', { name: 'Overlay' }).click();
    await page.locator('input[name="amount"]').fill('30');
    const opacity = await stage.locator('img.compare-top').evaluate((i) => getComputedStyle(i).opacity);
    assert.equal(opacity, '0.3');
    await page.getByRole('button', { name: 'Slider' }).click();
    await page.locator('input[name="amount"]').fill('40');
    const clip = await stage.locator('img.compare-top').evaluate((i) => (i as HTMLElement).style.clipPath);
    assert.equal(clip, 'inset(0px 0px 0px 40%)');
    await shot(page, 'compare-split.png', false);
    // Swapping the pair re-draws with the chosen images.
    const ids = await page.locator('select[name="before"] option').evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value));
    await page.locator('select[name="before"]').selectOption(ids[1]!);
    await page.locator('select[name="after"]').selectOption(ids[0]!);
    await stage.locator(`img[alt="before (#${ids[1]})"]`).waitFor();
  } finally {
    await browser.close();
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
    rmSync(s.dir, { recursive: true, force: true });
  }
});

// The capture shortcut files onto the incident the window shows and the window says where the
// picture went. A server with a screen (its own Xvfb) takes `POST /capture {}`, the same call
// into the core as the desktop's shortcut (no incident named).
test('capture feedback: onto the incident on screen, a toast with a link, and a fallback said so', { timeout: 120_000 }, async (t) => {
  const xvfbRun = '/usr/bin/xvfb-run';
  if (!existsSync(xvfbRun)) {
    t.skip('xvfb-run missing');
    return;
  }
  assert.ok(existsSync(bin), `${bin} is missing: run \`cargo build\` first (or set OPSLENS_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), 'opslens-ui-capture-'));
  const data = join(dir, 'data');
  const session = spawn(xvfbRun, ['-a', '-s', '-screen 0 1280x720x24', bin, 'serve', '--addr', '127.0.0.1:0', '--data-dir', data],
    { detached: true, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' } });
  const browser = await chromium.launch({ executablePath: chromePath, args: CHROME_FLAGS, headless: true });
  try {
    const file = join(data, 'server.json');
    for (let i = 0; i < 300 && !existsSync(file); i++) {
      if (session.exitCode !== null) throw new Error('opslens serve exited');
      await new Promise((r) => setTimeout(r, 100));
    }
    const { addr } = JSON.parse(readFileSync(file, 'utf8')) as { addr: string };
    const s = { base: `http://${addr}`, token: readFileSync(join(data, 'api-token'), 'utf8').trim() } as Server;
    const shown = (await apiCall(s, 'POST', '/incidents', { title: 'Checkout p99 spike' }) as { id: number }).id;
    const other = (await apiCall(s, 'POST', '/incidents', { title: 'DB replica lag' }) as { id: number }).id;
    const focus = async (): Promise<number | null> => ((await apiCall(s, 'GET', '/focus')) as { incident_id: number | null }).incident_id;
    const until = async (want: number | null): Promise<void> => {
      for (let i = 0; i < 100 && (await focus()) !== want; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(await focus(), want, 'the page tells the server which incident it shows');
    };

    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'dark' })).newPage();
    page.setDefaultTimeout(15_000);
    const url = execFileSync(bin, ['open', '--no-browser', '--data-dir', data], { encoding: 'utf8' }).trim();
    await page.goto(url);
    await page.waitForFunction(() => location.hash === '#/');
    await page.evaluate((id) => { location.hash = `#/incident/${id}`; }, shown);
    await page.locator('.inc-head h1').waitFor();
    await until(shown);

    // On the incident page: the capture goes there although another incident changed later.
    const ev = await apiCall(s, 'POST', '/capture', {}) as { id: number; incident_id: number };
    assert.equal(ev.incident_id, shown);
    const toastBox = page.locator('[data-field=capture-toast]').last();
    await toastBox.waitFor();
    assert.match(await toastBox.innerText(), new RegExp(`Screenshot added to #${shown} Checkout p99 spike`));
    assert.equal(await toastBox.locator('[data-field=capture-fallback]').count(), 0, 'no fallback to explain');
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'capture-toast.png') });
    await page.evaluate(() => document.querySelector('.toasts')?.replaceChildren());

    // Another window claimed the focus: the capture goes to its incident, and this window
    // says the picture is not on the incident it shows; the link leads there.
    await apiCall(s, 'PUT', '/focus', { incident_id: other });
    const ev2 = await apiCall(s, 'POST', '/capture', {}) as { incident_id: number };
    assert.equal(ev2.incident_id, other);
    await toastBox.waitFor();
    assert.match(await toastBox.innerText(), new RegExp(`Screenshot added to #${other} DB replica lag`));
    assert.match(await toastBox.locator('[data-field=capture-fallback]').innerText(), new RegExp(`Not on #${shown}, the incident shown here`));
    await page.screenshot({ path: join(artifacts, 'capture-toast-elsewhere.png') });
    await toastBox.locator('a[data-field=capture-link]').click();
    await page.waitForFunction((id) => location.hash === `#/incident/${id}`, other);
    await until(other);
    await page.evaluate(() => document.querySelector('.toasts')?.replaceChildren());

    // The list: no incident on screen, the fallback rule picks one, and the toast says so.
    await page.evaluate(() => { location.hash = '#/'; });
    await until(null);
    const ev3 = await apiCall(s, 'POST', '/capture', {}) as { incident_id: number };
    await toastBox.waitFor();
    assert.match(await toastBox.innerText(), new RegExp(`Screenshot added to #${ev3.incident_id} `));
    assert.match(await toastBox.locator('[data-field=capture-fallback]').innerText(), /No incident is open in this window/);
  } finally {
    await browser.close();
    try { process.kill(-session.pid!, 'SIGTERM'); } catch { /* gone already */ }
    rmSync(dir, { recursive: true, force: true });
  }
});

// "Draft summary" with a model: the tiny committed checkpoint (its words are noise, so the
// test checks the label and that the user's text stays), inserted and autosaved.
test('postmortem: the local model drafts a summary, inserted labelled below what the user wrote', { timeout: 120_000 }, async () => {
  const s = await startServer({}, ['--model-dir', join(repo, 'models/test/tiny-qwen3-vl'), '--model-id', 'tiny-qwen3-vl-test']);
  const browser = await chromium.launch({ executablePath: chromePath, args: CHROME_FLAGS, headless: true });
  try {
    const inc = await apiCall(s, 'POST', '/incidents', { title: 'checkout p99 spike after deploy v2.41.0' }) as { id: number };
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.setDefaultTimeout(30_000);
    const url = execFileSync(bin, ['open', '--no-browser', '--data-dir', s.dir], { encoding: 'utf8' }).trim();
    await page.goto(url);
    await page.waitForFunction(() => location.hash === '#/');
    await page.evaluate((id) => { location.hash = `#/incident/${id}/postmortem`; }, inc.id);
    const summary = page.locator('textarea[name=summary]');
    await summary.waitFor();
    await summary.fill('Checkout p99 rose to 2.4 s after the v2.41.0 deploy.');
    const btn = page.locator('[data-field=draft-summary]');
    await page.waitForFunction(() => !(document.querySelector('[data-field=draft-summary]') as HTMLButtonElement).disabled);
    // The model loads on the first ask: asking again until it answers.
    for (let i = 0; i < 60; i++) {
      await btn.click();
      await page.waitForFunction(() => !(document.querySelector('[data-field=draft-summary]') as HTMLButtonElement).disabled);
      if ((await summary.inputValue()).includes('Drafted by the local model')) break;
      assert.match(await page.locator('[data-field=draft-why]').innerText(), /loading/);
      await new Promise((r) => setTimeout(r, 500));
    }
    const text = await summary.inputValue();
    assert.ok(text.startsWith('Checkout p99 rose to 2.4 s after the v2.41.0 deploy.\n\n> **Drafted by the local model — review before sharing**\n'), text);
    // Autosaved like typing (the user's own text was saved as version 1 before).
    let saved = '';
    for (let i = 0; i < 50 && saved !== text; i++) {
      await new Promise((r) => setTimeout(r, 200));
      saved = ((await apiCall(s, 'GET', `/incidents/${inc.id}/postmortem`)) as { sections: { summary: string } }).sections.summary;
    }
    assert.equal(saved, text);
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'postmortem-draft-summary.png') });
  } finally {
    await browser.close();
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a remote analysis fills the findings panel as the model writes, and says screenshots leave the machine', { timeout: 90_000 }, async () => {
  // A stand-in OpenAI-compatible server that writes its findings slowly, as SSE chunks.
  const findings = JSON.stringify({
    summary: 'Checkout p99 latency spiked to 2.4 s at 14:05.', screen: 'dashboard',
    panels: [{ title: 'Checkout p99', metric: 'latency', unit: 'ms', current: '2400', peak: '2400', trend: 'spiky',
      anomalies: [{ description: 'spike', start: '14:05', end: null }] }],
    errors: [], timestamps: ['14:05'], timezone: 'UTC',
  });
  const pieces = 30;
  const per = Math.ceil(findings.length / pieces);
  const ai = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const tick = setInterval(() => {
        if (i * per >= findings.length) {
          clearInterval(tick);
          res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
          res.end('data: [DONE]\n\n');
          return;
        }
        const piece = findings.slice(i * per, (i + 1) * per);
        i += 1;
        res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`);
      }, 250);
    });
  });
  await new Promise<void>((r) => ai.listen(0, '127.0.0.1', r));
  const aiUrl = `http://127.0.0.1:${(ai.address() as AddressInfo).port}`;
  const s = await startServer({ OPSLENS_ANALYSIS_URL: aiUrl, OPSLENS_ANALYSIS_MODEL: 'stand-in' });
  const browser = await chromium.launch({ executablePath: chromePath, args: CHROME_FLAGS, headless: true });
  try {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.setDefaultTimeout(20_000);
    const inc = (await apiCall(s, 'POST', '/incidents', { title: 'Remote analysis', severity: 'high' })) as { id: number };
    const url = execFileSync(bin, ['open', '--no-browser', '--data-dir', s.dir], { encoding: 'utf8' }).trim();
    await page.goto(url);
    await page.locator('[data-field="model-chip"]', { hasText: 'screenshots leave this machine' }).waitFor();
    await page.goto(`${s.base}/#/incident/${inc.id}`);
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(dashboardPng(640, 360))], { type: 'image/png' }), 'remote.png');
    const res = await fetch(`${s.base}/api/v1/evidence/incident/${inc.id}/upload-screenshot`, {
      method: 'POST', headers: { Authorization: `Bearer ${s.token}` }, body: form,
    });
    assert.equal(res.status, 201);
    const card = page.locator('.card.shot', { hasText: 'remote.png' });
    await card.getByRole('button', { name: 'View & analysis' }).click();
    const viewer = page.locator('dialog[open].viewer-dlg');
    await viewer.locator('[data-field="privacy"]', { hasText: `analysed by ${aiUrl}: screenshots leave this machine` }).waitFor();
    // The text grows in the panel while the model writes…
    const partial = viewer.locator('[data-field="partial"]');
    await partial.waitFor({ state: 'visible' });
    await page.waitForFunction(() => (document.querySelector('[data-field="partial"]')?.textContent ?? '').includes('"summary"'));
    const early = (await partial.textContent()) ?? '';
    assert.ok(early.length > 0 && early.length < findings.length && findings.startsWith(early), `partial: ${early}`);
    await shot(page, 'viewer-streaming.png', false);
    // …and the parsed findings replace it when the analysis is done.
    await viewer.locator('.finding-panels', { hasText: 'Checkout p99' }).waitFor();
    assert.equal(await viewer.locator('[data-field="partial"]').count(), 0);
    await viewer.locator('.summary', { hasText: 'spiked to 2.4 s' }).waitFor();
    await page.keyboard.press('Escape');
    await page.goto(`${s.base}/#/settings`);
    await page.locator('[data-field="privacy"]', { hasText: 'screenshots leave this machine' }).waitFor();
  } finally {
    await browser.close();
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
    ai.close();
    rmSync(s.dir, { recursive: true, force: true });
  }
});

// A stand-in for the Hugging Face hub's `resolve` endpoint (byte ranges, `x-repo-commit`,
// `x-linked-etag`) serving the committed tiny checkpoint slowly, so the download can be
// watched and stopped; no network.
const HUB_REV = '0123456789abcdef0123456789abcdef01234567';
async function fakeHub(pauseMs: number): Promise<{ url: string; close: () => void }> {
  const { createHash } = await import('node:crypto');
  const dir = join(repo, 'models/test/tiny-qwen3-vl');
  const srv = createServer((req, res) => {
    const m = /^\/opslens\/tiny\/resolve\/([^/]+)\/(.+)$/.exec(req.url ?? '');
    const file = m && m[1] === HUB_REV ? join(dir, decodeURIComponent(m[2] ?? '')) : '';
    if (!file || !existsSync(file)) { res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found'); return; }
    const bytes = readFileSync(file);
    const range = /bytes=(\d+)-(\d*)/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const end = range && range[2] ? Math.min(Number(range[2]), bytes.length - 1) : bytes.length - 1;
    res.writeHead(206, {
      'x-repo-commit': HUB_REV,
      'x-linked-etag': `"${createHash('sha256').update(bytes).digest('hex')}"`,
      'content-range': `bytes ${start}-${end}/${bytes.length}`,
      'content-length': String(end + 1 - start),
    });
    if (req.method === 'HEAD') { res.end(); return; }
    let at = start;
    const step = (): void => {
      if (res.destroyed) return;
      if (at > end) { res.end(); return; }
      const to = Math.min(at + 16 * 1024, end + 1);
      res.write(bytes.subarray(at, to));
      at = to;
      setTimeout(step, pauseMs);
    };
    step();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, close: () => { srv.closeAllConnections(); srv.close(); } };
}

test('first run: get the model in one click, cancel, resume; the waiting screenshot is analysed and the cost measured', { timeout: 180_000 }, async () => {
  const hub = await fakeHub(120);
  const work = mkdtempSync(join(tmpdir(), 'opslens-firstrun-'));
  const manifest = JSON.parse(readFileSync(join(repo, 'models/manifest.json'), 'utf8')) as {
    default: string; models: { id: string; hub: boolean; repo: string; revision: string; files: { size: number }[] }[];
  };
  const tiny = manifest.models.find((x) => x.id === 'tiny-qwen3-vl-test');
  assert.ok(tiny);
  const total = tiny.files.reduce((n, f) => n + f.size, 0);
  manifest.models.push({ ...tiny, id: 'tiny-hub', hub: true, repo: 'opslens/tiny', revision: HUB_REV });
  manifest.default = 'tiny-hub';
  writeFileSync(join(work, 'manifest.json'), JSON.stringify(manifest));
  const s = await startServer({
    OPSLENS_MODELS_MANIFEST: join(work, 'manifest.json'), HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(work, 'hub'),
    HF_HUB_OFFLINE: '', OPSLENS_ANALYSIS_MAX_TOKENS: '24', OPSLENS_ANALYSIS_POLL_MS: '300',
  });
  const browser = await chromium.launch({ executablePath: chromePath, args: CHROME_FLAGS, headless: true });
  try {
    // A screenshot filed before the model exists.
    const inc = await apiCall(s, 'POST', '/incidents', { title: 'First day on call' }) as { id: number };
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(dashboardPng(1280, 720))], { type: 'image/png' }), 'grafana.png');
    const up = await fetch(`${s.base}/api/v1/evidence/incident/${inc.id}/upload-screenshot`, {
      method: 'POST', headers: { Authorization: `Bearer ${s.token}` }, body: form,
    });
    assert.equal(up.status, 201);
    const ev = (await up.json()) as { id: number; analysis_state: string };
    assert.equal(ev.analysis_state, 'waiting-for-model');

    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' })).newPage();
    page.setDefaultTimeout(30_000);
    await page.goto(execFileSync(bin, ['open', '--no-browser', '--data-dir', s.dir], { encoding: 'utf8' }).trim());
    const card = page.locator('[data-field="first-run"]');
    // One click, the honest size and a time estimate, the disk checked, the waiting screenshot.
    const get = card.locator('[data-action="get-model"]');
    await get.waitFor();
    assert.equal(await get.innerText(), `Get the model (${(total / 1024).toFixed(1)} KiB)`);
    assert.match(await card.locator('[data-field="estimate"]').innerText(), /That takes about 1 s at 100 Mbit\/s, about 1 s at 20 Mbit\/s\./);
    assert.match(await card.locator('[data-field="disk-check"]').innerText(), /free on the disk of .*: it fits\./);
    assert.match(await card.locator('[data-field="waiting"]').innerText(), /^1 screenshot waits for the model/);
    await shot(page, 'first-run-card.png', false);

    await get.click();
    await card.locator('[data-field="pull"] progress').waitFor();
    await card.locator('[data-field="pull"]', { hasText: '(model.safetensors)' }).waitFor();
    await shot(page, 'first-run-downloading.png', false);
    await card.locator('[data-action="cancel-pull"]').click();
    await card.locator('[data-field="cancelled"]', { hasText: 'Stopped;' }).waitFor();
    assert.match(await get.innerText(), /^Resume: get the remaining /);
    const m = await apiCall(s, 'GET', '/models/tiny-hub') as { pull: { state: string }; download: { present_bytes: number } };
    assert.equal(m.pull.state, 'cancelled');
    assert.ok(m.download.present_bytes > 0, 'what arrived is kept');

    // Resume; the card goes once the model is there, and the screenshot is analysed.
    await get.click();
    await card.waitFor({ state: 'hidden', timeout: 90_000 });
    await page.waitForFunction(async ([base, token, id]) => {
      const r = await fetch(`${base}/api/v1/evidence/${id}`, { headers: { Authorization: `Bearer ${token}` } });
      return ((await r.json()) as { analysis_state: string }).analysis_state === 'done';
    }, [s.base, s.token, ev.id] as const, { timeout: 90_000, polling: 500 });

    // Settings tell what an analysis costs here, once measured.
    await page.evaluate(() => { location.hash = '#/settings'; });
    const cost = page.locator('[data-field="first-run"] [data-field="calibration"]', { hasText: 'An analysis takes about' });
    for (let i = 0; i < 12 && !(await cost.isVisible()); i++) {
      await page.waitForTimeout(2000);
      await page.evaluate(() => { location.hash = '#/'; });
      await page.evaluate(() => { location.hash = '#/settings'; });
    }
    await cost.waitFor();
    assert.match(await cost.innerText(), /measured on cpu: first token after \d+\.\d s for a 1280×720 screenshot/);
    await shot(page, 'first-run-calibrated.png', false);
  } finally {
    await browser.close();
    hub.close();
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
    rmSync(s.dir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
});

test('settings: integrations with health, recent errors, destinations; a key set and tested', { timeout: 90_000 }, async () => {
  // A Slack incoming webhook that is live (it refuses the empty check message with 400).
  const slack = createServer((_req, res) => { res.writeHead(400).end('no_text'); });
  await new Promise<void>((r) => slack.listen(0, '127.0.0.1', r));
  const hook = `http://127.0.0.1:${(slack.address() as AddressInfo).port}/services/T0/B0/secret`;
  // PagerDuty configured against a port nobody listens on: its sync fails and is recorded.
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const deadPort = (dead.address() as AddressInfo).port;
  dead.close();
  const s = await startServer({ OPSLENS_KEYCHAIN: 'off', PAGERDUTY_API_TOKEN: 'pd-token', PAGERDUTY_API_URL: `http://127.0.0.1:${deadPort}` });
  const browser = await chromium.launch({ executablePath: chromePath, args: CHROME_FLAGS, headless: true });
  try {
    const sync = await fetch(`${s.base}/api/v1/integrations/pagerduty/sync`, { method: 'POST', headers: { Authorization: `Bearer ${s.token}` } });
    assert.equal(sync.status, 502);
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 1400 }, colorScheme: 'dark' })).newPage();
    page.setDefaultTimeout(20_000);
    await page.goto(execFileSync(bin, ['open', '--no-browser', '--data-dir', s.dir], { encoding: 'utf8' }).trim());
    await page.evaluate(() => { location.hash = '#/settings'; });
    const pd = page.locator('[data-integration="pagerduty"]');
    await pd.locator('[data-field="health"]', { hasText: 'failing' }).waitFor();
    assert.ok((await pd.locator('[data-field="recent-errors"] li').count()) >= 1);
    assert.equal(await pd.locator('[data-field="destination"]').innerText(), `http://127.0.0.1:${deadPort}`);
    assert.equal(await pd.locator('[data-field="sends"]').innerText(), 'nothing (reads only)');

    const sl = page.locator('[data-integration="slack"]');
    assert.equal(await sl.locator('[data-field="health"]').innerText(), 'not set up');
    assert.match(await sl.locator('[data-field="sends"]').innerText(), /incident\.created/);
    await sl.locator('[data-action="test"]').click();
    await sl.locator('[data-field="test-result"]', { hasText: 'not configured: set SLACK_WEBHOOK_URL' }).waitFor();
    await sl.locator('input[name="SLACK_WEBHOOK_URL"]').fill(hook);
    await sl.locator('form.key-form button[type="submit"]').click();
    await page.locator('.toast', { hasText: 'SLACK_WEBHOOK_URL: stored in' }).waitFor();
    assert.equal(await sl.locator('input[name="SLACK_WEBHOOK_URL"]').inputValue(), '', 'the value is not kept on the page');
    assert.ok(readFileSync(join(s.dir, 'secrets.env'), 'utf8').includes(hook));
    await sl.locator('[data-action="test"]').click();
    await sl.locator('[data-field="test-result"]', { hasText: 'webhook URL is live' }).waitFor();
    await shot(page, 'settings-integrations.png', true);
  } finally {
    await browser.close();
    slack.close();
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
    rmSync(s.dir, { recursive: true, force: true });
  }
});
