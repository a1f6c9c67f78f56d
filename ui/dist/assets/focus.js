// Which incident this window shows, told to the server (PUT /focus) so the capture shortcut
// files onto the incident on screen; and the toast that says where a capture went (the
// server's `capture.created` on the change feed), with a link, and a warning when it went
// elsewhere than the incident shown here.
import { api } from './api.js';
import { toast } from './components.js';
import { h } from './dom.js';
import { subscribe } from './live.js';
let shownHere = null;
/** PUTs leave in order: leaving one page (null) and opening the next (its id) must not cross. */
let chain = Promise.resolve();
function tell(id) {
    chain = chain.then(() => api.setFocus(id)).then(() => undefined, () => undefined);
}
/** The incident page `id` opened (`null`: this window shows no incident any more). */
export function showIncident(id) {
    shownHere = id;
    tell(id);
}
/** The incident this window shows, if any. */
export function incidentShown() {
    return shownHere;
}
let started = false;
/** Starts saying where captures go; the window re-claims the focus when it comes to the front. */
export function startCaptureFeedback() {
    if (started)
        return;
    started = true;
    subscribe((e) => void onEvent(e));
    const reclaim = () => { if (shownHere !== null && document.visibilityState === 'visible')
        tell(shownHere); };
    window.addEventListener('focus', reclaim);
    document.addEventListener('visibilitychange', reclaim);
    window.addEventListener('pagehide', () => { if (shownHere !== null)
        api.dropFocus(); });
}
async function onEvent(e) {
    // A restarted server forgot which incident is shown: tell it again.
    if (e.type === 'resync' && shownHere !== null)
        tell(shownHere);
    if (e.type !== 'capture.created' || e.incident_id == null)
        return;
    const to = e.incident_id;
    let title = '';
    try {
        title = (await api.incident(to)).title;
    }
    catch { /* deleted meanwhile: the number is enough */ }
    toast(captureMessage(to, title, shownHere), 'ok', 8000);
}
/** "Screenshot added to #5 Title", and why not to the incident on screen when it went elsewhere. */
export function captureMessage(to, title, shown) {
    const link = h('a', { href: `#/incident/${to}`, 'data-field': 'capture-link' }, `#${to}${title ? ` ${title}` : ''}`);
    const why = shown === null
        ? 'No incident is open in this window, so it went to the open incident changed most recently.'
        : shown !== to
            ? `Not on #${shown}, the incident shown here: another window showed #${to}, or #${shown} was gone.`
            : null;
    return h('div', { class: 'capture-toast', 'data-field': 'capture-toast' }, h('div', null, 'Screenshot added to ', link), why ? h('div', { class: 'warn small', 'data-field': 'capture-fallback' }, why) : null);
}
