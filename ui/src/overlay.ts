// The desktop app's region overlay (src-tauri/src/desktop/region.rs): shows the frozen frame
// of the monitor, lets the user drag a rectangle and reports it in CSS pixels with the
// viewport's size (Rust maps that onto the frame's device pixels). Release or Enter captures;
// Esc or a right click cancels; a click without a drag asks again. The window stays hidden
// until the frame is drawn (no blank flash). It runs in a Tauri window from the bundled
// assets and reaches Rust only through the four commands its capability grants; in a plain
// browser it does nothing.

interface TauriInternals {
  invoke(cmd: string, args?: Record<string, unknown>): Promise<unknown>;
}

/** Smallest drag, in CSS pixels each way, that counts as a selection rather than a click. */
const MIN_DRAG = 3;

const internals = (window as unknown as { __TAURI_INTERNALS__?: TauriInternals }).__TAURI_INTERNALS__;
const canvas = document.getElementById('frame') as HTMLCanvasElement;
const box = document.getElementById('box') as HTMLDivElement;
const size = document.getElementById('size') as HTMLDivElement;
const hint = document.getElementById('hint') as HTMLParagraphElement;

interface Rect { x: number; y: number; width: number; height: number }

let start: { x: number; y: number } | null = null;
let rect: Rect | null = null;
let finished = false;

function invoke(cmd: string, args?: Record<string, unknown>): Promise<unknown> {
  if (!internals) return Promise.reject(new Error('the region overlay runs in the OpsLens desktop app only'));
  return internals.invoke(cmd, args);
}

/** Frame pixels per CSS pixel, each way (the device pixel ratio when the overlay covers the monitor). */
function scale(): { x: number; y: number } {
  return { x: canvas.width / window.innerWidth || 1, y: canvas.height / window.innerHeight || 1 };
}

async function loadFrame(): Promise<void> {
  const buf = await invoke('region_frame');
  if (!(buf instanceof ArrayBuffer) || buf.byteLength < 8) throw new Error('no frame');
  const head = new DataView(buf, 0, 8);
  const w = head.getUint32(0, true);
  const h = head.getUint32(4, true);
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('no canvas');
  ctx.putImageData(new ImageData(new Uint8ClampedArray(buf, 8, w * h * 4), w, h), 0, 0);
  document.body.classList.add('ready');
  await invoke('region_shown');
}

function draw(): void {
  if (!rect) {
    box.hidden = true;
    size.hidden = true;
    return;
  }
  const x = Math.min(rect.x, rect.x + rect.width);
  const y = Math.min(rect.y, rect.y + rect.height);
  const w = Math.abs(rect.width);
  const h = Math.abs(rect.height);
  Object.assign(box.style, { left: `${x}px`, top: `${y}px`, width: `${w}px`, height: `${h}px` });
  box.hidden = false;
  const s = scale();
  size.textContent = `${Math.round(w * s.x)} × ${Math.round(h * s.y)}`;
  // Below the box, or inside its bottom edge when the box reaches the screen's bottom.
  const below = y + h + 24 < window.innerHeight;
  Object.assign(size.style, { left: `${x}px`, top: below ? `${y + h + 4}px` : `${Math.max(y + h - 22, 0)}px` });
  size.hidden = false;
}

function isDrag(r: Rect | null): r is Rect {
  return !!r && Math.abs(r.width) >= MIN_DRAG && Math.abs(r.height) >= MIN_DRAG;
}

function askAgain(message: string): void {
  start = null;
  rect = null;
  document.body.classList.remove('dragging');
  draw();
  hint.textContent = message;
  hint.classList.add('again');
}

function confirm(): void {
  if (finished || !isDrag(rect)) {
    askAgain('Drag a rectangle to capture it · Esc to cancel');
    return;
  }
  finished = true;
  const selection = { ...rect, viewWidth: window.innerWidth, viewHeight: window.innerHeight };
  invoke('region_select', { selection }).catch((e: unknown) => {
    finished = false;
    askAgain(`Not captured: ${e instanceof Error ? e.message : String(e)}`);
  });
}

function cancel(): void {
  if (finished) return;
  finished = true;
  invoke('region_cancel').catch(() => window.close());
}

window.addEventListener('pointerdown', (e) => {
  if (finished) return;
  if (e.button === 2) {
    e.preventDefault();
    cancel();
    return;
  }
  if (e.button !== 0) return;
  start = { x: e.clientX, y: e.clientY };
  rect = { x: e.clientX, y: e.clientY, width: 0, height: 0 };
  document.body.setPointerCapture(e.pointerId);
  document.body.classList.add('dragging');
  draw();
});

window.addEventListener('pointermove', (e) => {
  if (!start || finished) return;
  rect = { x: start.x, y: start.y, width: e.clientX - start.x, height: e.clientY - start.y };
  draw();
});

window.addEventListener('pointerup', (e) => {
  if (!start || finished || e.button !== 0) return;
  rect = { x: start.x, y: start.y, width: e.clientX - start.x, height: e.clientY - start.y };
  start = null;
  confirm();
});

window.addEventListener('contextmenu', (e) => e.preventDefault());

window.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') {
    e.preventDefault();
    cancel();
  } else if (e.key === 'Enter') {
    e.preventDefault();
    confirm();
  }
});

window.focus();
loadFrame().catch((e: unknown) => {
  hint.textContent = `Cannot show the screen: ${e instanceof Error ? e.message : String(e)} · Esc to cancel`;
  hint.classList.add('again');
  invoke('region_shown').catch(() => {});
});

export {};
