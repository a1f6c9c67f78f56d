// The screenshot viewer: the image with zoom and pan, and beside it the analysis (summary,
// panels, anomalies, errors) with its state, following the incident's live refreshes.

import { api, followAnalysis } from '../api.js';
import { analysisBadge, dialog, kbd } from '../components.js';
import { h, replace, type Child } from '../dom.js';
import { bytes, clock } from '../format.js';
import type { Evidence } from '../types.js';
import type { Ctx } from './ctx.js';
import { openRedactor } from './redact.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The one-line summary of a screenshot's findings, if the analysis produced one. */
export function summaryOf(e: Evidence): string | null {
  const f = e.findings as { [k: string]: Json } | null;
  if (f && typeof f === 'object' && typeof f['summary'] === 'string') return f['summary'];
  if (e.analysis_state === 'done' && e.content) return e.content.split('\n')[0] ?? null;
  return null;
}

const STATE_TEXT: Record<string, string> = {
  'waiting-for-model': 'No analysis model is loaded yet. The screenshot is stored and will be analysed as soon as the local model is installed (Settings → Model).',
  queued: 'In the analysis queue; it starts when the model is free.',
  running: 'The model is reading this screenshot now…',
  failed: 'The analysis failed.',
};

const ZOOMS = [0.1, 0.25, 0.33, 0.5, 0.67, 0.75, 1, 1.25, 1.5, 2, 3, 4, 6, 8];

