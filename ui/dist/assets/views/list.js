// The incident list: filters, text search, "new incident", keyboard navigation.
import { api } from '../api.js';
import { liveConnected, subscribe } from '../live.js';
import { empty, errorLine, kbd, loading, severityBadge, statusBadge } from '../components.js';
import { h, replace, select } from '../dom.js';
import { STATUS_LABEL, ago, cap, duration } from '../format.js';
import { SEVERITIES, STATUSES, } from '../types.js';
import { errorMessage, go, newIncidentDialog } from '../app.js';
import { modelCard } from './firstrun.js';
const PAGE = 50;
/** Filters survive going to an incident and back. */
const state = { status: 'open', severity: '', q: '' };
export function listView() {
    const search = h('input', {
        type: 'search', name: 'q', class: 'search', value: state.q, autocomplete: 'off',
        placeholder: 'Search everything: incidents, evidence, findings, notes…   ( / )', 'aria-label': 'Search',
    });
    // Open incidents by default: resolved and closed ones are history.
    const status = select(['open', ...STATUSES], state.status, {
        any: 'Any status', label: (s) => (s === 'open' ? 'Open (not resolved)' : STATUS_LABEL[s]), name: 'status', title: 'Status filter',
    });
    const severity = select(SEVERITIES, state.severity, {
        any: 'Any severity', label: cap, name: 'severity', title: 'Severity filter',
    });
    const newBtn = h('button', { class: 'primary', type: 'button', onclick: () => newIncidentDialog() }, 'New incident ', kbd('n'));
    const results = h('div', { class: 'results', 'aria-live': 'polite' });
    const hitsBox = h('div', { class: 'hits' });
    // While there is no model yet: get it in one click, right here.
    const firstRun = modelCard(true);
    const el = h('section', { class: 'list-view' }, firstRun.el, h('div', { class: 'toolbar' }, search, status, severity, h('span', { class: 'grow' }), newBtn), results, hitsBox);
    let items = [];
    let total = 0;
    let selected = -1;
    let seq = 0;
    let timer;
    // Incidents also arrive from scripts, the CLI and syncs: reload quietly when the change feed
    // says an incident changed (or evidence was added: the counts), and now and then besides.
    let clock;
    const poll = () => {
        clock = window.setTimeout(() => {
            if (document.visibilityState === 'visible')
                void load(false, true);
            poll();
        }, liveConnected() ? 30_000 : 15_000);
    };
    poll();
    let debounce;
    const unsubscribe = subscribe((e) => {
        const counts = e.kind === 'evidence' && e.type !== 'evidence.updated';
        if (e.type !== 'resync' && e.kind !== 'incident' && !counts)
            return;
        window.clearTimeout(debounce);
        debounce = window.setTimeout(() => void load(false, true), 100);
    });
    async function load(append = false, quiet = false) {
        const my = ++seq;
        if (!append && !quiet)
            replace(results, loading('Loading incidents…'));
        try {
            const limit = quiet ? Math.max(PAGE, items.length) : PAGE;
            const page = await api.incidents({ ...state, limit, offset: append ? items.length : 0 });
            if (my !== seq)
                return;
            const keep = items[selected]?.id;
            items = append ? items.concat(page.items) : page.items;
            total = page.total;
            if (quiet)
                selected = Math.max(0, items.findIndex((i) => i.id === keep));
            else if (!append)
                selected = items.length ? 0 : -1;
            if (!items.length)
                selected = -1;
            render();
        }
        catch (e) {
            if (my === seq && !quiet)
                replace(results, errorLine(`Could not load incidents: ${errorMessage(e)}`));
        }
        if (!quiet)
            void loadHits();
    }
    let hitSeq = 0;
    async function loadHits() {
        const my = ++hitSeq;
        const q = state.q.trim();
        if (!q)
            return replace(hitsBox);
        // The server would refuse it (400); say so without the round trip.
        if (!/[\p{L}\p{N}]/u.test(q)) {
            return replace(hitsBox, errorLine('Search: the query has no words to search for; type at least one word.'));
        }
        try {
            const res = await api.search(q, {
                status: state.status === 'open' ? '' : state.status, severity: state.severity,
            });
            if (my !== hitSeq)
                return;
            const n = res.hits.length;
            replace(hitsBox, n
                ? [
                    h('h2', { class: 'section-title' }, `Matches: ${n} entr${n === 1 ? 'y' : 'ies'} in ${res.groups.length} incident${res.groups.length === 1 ? '' : 's'}`, res.complete ? null : h('span', { class: 'muted', title: 'More entries matched; the best of the newest ones are shown.' }, ` (best of the newest ${res.ranked} matches)`)),
                    h('ul', { class: 'hit-groups' }, res.groups.map(groupRow)),
                ]
                : null);
        }
        catch (e) {
            if (my === hitSeq)
                replace(hitsBox, errorLine(`Search: ${errorMessage(e)}`));
        }
    }
    function filtered() {
        return Boolean(state.q || (state.status && state.status !== 'open') || state.severity);
    }
    function render() {
        if (!items.length) {
            replace(results, filtered()
                ? empty('No incidents match these filters.', [
                    'Try fewer words, or ',
                    h('button', { class: 'link', type: 'button', onclick: clear }, 'clear the filters'), '.',
                ])
                : empty(state.status === 'open' ? 'No open incidents.' : 'No incidents yet.', [
                    'Press ', kbd('n'), ' or click “New incident” to open one. Scripts can POST /api/v1/incidents (see ',
                    h('a', { href: '/docs', target: '_blank', rel: 'noopener' }, 'API docs'), ').',
                    ...(state.status === 'open' ? [' Resolved and closed ones: ', h('button', { class: 'link', type: 'button', onclick: showAll }, 'show all'), '.'] : []),
                ]));
            return;
        }
        const now = Date.now();
        const rows = items.map((inc, i) => {
            const open = inc.resolved_at
                ? `resolved after ${duration(Date.parse(inc.resolved_at) - Date.parse(inc.created_at))}`
                : `open ${duration(now - Date.parse(inc.created_at))}`;
            return h('li', null, h('a', {
                class: `row${i === selected ? ' selected' : ''}${inc.status === 'resolved' || inc.status === 'closed' ? ' finished' : ''}`,
                href: `#/incident/${inc.id}`,
                'data-id': inc.id,
            }, severityBadge(inc.severity), h('span', { class: 'row-id' }, `#${inc.id}`), h('span', { class: 'row-title' }, inc.title), statusBadge(inc.status), h('span', { class: 'row-meta', title: `opened ${inc.created_at}` }, `${inc.evidence_count} evidence · ${open} · ${ago(inc.created_at, now)}`)));
        });
        const more = items.length < total
            ? h('button', { class: 'ghost', type: 'button', onclick: () => void load(true) }, `Load more (${total - items.length} left)`)
            : null;
        replace(results, h('p', { class: 'count' }, `${total} incident${total === 1 ? '' : 's'}${filtered() ? ' match' : ''}`), h('ul', { class: 'incident-list' }, rows), more);
    }
    function clear() {
        state.q = '';
        state.status = 'open';
        state.severity = '';
        search.value = '';
        status.value = 'open';
        severity.value = '';
        void load();
    }
    function showAll() {
        state.status = '';
        status.value = '';
        void load();
    }
    search.addEventListener('input', () => {
        window.clearTimeout(timer);
        timer = window.setTimeout(() => {
            state.q = search.value;
            void load();
        }, 200);
    });
    search.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter') {
            ev.preventDefault();
            search.blur();
        }
    });
    status.addEventListener('change', () => {
        state.status = status.value;
        void load();
    });
    severity.addEventListener('change', () => {
        state.severity = severity.value;
        void load();
    });
    function move(d) {
        if (!items.length)
            return;
        selected = Math.max(0, Math.min(items.length - 1, selected + d));
        render();
        results.querySelector('.row.selected')?.scrollIntoView({ block: 'nearest' });
    }
    void load();
    return {
        el,
        dispose: () => {
            firstRun.dispose();
            window.clearTimeout(clock);
            window.clearTimeout(timer);
            window.clearTimeout(debounce);
            unsubscribe();
        },
        key: (ev) => {
            if (ev.key === '/') {
                search.focus();
                search.select();
                return true;
            }
            if (ev.key === 'j' || ev.key === 'ArrowDown') {
                move(1);
                return true;
            }
            if (ev.key === 'k' || ev.key === 'ArrowUp') {
                move(-1);
                return true;
            }
            const sel = items[selected];
            if (ev.key === 'Enter' && sel) {
                go(`#/incident/${sel.id}`);
                return true;
            }
            return false;
        },
    };
}
const KIND_LABEL = {
    incident: 'Incident', evidence: 'Evidence', finding: 'Finding', hypothesis: 'Hypothesis',
    action: 'Action', note: 'Note', status_update: 'Status update', postmortem: 'Postmortem',
};
/** One incident's hits under its title, status and severity. */
function groupRow(g) {
    return h('li', { class: 'hit-group', 'data-incident': g.incident_id }, h('a', { href: `#/incident/${g.incident_id}`, class: 'group-head' }, severityBadge(g.severity), h('span', { class: 'row-id' }, `#${g.incident_id}`), h('span', { class: 'row-title' }, g.title), statusBadge(g.status)), h('ul', { class: 'hit-list' }, g.hits.map(hitRow)));
}
/** A search hit: its kind, title and snippet with the matched terms (between `[` and `]`)
 * highlighted as text. */
function hitRow(hit) {
    const parts = hit.snippet.split(/(\[[^\]]*\])/g).map((p) => p.startsWith('[') && p.endsWith(']') ? h('mark', null, p.slice(1, -1)) : p);
    return h('li', null, h('a', { href: `#/incident/${hit.incident_id}`, class: 'hit', 'data-kind': hit.kind }, h('span', { class: `kind kind-${hit.kind}` }, KIND_LABEL[hit.kind] ?? hit.kind), h('strong', null, hit.title), h('span', { class: 'snippet' }, parts)));
}
