// What every UI test file shares: the debug binary and Chromium to use, a real `opslens
// serve` on a temp data dir, API calls with its token, an analysis finished as the engine
// would, WCAG contrast, screenshots into target/ui-artifacts.

import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const targetDir = resolve(repo, process.env.CARGO_TARGET_DIR ?? 'target');
export const bin = process.env.OPSLENS_BIN ?? join(targetDir, 'debug', 'opslens');
export const artifacts = process.env.UI_ARTIFACTS ?? join(targetDir, 'ui-artifacts');
export const chromePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const CHROME_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];

export interface Server { proc: ChildProcess; dir: string; base: string; token: string }

export async function startServer(env: Record<string, string> = {}, extra: string[] = []): Promise<Server> {
  assert.ok(existsSync(bin), `${bin} is missing: run \`cargo build\` first (or set OPSLENS_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), 'opslens-ui-'));
  const proc = spawn(bin, ['serve', '--addr', '127.0.0.1:0', '--data-dir', dir, ...extra], {
    stdio: ['ignore', 'inherit', 'pipe'],
    env: { ...process.env, RUST_LOG: 'warn', ...env },
  });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  const file = join(dir, 'server.json');
  for (let i = 0; i < 300 && !existsSync(file); i++) {
    if (proc.exitCode !== null) throw new Error(`opslens serve exited: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const { addr } = JSON.parse(readFileSync(file, 'utf8')) as { addr: string };
  const token = readFileSync(join(dir, 'api-token'), 'utf8').trim();
  return { proc, dir, base: `http://${addr}`, token };
}

export async function apiCall(s: Server, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${s.base}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${s.token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.ok(res.ok, `${method} ${path}: ${res.status}`);
  return res.json();
}

/** Finishes an analysis behind the server's back, as the model engine would. */
/** Plays the engine's part: findings in the shape the analysis writes, and its job done. */
export function finishAnalysis(s: Server, evidenceId: number): void {
  const findings = JSON.stringify({
    summary: 'p99 latency of checkout-api spiked from 180 ms to 2.4 s at 14:02, with 5xx rising to 7%.',
    screen: 'dashboard',
    panels: [
      { title: 'checkout-api p99 latency', metric: 'p99', unit: 'ms', current: '2400', peak: '2400', trend: 'spiky',
        anomalies: [{ description: 'latency spike, 13× baseline', start: '14:02', end: '14:09' }] },
      { title: 'HTTP 5xx rate', unit: '%', current: '7.1', trend: 'rising', anomalies: [] },
    ],
    errors: [{ message: 'upstream connect error or disconnect/reset before headers', code: '503', time: null }],
    timestamps: ['14:00', '14:15'],
    timezone: 'UTC',
    parse: 'json',
    raw: '{"summary": "p99 latency of checkout-api spiked"}',
  }).replace(/'/g, "''");
  const now = new Date().toISOString();
  const sql = `UPDATE evidence SET analysis_state='done', analysis_model='Qwen/Qwen3-VL-2B-Instruct', analysis_ms=8400, findings='${findings}', content='p99 latency spiked at 14:02', updated_at='${now}' WHERE id=${evidenceId};
UPDATE analysis_job SET state='done', model='qwen3-vl-2b-instruct', finished_at='${now}' WHERE evidence_id=${evidenceId};`;
  execFileSync('sqlite3', ['-cmd', '.timeout 5000', join(s.dir, 'opslens.db'), sql]);
}

/** WCAG 2 contrast ratio of two computed `rgb()`/`rgba()` colours (alpha ignored). */
export function contrast(a: string, b: string): number {
  const lum = (c: string): number => {
    const [r = 0, g = 0, bl = 0] = (c.match(/[\d.]+/g) ?? []).slice(0, 3).map((v) => {
      const x = Number(v) / 255;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const la = lum(a);
  const lb = lum(b);
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

export async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  mkdirSync(artifacts, { recursive: true });
  await page.evaluate(() => document.querySelector('.toasts')?.replaceChildren());
  await page.screenshot({ path: join(artifacts, name), fullPage });
}
