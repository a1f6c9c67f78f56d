// Builds the UI into dist/: TypeScript compiled by tsc (ES modules, no bundler), plus the
// static files. Deterministic, so the committed dist/ can be checked against a fresh build.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'assets'), { recursive: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
} catch {
  console.error('ui build: TypeScript errors (above)');
  process.exit(1);
}
// Pages at the root (index.html, and overlay.html which only the desktop app loads, from its
// bundled copy of dist/); everything else under assets/.
for (const f of readdirSync(join(root, 'static'))) {
  cpSync(join(root, 'static', f), f.endsWith('.html') ? join(dist, f) : join(dist, 'assets', f));
}
let total = 0;
const walk = (d) => {
  for (const f of readdirSync(d)) {
    const p = join(d, f);
    const s = statSync(p);
    if (s.isDirectory()) walk(p);
    else total += s.size;
  }
};
walk(dist);
console.log(`ui/dist: ${(total / 1024).toFixed(1)} KiB`);