export function openViewer(ctx: Ctx, id: number): void {
  const img = h('img', { class: 'viewer-img', alt: 'screenshot', draggable: 'false' });
  const stage = h('div', { class: 'stage', tabindex: 0, 'aria-label': 'Image; drag to pan, wheel to zoom' }, img);
  const zoomLabel = h('span', { class: 'zoom-label', 'aria-live': 'polite' }, 'fit');
  let zoom = 0; // 0 = fit to the stage
  let x = 0;
  let y = 0;

  function apply(): void {
    if (zoom === 0) {
      img.classList.add('fit');
      img.style.transform = '';
      zoomLabel.textContent = 'fit';
      return;
    }
    img.classList.remove('fit');
    img.style.transform = `translate(${x}px, ${y}px) scale(${zoom})`;
    zoomLabel.textContent = `${Math.round(zoom * 100)}%`;
  }
  function fitScale(): number {
    const w = img.naturalWidth || 1;
    const hh = img.naturalHeight || 1;
    return Math.min(stage.clientWidth / w, stage.clientHeight / hh, 1);
  }
  function step(dir: 1 | -1): void {
    const cur = zoom === 0 ? fitScale() : zoom;
    const next = dir > 0 ? ZOOMS.find((z) => z > cur + 1e-6) : [...ZOOMS].reverse().find((z) => z < cur - 1e-6);
    setZoom(next ?? cur);
  }
  function setZoom(z: number): void {
    if (zoom === 0) {
      // Start from the fitted, centred image so zooming does not jump.
      const s = fitScale();
      x = (stage.clientWidth - img.naturalWidth * s) / 2;
      y = (stage.clientHeight - img.naturalHeight * s) / 2;
      zoom = s;
    }
    const cx = stage.clientWidth / 2;
    const cy = stage.clientHeight / 2;
    x = cx - ((cx - x) * z) / zoom;
    y = cy - ((cy - y) * z) / zoom;
    zoom = z;
    apply();
  }
  const btn = (label: string, title: string, fn: () => void): HTMLButtonElement =>
    h('button', { type: 'button', class: 'ghost small', title, 'aria-label': title, onclick: fn }, label);
  const controls = h('div', { class: 'zoom-controls' },
    btn('−', 'Zoom out (-)', () => step(-1)),
    zoomLabel,
    btn('+', 'Zoom in (+)', () => step(1)),
    btn('Fit', 'Fit (0)', () => { zoom = 0; apply(); }),
    btn('1:1', 'Actual size (1)', () => setZoom(1)),
    h('button', {
      type: 'button', class: 'small', 'data-action': 'redact', title: 'Black out parts before sharing',
      onclick: () => {
        const e = ctx.evidence.find((x) => x.id === id);
        if (e) openRedactor(e, () => void ctx.refresh('evidence'));
      },
    }, 'Redact…'));

  stage.addEventListener('wheel', (e) => {
    e.preventDefault();
    step(e.deltaY < 0 ? 1 : -1);
  }, { passive: false });
  let drag: { sx: number; sy: number; x: number; y: number } | null = null;
  stage.addEventListener('pointerdown', (e) => {
    if (zoom === 0) return;
    drag = { sx: e.clientX, sy: e.clientY, x, y };
    stage.setPointerCapture(e.pointerId);
    stage.classList.add('dragging');
  });
  stage.addEventListener('pointermove', (e) => {
    if (!drag) return;
    x = drag.x + e.clientX - drag.sx;
    y = drag.y + e.clientY - drag.sy;
    apply();
  });
  const endDrag = (): void => { drag = null; stage.classList.remove('dragging'); };
  stage.addEventListener('pointerup', endDrag);
  stage.addEventListener('pointercancel', endDrag);

  const side = h('aside', { class: 'analysis', 'aria-label': 'Analysis' });
  const body = h('div', { class: 'viewer' },
    h('div', { class: 'viewer-main' }, controls, stage),
    side);
  const d = dialog('Screenshot', body, { wide: true });
  d.el.classList.add('viewer-dlg');
  d.el.addEventListener('keydown', (e) => {
    if (e.key === '+' || e.key === '=') step(1);
    else if (e.key === '-') step(-1);
    else if (e.key === '0') { zoom = 0; apply(); }
    else if (e.key === '1') setZoom(1);
    else return;
    e.preventDefault();
    e.stopPropagation();
  });

  api.imageUrl(id).then((u) => { img.src = u; }, () => replace(stage, h('p', { class: 'error-line' }, 'The image could not be loaded.')));
  apply();

  // Where screenshots go: said plainly when a remote server analyses them.
  const privacy = h('p', { class: 'privacy-note', 'data-field': 'privacy', hidden: true });
  api.vlmStatus().then((st) => {
    if (st.privacy) {
      privacy.hidden = false;
      privacy.textContent = `${st.privacy}.`;
    }
  }, () => {});
  // The model's text while it writes, replaced by the parsed findings when it is done.
  const partial = h('pre', { class: 'content partial-text', 'data-field': 'partial', 'aria-live': 'polite', hidden: true });
  let following: AbortController | null = null;
  const follow = (): void => {
    if (following) return;
    const ctl = new AbortController();
    following = ctl;
    void followAnalysis(id, (p) => {
      if (p.state === 'running' && p.text) {
        partial.hidden = false;
        partial.textContent = p.text;
      }
    }, ctl.signal).finally(() => {
      if (following === ctl) following = null;
    });
  };

  let last = '';
  const renderSide = (): void => {
    const e = ctx.evidence.find((x) => x.id === id);
    if (!e) return;
    const sig = `${e.updated_at}|${e.analysis_state}`;
    if (sig === last) return;
    last = sig;
    d.el.querySelector('.dlg-head h2')!.textContent = e.title;
    const active = e.analysis_state === 'running' || e.analysis_state === 'queued';
    if (active) follow();
    else {
      partial.hidden = true;
      partial.textContent = '';
    }
    replace(side, privacy, ...analysisPanel(e), active ? partial : null);
  };
  renderSide();
  ctx.listeners.add(renderSide);
  void d.closed.then(() => {
    ctx.listeners.delete(renderSide);
    following?.abort();
  });
  stage.focus();
}

