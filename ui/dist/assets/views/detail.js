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
import { actionsSection, hypothesesSection } from './board.js';
const ACTIVE = new Set(['queued', 'running']);
/** Events arriving within this window are answered with one refetch. */
const DEBOUNCE_MS = 100;
/** The poll behind the change feed, in case an event was lost. */
const FALLBACK_POLL_MS = 30_000;
const PART_OF = {
    incident: 'incident', evidence: 'evidence', timeline: 'timeline', hypothesis: 'hypotheses', action: 'actions',
};
export function detailView(id) {
    const headBox = h('header', { class: 'inc-head' }, loading(`Loading incident #${id}…`));
    const timelineBox = h('section', { class: 'panel timeline', 'aria-label': 'Timeline' });
    const ctx = {
        id, incident: null, evidence: [], timeline: [], hypotheses: [], actions: [],
        refresh, listeners: new Set(),
    };
    const ev = evidenceSection(ctx);
    const hyp = hypothesesSection(ctx);
    const act = actionsSection(ctx);
    const el = h('section', { class: 'detail-view' }, headBox, h('div', { class: 'detail-grid' }, h('div', { class: 'col-main' }, ev.el), h('div', { class: 'col-side' }, timelineBox, act.el)), hyp.el);
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
                case 'incident':
                    ctx.incident = await api.incident(id);
                    break;
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
        const sev = select(SEVERITIES, inc.severity, { name: 'severity', label: cap, title: 'Severity' });
        sev.classList.add(`sev-select`, `sev-${inc.severity}`);
        sev.addEventListener('change', () => void patch({ severity: sev.value }));
        const st = select(STATUSES, inc.status, { name: 'status', label: (s) => STATUS_LABEL[s], title: 'Status' });
        st.addEventListener('change', () => void patch({ status: st.value }));
        const next = nextStep(inc.status);
        replace(headBox, h('div', { class: 'crumbs' }, h('a', { href: '#/' }, '← Incidents'), h('span', { class: 'muted' }, ` #${inc.id} · ${inc.source}`)), h('div', { class: 'title-row' }, severityBadge(inc.severity), h('h1', null, inc.title), statusBadge(inc.status)), inc.description ? h('p', { class: 'desc' }, inc.description) : null, h('div', { class: 'head-controls' }, h('label', { class: 'inline' }, 'Severity', sev), h('label', { class: 'inline' }, 'Status', st), next ? h('button', { class: 'primary', type: 'button', onclick: () => void patch({ status: next.status }) }, next.label) : null, h('span', { class: 'grow' }), h('div', { class: 'timers', 'aria-label': 'Timers' }, timers(inc))));
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
    const noteForm = h('form', { class: 'inline-form' }, note, h('button', { type: 'submit' }, 'Add'));
    noteForm.addEventListener('submit', (e) => {
        e.preventDefault();
        const text = note.value.trim();
        if (!text)
            return;
        void (async () => {
            try {
                await api.addNote(id, text);
                note.value = '';
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
            ? h('ol', { class: 'tl' }, items.map((t) => h('li', { class: `tl-item tl-${t.kind}` }, h('time', { datetime: t.occurred_at, title: t.occurred_at }, clock(t.occurred_at)), h('span', { class: 'tl-msg' }, t.message))))
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
/** "Open 1h 02m · ack after 3m" or "Resolved after 2h 10m". */
function timers(inc) {
    const now = Date.now();
    const start = Date.parse(inc.created_at);
    const out = [];
    if (inc.resolved_at) {
        out.push(h('span', { class: 'timer done' }, `Resolved after ${duration(Date.parse(inc.resolved_at) - start)}`));
    }
    else {
        out.push(h('span', { class: 'timer live', 'data-timer': 'open' }, `Open ${duration(now - start)}`));
    }
    if (inc.acknowledged_at) {
        out.push(h('span', { class: 'timer' }, `Ack after ${duration(Date.parse(inc.acknowledged_at) - start)}`));
    }
    else if (!inc.resolved_at) {
        out.push(h('span', { class: 'timer warn' }, 'Not acknowledged'));
    }
    out.push(h('span', { class: 'timer muted', title: inc.created_at }, `Opened ${clock(inc.created_at)}`));
    return out;
}
