// The first run: getting the analysis model in one click (its honest size from the manifest, a
// time estimate, the free disk checked first), watching it arrive, stopping and resuming it;
// the screenshots that wait for it; and, once it has loaded, what an analysis costs on this
// machine (the calibration run). Shown on the start page while the model is not there yet,
// and always in Settings.
import { api } from '../api.js';
import { errorLine, toast } from '../components.js';
import { h, replace } from '../dom.js';
import { bytes } from '../format.js';
import { errorMessage } from '../app.js';
/** Typical connections, to turn the size into a time before any byte is measured. */
const SPEEDS_MBIT = [100, 20];
/** "about 6 min", "about 40 s", "about 1 h 10 min". */
export function aboutTime(seconds) {
    if (!Number.isFinite(seconds) || seconds < 0)
        return 'unknown time';
    if (seconds < 60)
        return `about ${Math.max(1, Math.round(seconds))} s`;
    const min = Math.round(seconds / 60);
    if (min < 60)
        return `about ${min} min`;
    return `about ${Math.floor(min / 60)} h ${min % 60} min`;
}
/** How long `n` bytes take at typical speeds, before the real one is known. */
export function estimate(n) {
    return SPEEDS_MBIT.map((mbit) => `${aboutTime((n * 8) / (mbit * 1e6))} at ${mbit} Mbit/s`).join(', ');
}
/** "an analysis takes about N s on this machine", with what it rests on. */
export function costLine(c) {
    const rate = c.decode_tokens_per_s ? `, then ${c.decode_tokens_per_s.toFixed(1)} tokens/s` : '';
    return h('p', { class: 'calibration', 'data-field': 'calibration' }, h('strong', null, `An analysis takes ${aboutTime(c.analysis_seconds)} on this machine`), h('span', { class: 'muted small' }, ` — measured on ${c.device}: first token after ${c.seconds_to_first_token.toFixed(1)} s for a ${c.image.replace('x', '×')} screenshot${rate}.`));
}
function waitingLine(s) {
    const n = s.queue['waiting-for-model'] ?? 0;
    if (!n)
        return null;
    return h('p', { class: 'small', 'data-field': 'waiting' }, `${n} screenshot${n === 1 ? '' : 's'} wait${n === 1 ? 's' : ''} for the model; `, 'they are analysed as soon as it has loaded.');
}
function diskLine(p) {
    if (p.fits) {
        return h('p', { class: 'muted small', 'data-field': 'disk-check' }, p.free_bytes == null ? `Free space on ${p.cache_dir} cannot be read here.`
            : `${bytes(p.free_bytes)} free on the disk of ${p.cache_dir}: it fits.`);
    }
    return h('p', { class: 'error-line', 'data-field': 'disk-check', role: 'alert' }, `Not enough disk space: the download needs ${bytes(p.download_bytes)} and ${bytes(p.reserve_bytes)} should stay free, `, `but ${p.cache_dir} has only ${bytes(p.free_bytes ?? 0)} free. Free some space, or point HF_HUB_CACHE at a bigger disk.`);
}
function progressBlock(p) {
    const pct = p.total_bytes ? Math.floor((100 * p.done_bytes) / p.total_bytes) : 0;
    const speed = p.bytes_per_s ? ` · ${bytes(p.bytes_per_s)}/s` : '';
    const left = p.eta_s != null ? ` · ${aboutTime(p.eta_s)} left` : ' · measuring the speed…';
    return h('div', { class: 'pull-progress', 'data-field': 'pull' }, h('progress', { max: 100, value: pct, 'aria-label': 'Download progress' }), h('p', { class: 'small' }, `${pct}% — ${bytes(p.done_bytes)} of ${bytes(p.total_bytes)}${speed}${left}`, p.file ? h('span', { class: 'muted' }, ` (${p.file})`) : null));
}
/**
 * The model card. `onlyWhenNeeded`: on the start page it shows only while the model is
 * missing, downloading or loading (then it disappears); Settings shows it always.
 */
