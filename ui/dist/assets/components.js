// Shared pieces: badges, empty states, loading lines, toasts and dialogs.
import { h } from './dom.js';
import { ANALYSIS_LABEL, STATUS_LABEL, cap } from './format.js';
export function severityBadge(s) {
    return h('span', { class: `badge sev sev-${s}`, title: `severity ${s}` }, cap(s));
}
export function statusBadge(s) {
    return h('span', { class: `badge status st-${s}` }, STATUS_LABEL[s]);
}
export function analysisBadge(s) {
    return h('span', { class: `badge an an-${s}`, 'data-state': s }, ANALYSIS_LABEL[s]);
}
/** What to show when a list is empty: what it is, and what to do about it. */
export function empty(title, hint) {
    return h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, title), h('p', { class: 'empty-hint' }, hint));
}
/** A loading line; always with words, never a bare spinner. */
export function loading(what) {
    return h('p', { class: 'loading', role: 'status' }, h('span', { class: 'dot' }), what);
}
export function errorLine(message) {
    return h('p', { class: 'error-line', role: 'alert' }, message);
}
export function kbd(k) {
    return h('kbd', null, k);
}
let toastHost = null;
/** A short message in the corner; errors stay longer. */
export function toast(message, kind = 'ok', ms) {
    if (!toastHost) {
        toastHost = h('div', { class: 'toasts', 'aria-live': 'polite' });
        document.body.appendChild(toastHost);
    }
    const t = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
    toastHost.appendChild(t);
    setTimeout(() => t.remove(), ms ?? (kind === 'error' ? 8000 : 3500));
}
/** Opens a modal dialog; resolves when it closes. `Esc` closes it. */
export function dialog(title, body, opts = {}) {
    const el = h('dialog', { class: opts.wide ? 'dlg dlg-wide' : 'dlg', 'aria-label': title });
    const closeBtn = h('button', { class: 'ghost icon', type: 'button', 'aria-label': 'Close', title: 'Close (Esc)' }, '✕');
    el.append(h('header', { class: 'dlg-head' }, h('h2', null, title), closeBtn), body);
    document.body.appendChild(el);
    const closed = new Promise((resolve) => {
        el.addEventListener('close', () => {
            el.remove();
            resolve();
        });
    });
    closeBtn.addEventListener('click', () => el.close());
    el.showModal();
    return { el, close: () => el.close(), closed };
}
/** Runs `fn` with the button disabled and a text label while it works. */
export async function busy(btn, label, fn) {
    const old = btn.textContent;
    btn.disabled = true;
    btn.textContent = label;
    try {
        return await fn();
    }
    finally {
        btn.disabled = false;
        btn.textContent = old;
    }
}
