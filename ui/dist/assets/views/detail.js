// One incident: header with live timers, evidence (with live analysis state), timeline,
// hypotheses board and action items. Follows the change feed (live.ts): a capture, upload,
// analysis step or edit made anywhere shows here within a fraction of a second; a slow poll
// remains as a fallback, faster while the feed is down and screenshots are being analysed.
import { api } from '../api.js';
import { liveConnected, subscribe } from '../live.js';
import { empty, errorLine, loading, severityBadge, statusBadge, toast } from '../components.js';
import { h, replace, select } from '../dom.js';
import { STATUS_LABEL, cap, clock, duration } from '../format.js';
import { SEVERITIES, STATUSES, } from '../types.js';
import { errorMessage, go } from '../app.js';
import { evidenceSection } from './evidence.js';
import { rolesBar } from './roles.js';
import { deleteIncidentDialog, editableTitle, entryTools } from './manage.js';
import { nextUpdate, statusUpdateDialog } from './updates.js';
import { isoFull, readField, timeEl, timeField } from '../when.js';
import { actionsSection, hypothesesSection } from './board.js';
import { duplicateBanner, similarPanel } from './similar.js';
const ACTIVE = new Set(['queued', 'running']);
/** Events arriving within this window are answered with one refetch. */
const DEBOUNCE_MS = 100;
/** The poll behind the change feed, in case an event was lost. */
const FALLBACK_POLL_MS = 30_000;
const PART_OF = {
    capture: 'evidence',
    incident: 'incident', evidence: 'evidence', timeline: 'timeline', hypothesis: 'hypotheses', action: 'actions',
};
export function detailView(id) {
    const headBox = h('header', { class: 'inc-head' }, loading(`Loading incident #${id}…`));
    const timelineBox = h('section', { class: 'panel timeline', 'aria-label': 'Timeline' });
    const ctx = {
        id, incident: null, roles: null, people: [], evidence: [], timeline: [], hypotheses: [], actions: [],
        refresh, listeners: new Set(),
    };
    const ev = evidenceSection(ctx);
    const hyp = hypothesesSection(ctx);
    const act = actionsSection(ctx);
    const similar = similarPanel(id);
    let similarFor = '';
    const el = h('section', { class: 'detail-view' }, headBox, h('div', { class: 'detail-grid' }, h('div', { class: 'col-main' }, ev.el), h('div', { class: 'col-side' }, timelineBox, act.el, similar.el)), hyp.el);
    const renderers = {
        incident: renderHead,
        evidence: () => { ev.render(); hyp.render(); },
        timeline: renderTimeline,
        hypotheses: () => hyp.render(),
        actions: () => act.render(),
    };
    const rendered = new Set();
    async function refresh(...parts) {
        const want = parts.length ? parts : Object.keys(renderers);
        const jobs = want.map(async (p) => {
            const before = JSON.stringify(ctx[p]);
            switch (p) {
                case 'incident': {
                    // Roles change the incident (its updated_at), so they travel with it.
                    const [inc, roles, people] = await Promise.all([api.incident(id), api.roles(id), api.people()]);
                    ctx.roles = roles;
                    ctx.people = people;
                    ctx.incident = inc;
                    break;
                }
                case 'evidence':
                    ctx.evidence = await api.evidenceOf(id);
                    break;
                case 'timeline':
                    ctx.timeline = await api.timeline(id);
                    break;
                case 'hypotheses':
                    ctx.hypotheses = await api.hypotheses(id);
                    break;
                case 'actions':
                    ctx.actions = await api.actions(id);
                    break;
            }
            // Polling must not redraw (and collapse, or flicker) what did not change.
            if (JSON.stringify(ctx[p]) !== before || !rendered.has(p)) {
                rendered.add(p);
                renderers[p]();
            }
        });
        await Promise.all(jobs);
        for (const l of ctx.listeners)
            l();
    }
    function renderHead() {
        const inc = ctx.incident;
        if (!inc)
            return;
        if (inc.merged_into != null) {
            // Merged away: everything is on the target now.
            toast(`Incident #${inc.id} was merged into #${inc.merged_into}`);
            go(`#/incident/${inc.merged_into}`);
            return;
        }
        // The ranking follows what the incident holds (new evidence, a new title).
        const sig = `${inc.title}|${inc.description}|${inc.evidence_count}`;
        if (sig !== similarFor) {
            similarFor = sig;
            void similar.load();
        }
        const sev = select(SEVERITIES, inc.severity, { name: 'severity', label: cap, title: 'Severity' });
        sev.classList.add(`sev-select`, `sev-${inc.severity}`);
        sev.addEventListener('change', () => void patch({ severity: sev.value }));
        const st = select(STATUSES, inc.status, { name: 'status', label: (s) => STATUS_LABEL[s], title: 'Status' });
        st.addEventListener('change', () => void patch({ status: st.value }));
        const next = nextStep(inc.status);
        const finished = inc.status === 'resolved' || inc.status === 'closed';
        el.classList.toggle('finished', finished);
        replace(headBox, finished ? h('div', { class: 'banner closed-banner', role: 'status' }, `This incident is ${inc.status}`, inc.ttr_seconds != null ? ` (resolved ${duration(inc.ttr_seconds * 1000)} after it opened)` : '', '. Change its status to reopen it.') : null, duplicateBanner(inc), h('div', { class: 'crumbs' }, h('a', { href: '#/' }, '← Incidents'), h('span', { class: 'muted' }, ` #${inc.id} · ${inc.source}`)), h('div', { class: 'title-row' }, severityBadge(inc.severity), editableTitle(inc, (updated) => { ctx.incident = updated; renderHead(); }), statusBadge(inc.status)), inc.description ? h('p', { class: 'desc' }, inc.description) : null, h('div', { class: 'head-controls' }, h('label', { class: 'inline' }, 'Severity', sev), h('label', { class: 'inline' }, 'Status', st), next ? h('button', { class: 'primary', type: 'button', onclick: () => void patch({ status: next.status }) }, next.label) : null, h('a', { class: 'button', href: `#/incident/${inc.id}/postmortem` }, 'Postmortem'), h('button', { type: 'button', class: 'ghost', title: 'Delete this incident', onclick: () => deleteIncidentDialog(inc) }, 'Delete incident'), h('button', { type: 'button', class: 'status-update-btn', onclick: () => statusUpdateDialog(inc, () => void refresh('incident', 'timeline')) }, 'Status update'), h('span', { class: 'grow' }), h('div', { class: 'timers', 'aria-label': 'Timers' }, timers(inc))), ctx.roles ? rolesBar(id, ctx.roles, ctx.people, () => void refresh('incident', 'timeline')) : null);
    }
    async function patch(b) {
        try {
            ctx.incident = await api.updateIncident(id, b);
            renderHead();
            toast(b.status ? `Status: ${STATUS_LABEL[b.status]}` : `Severity: ${b.severity ?? ''}`);
            await refresh('timeline');
        }
        catch (e) {
            toast(errorMessage(e), 'error');
            renderHead();
        }
    }
    const note = h('input', { name: 'note', placeholder: 'Add a note to the timeline   ( m )', autocomplete: 'off', maxlength: 2000, 'aria-label': 'Timeline note' });
    const noteAt = timeField('note_at');
    const noteForm = h('form', { class: 'inline-form' }, note, noteAt, h('button', { type: 'submit' }, 'Add'));
    noteForm.addEventListener('submit', (e) => {
        e.preventDefault();
        const text = note.value.trim();
        if (!text)
            return;
        const when = readField(noteAt);
        if (when && 'error' in when) {
            toast(when.error, 'error');
            noteAt.focus();
            return;
        }
        void (async () => {
            try {
                const added = await api.addNote(id, text, when?.iso);
                note.value = '';
                noteAt.value = '';
                if (when?.assumed)
                    toast(`Note added at ${clock(added.occurred_at)} (no zone given: taken as ${when.assumed})`);
                await refresh('timeline');
            }
            catch (err) {
                toast(errorMessage(err), 'error');
            }
        })();
    });
    function renderTimeline() {
        const items = ctx.timeline.slice().reverse();
        replace(timelineBox, h('h2', { class: 'section-title' }, 'Timeline'), noteForm, items.length
            ? h('ol', { class: 'tl' }, items.map((t) => h('li', { class: `tl-item tl-${t.kind}` }, timeEl(t.occurred_at, t.occurred_at_source), h('span', { class: 'tl-msg' }, t.message), t.author ? h('span', { class: 'tl-author muted small' }, ` — ${t.author}`) : null, entryTools(t, () => void refresh('timeline')))))
            : empty('Nothing on the timeline yet.', 'Status changes, evidence and notes appear here.'));
    }
    // Live updates: the timers every second, the analysis state while screenshots are in flight.
    const tick = window.setInterval(() => {
        const box = headBox.querySelector('.timers');
        if (box && ctx.incident)
            replace(box, timers(ctx.incident));
    }, 1000);
    let poll;
    let alive = true;
    function schedule() {
        if (!alive)
            return;
        const states = ctx.evidence.map((e) => e.analysis_state).filter((s) => s != null);
        const delay = liveConnected() ? FALLBACK_POLL_MS
            : states.some((s) => ACTIVE.has(s)) ? 2000 : states.includes('waiting-for-model') ? 5000 : 15000;
        poll = window.setTimeout(() => {
            refresh('evidence', 'timeline').catch(() => { }).finally(schedule);
        }, delay);
    }
    // Live: refetch the parts the feed names, batched, one refetch at a time.
    const due = new Set();
    let debounce;
    let running = false;
    function want(parts) {
        for (const p of parts)
            due.add(p);
        if (running)
            return;
        window.clearTimeout(debounce);
        debounce = window.setTimeout(flush, DEBOUNCE_MS);
    }
    function flush() {
        if (!alive || !due.size)
            return;
        const parts = [...due];
        due.clear();
        running = true;
        refresh(...parts).catch(() => { }).finally(() => {
            running = false;
            if (due.size)
                flush();
        });
    }
    function onChange(e) {
        if (e.type === 'resync')
            return want(Object.keys(renderers));
        if (e.incident_id !== id || !e.kind)
            return;
        if (e.type === 'incident.deleted') {
            toast(`Incident #${id} was deleted`);
            go('#/');
            return;
        }
        want([PART_OF[e.kind]]);
    }
    const unsubscribe = subscribe(onChange);
    refresh().then(schedule, (e) => {
        replace(headBox, errorLine(`Could not load incident #${id}: ${errorMessage(e)}`), h('p', null, h('a', { href: '#/' }, 'Back to the incidents')));
    });
    return {
        el,
        dispose: () => {
            alive = false;
            unsubscribe();
            window.clearInterval(tick);
            window.clearTimeout(poll);
            window.clearTimeout(debounce);
            ev.dispose();
        },
        key: (e) => {
            switch (e.key) {
                case 'e':
                    ev.focusAdd();
                    return true;
                case 'u':
                    ev.pickFile();
                    return true;
                case 'h':
                    hyp.focusAdd();
                    return true;
                case 'a':
                    act.focusAdd();
                    return true;
                case 'm':
                    note.focus();
                    return true;
                case 'Escape':
                    go('#/');
                    return true;
                default: return false;
            }
        },
    };
}
function nextStep(s) {
    switch (s) {
        case 'triggered': return { status: 'acknowledged', label: 'Acknowledge' };
        case 'acknowledged': return { status: 'investigating', label: 'Start investigating' };
        case 'investigating': return { status: 'mitigated', label: 'Mark mitigated' };
        case 'mitigated': return { status: 'resolved', label: 'Resolve' };
        default: return null;
    }
}
/** "Open 1h 02m", then the lifecycle metrics: time to acknowledge, mitigate and resolve. */
function timers(inc) {
    const now = Date.now();
    const start = Date.parse(inc.created_at);
    const out = [];
    if (!inc.resolved_at) {
        out.push(h('span', { class: 'timer live', 'data-timer': 'open' }, `Open ${duration(now - start)}`));
    }
    const metric = (key, label, long, secs, at) => {
        if (secs === null || !at)
            return;
        out.push(h('span', { class: 'timer', 'data-metric': key, title: `${long}: ${duration(secs * 1000)} (${isoFull(at)})` }, `${label} ${duration(secs * 1000)}`));
    };
    const due = nextUpdate(inc, now);
    if (due)
        out.push(due);
    metric('tta', 'TTA', 'Time to acknowledge', inc.tta_seconds ?? null, inc.acknowledged_at ?? null);
    metric('ttm', 'TTM', 'Time to mitigate', inc.ttm_seconds ?? null, inc.mitigated_at ?? null);
    metric('ttr', 'TTR', 'Time to resolve', inc.ttr_seconds ?? null, inc.resolved_at ?? null);
    if (!inc.acknowledged_at && !inc.resolved_at)
        out.push(h('span', { class: 'timer warn' }, 'Not acknowledged'));
    out.push(h('span', { class: 'timer muted', title: isoFull(inc.created_at) }, `Opened ${clock(inc.created_at)}`));
    return out;
}