export function modelCard(onlyWhenNeeded) {
    const el = h('section', { class: 'panel first-run', 'data-field': 'first-run', hidden: onlyWhenNeeded });
    let timer;
    let busy = false;
    let disposed = false;
    async function load() {
        window.clearTimeout(timer);
        let s;
        try {
            s = await api.vlmStatus();
        }
        catch (e) {
            if (!onlyWhenNeeded)
                replace(el, errorLine(errorMessage(e)));
            schedule(10_000);
            return;
        }
        if (disposed)
            return;
        render(s);
        schedule(s.pull?.state === 'downloading' || s.state === 'loading' ? 1000 : 10_000);
    }
    function schedule(ms) {
        if (!disposed)
            timer = window.setTimeout(() => void load(), ms);
    }
    async function act(what) {
        if (busy)
            return;
        busy = true;
        try {
            await what();
        }
        catch (e) {
            toast(errorMessage(e), 'error', 12_000);
        }
        finally {
            busy = false;
        }
        await load();
    }
    function render(s) {
        const pull = s.pull;
        const needed = s.state === 'missing' || s.state === 'downloading' || s.state === 'loading';
        el.hidden = onlyWhenNeeded && (!needed || !!s.remote_url);
        if (el.hidden)
            return;
        const title = h('h2', { class: 'section-title' }, 'Screenshot analysis');
        if (s.remote_url) {
            replace(el, title, h('p', null, s.privacy ?? `Analysed by ${s.remote_url}.`));
            return;
        }
        const plan = s.download;
        if (pull?.state === 'downloading') {
            replace(el, title, h('p', null, `Getting ${s.repo || s.model}…`), progressBlock(pull), waitingLine(s), h('div', { class: 'row-actions' }, h('button', { type: 'button', 'data-action': 'cancel-pull', onclick: () => void act(() => api.cancelPull(s.model)) }, 'Cancel')), h('p', { class: 'muted small' }, 'Cancel keeps what has arrived; getting the model again resumes from there.'));
            return;
        }
        if (s.state === 'missing' && plan) {
            const resume = plan.present_bytes > 0;
            const label = resume
                ? `Resume: get the remaining ${bytes(plan.download_bytes)}`
                : `Get the model (${bytes(plan.download_bytes)})`;
            replace(el, title, h('p', null, 'OpsLens reads your screenshots with a vision model that runs on this machine; nothing leaves it. ', h('strong', null, `${s.repo || s.model}`), ` is ${bytes(plan.download_bytes + plan.present_bytes)} to download once`, resume ? ` (${bytes(plan.present_bytes)} already here)` : '', '.'), h('p', { class: 'small', 'data-field': 'estimate' }, `That takes ${estimate(plan.download_bytes)}.`), diskLine(plan), pull?.state === 'failed' ? errorLine(`The last download failed: ${pull.error ?? 'unknown error'}`) : null, pull?.state === 'cancelled' ? h('p', { class: 'muted small', 'data-field': 'cancelled' }, `Stopped; ${bytes(plan.present_bytes)} kept.`) : null, waitingLine(s), h('div', { class: 'row-actions' }, h('button', {
                type: 'button', class: 'primary', 'data-action': 'get-model', disabled: !plan.fits,
                title: plan.fits ? null : 'Not enough disk space',
                onclick: () => void act(() => api.pullModel(s.model)),
            }, label)), h('p', { class: 'muted small' }, `Or copy a model folder in place and start with --model-dir (OPSLENS_MODEL_DIR).`));
            return;
        }
        if (s.state === 'loading') {
            replace(el, title, h('p', null, 'Loading the model; the waiting screenshots follow.'), waitingLine(s));
            return;
        }
        replace(el, title, h('p', null, s.message), s.calibration ? costLine(s.calibration)
            : h('p', { class: 'muted small', 'data-field': 'calibration' }, s.state === 'ready'
                ? 'How long an analysis takes here is measured once the model has loaded and the queue is idle.'
                : ''), waitingLine(s));
    }
    void load();
    return { el, dispose: () => { disposed = true; window.clearTimeout(timer); } };
}