function analysisPanel(e: Evidence): Child[] {
  const state = e.analysis_state;
  const meta = h('p', { class: 'muted small' },
    `#${e.id} · ${e.image ? `${e.image.width}×${e.image.height} ${e.image.mime} · ${bytes(e.image.bytes)}` : ''} · added ${clock(e.created_at)}`,
    e.redaction ? h('span', { class: 'redacted-note', 'data-field': 'redacted' },
      ` · redacted (${e.redaction.boxes.length} box${e.redaction.boxes.length === 1 ? '' : 'es'}): exports use the redacted copy`) : null);
  const head = h('div', { class: 'analysis-head' }, h('h3', null, 'Analysis'), state ? analysisBadge(state) : null);
  if (state !== 'done') {
    return [head, h('p', { class: `state-text state-${state ?? 'none'}` }, STATE_TEXT[state ?? ''] ?? 'Not analysed.'),
      state === 'failed' && e.analysis_error ? h('p', { class: 'error-line' }, e.analysis_error) : null,
      state === 'failed' ? reanalyse(e) : null,
      meta, h('p', { class: 'muted small' }, 'This panel updates by itself. Zoom: ', kbd('+'), ' ', kbd('-'), ' ', kbd('0'), ' fit, drag to pan.')];
  }
  const f = (e.findings ?? {}) as { [k: string]: Json };
  // Our own keys get their own rendering; anything else a model adds is listed generically.
  const known = ['summary', 'screen', 'panels', 'anomalies', 'errors', 'timestamps', 'timezone', 'parse', 'raw', 'questions'];
  const sections: Child[] = [];
  const summary = summaryOf(e);
  if (summary) sections.push(h('p', { class: 'summary' }, summary));
  sections.push(panelsSection(f['panels']));
  sections.push(listSection('Anomalies', f['anomalies'], 'anomalies'));
  sections.push(listSection('Errors', f['errors'], 'errors'));
  const times = Array.isArray(f['timestamps']) ? f['timestamps'].map(String) : [];
  if (times.length || typeof f['timezone'] === 'string') {
    sections.push(h('p', { class: 'small' }, h('strong', null, 'Times on screen: '), times.join(', '),
      typeof f['timezone'] === 'string' ? ` (${f['timezone']})` : null));
  }
  const rest = Object.entries(f).filter(([k]) => !known.includes(k));
  for (const [k, v] of rest) sections.push(listSection(k.replace(/_/g, ' '), v, k));
  if (!f || Object.keys(f).length === 0) {
    sections.push(h('pre', { class: 'content' }, e.content || 'The model returned no findings.'));
  }
  if (typeof f['raw'] === 'string') {
    sections.push(h('details', { class: 'raw-output' },
      h('summary', null, `Model output (read as ${typeof f['parse'] === 'string' ? f['parse'] : 'text'})`),
      h('pre', { class: 'content' }, f['raw'])));
  }
  const timing = [e.analysis_model, e.analysis_ms != null ? `${(e.analysis_ms / 1000).toFixed(1)} s` : null].filter(Boolean).join(' · ');
  return [head, ...sections, questionsSection(f['questions']), askForm(e), reanalyse(e),
    timing ? h('p', { class: 'muted small' }, `Model: ${timing}`) : null, meta];
}

function panelsSection(v: Json | undefined): HTMLElement | null {
  if (!Array.isArray(v) || !v.length) return null;
  return h('section', { class: 'finding finding-panels' },
    h('h4', null, `Panels (${v.length})`),
    h('ul', null, v.map((p) => {
      if (p === null || typeof p !== 'object' || Array.isArray(p)) return h('li', null, String(p));
      const vals = [
        p['current'] != null ? `now ${String(p['current'])}` : null,
        p['peak'] != null ? `peak ${String(p['peak'])}` : null,
        p['trend'] != null ? String(p['trend']) : null,
      ].filter(Boolean).join(', ');
      const unit = p['unit'] != null ? ` ${String(p['unit'])}` : '';
      const anomalies = Array.isArray(p['anomalies']) ? p['anomalies'] : [];
      return h('li', null,
        h('strong', null, String(p['title'] ?? 'panel')),
        p['metric'] != null ? h('span', { class: 'muted' }, ` ${String(p['metric'])}`) : null,
        vals ? `: ${vals}${unit}` : null,
        anomalies.length ? h('ul', { class: 'anomalies' }, anomalies.map((a) => h('li', null, describe(a)))) : null);
    })));
}

function questionsSection(v: Json | undefined): HTMLElement | null {
  if (!Array.isArray(v) || !v.length) return null;
  return h('section', { class: 'finding finding-questions' },
    h('h4', null, 'Questions'),
    h('dl', { class: 'qa' }, v.flatMap((q) => {
      if (q === null || typeof q !== 'object' || Array.isArray(q)) return [];
      return [h('dt', null, String(q['question'] ?? '')), h('dd', null, String(q['answer'] ?? ''))];
    })));
}

/** Ask the model about this screenshot; the answer appears here when the job is done. */
function askForm(e: Evidence): HTMLElement {
  const input = h('input', { type: 'text', name: 'question', placeholder: 'Ask about this screenshot, e.g. what happened at 14:05?', 'aria-label': 'Question about the screenshot' });
  const out = h('p', { class: 'muted small', 'aria-live': 'polite' });
  const form = h('form', { class: 'ask' }, input, h('button', { type: 'submit', class: 'small' }, 'Ask'), out);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = input.value.trim();
    if (!q) return;
    input.disabled = true;
    out.textContent = 'Queued for the model…';
    void (async () => {
      try {
        let job = await api.analyze(e.id, q);
        while (job.state === 'queued' || job.state === 'running') {
          out.textContent = job.state === 'running' ? 'The model is reading the screenshot…' : 'Queued for the model…';
          await new Promise((r) => setTimeout(r, 1000));
          job = await api.analysisJob(job.id);
        }
        out.textContent = job.state === 'done' ? `Answer: ${job.answer ?? ''}` : `Failed: ${job.error ?? 'unknown error'}`;
        input.value = '';
      } catch (err) {
        out.textContent = err instanceof Error ? err.message : String(err);
      } finally {
        input.disabled = false;
      }
    })();
  });
  return form;
}

function reanalyse(e: Evidence): HTMLElement {
  const b = h('button', { type: 'button', class: 'ghost small' }, 'Analyse again');
  b.addEventListener('click', () => {
    b.setAttribute('disabled', '');
    api.analyze(e.id).then(
      () => { b.textContent = 'Queued'; },
      (err: unknown) => { b.textContent = err instanceof Error ? err.message : 'Failed'; b.removeAttribute('disabled'); });
  });
  return b;
}

function listSection(title: string, v: Json | undefined, key: string): HTMLElement | null {
  if (v === undefined || v === null) return null;
  const items = Array.isArray(v) ? v : [v];
  if (!items.length) return null;
  return h('section', { class: `finding finding-${key}` },
    h('h4', null, `${title} (${items.length})`),
    h('ul', null, items.map((it) => h('li', null, describe(it)))));
}

/** One finding as text: a label (title/name/panel) and what it says (value/description/…). */
function describe(v: Json): Child[] {
  if (v === null) return ['—'];
  if (typeof v !== 'object') return [String(v)];
  if (Array.isArray(v)) return [v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ')];
  const label = pick(v, ['title', 'name', 'panel', 'label', 'metric']);
  const text = pick(v, ['description', 'text', 'message', 'value', 'summary', 'detail']);
  const when = pick(v, ['time', 'at', 'start', 'since', 'timestamp']);
  const used = new Set(['title', 'name', 'panel', 'label', 'metric', 'description', 'text', 'message', 'value', 'summary', 'detail', 'time', 'at', 'start', 'since', 'timestamp']);
  const extra = Object.entries(v).filter(([k]) => !used.has(k))
    .map(([k, x]) => `${k}: ${typeof x === 'object' ? JSON.stringify(x) : String(x)}`);
  return [
    label ? h('strong', null, label) : null,
    label && text ? ': ' : null,
    text,
    when ? h('span', { class: 'muted' }, ` (${when})`) : null,
    extra.length ? h('span', { class: 'muted small' }, ` ${extra.join(' · ')}`) : null,
  ].filter((x): x is HTMLElement | string => Boolean(x));
}

function pick(o: { [k: string]: Json }, keys: string[]): string | null {
  for (const k of keys) {
    const v = o[k];
    if (v !== undefined && v !== null && typeof v !== 'object') return String(v);
  }
  return null;
}
