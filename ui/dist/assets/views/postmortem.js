// The postmortem page: the sections pre-filled from the incident, saved as you type (one
// second after the last keystroke, with the version it started from: if another tab saved
// first, the page says so and shows theirs rather than overwriting it), and the exports.
import { api, ApiError } from '../api.js';
import { errorLine, loading, toast } from '../components.js';
import { h, replace } from '../dom.js';
import { errorMessage } from '../app.js';
import { clockAt, isoFull } from '../when.js';
const AUTOSAVE_MS = 1000;
const TEXT_SECTIONS = [
    ['summary', 'Summary'], ['impact', 'Impact'], ['root_cause', 'Root cause'],
    ['contributing_factors', 'Contributing factors'], ['went_well', 'What went well'], ['went_badly', 'What went badly'],
];
export function postmortemView(id) {
    const body = h('div', null, loading('Loading the postmortem…'));
    const status = h('span', { class: 'muted small', 'data-field': 'save-state', 'aria-live': 'polite' });
    const el = h('section', { class: 'postmortem-view' }, h('div', { class: 'crumbs' }, h('a', { href: `#/incident/${id}` }, `← Incident #${id}`)), h('div', { class: 'title-row' }, h('h1', null, 'Postmortem'), h('span', { class: 'grow' }), status, h('button', { type: 'button', onclick: () => void download('html') }, 'Export HTML'), h('button', { type: 'button', onclick: () => void download('zip') }, 'Export Markdown + screenshots')), body);
    // "Draft summary": the local model's summary, inserted labelled below what is written.
    const draftBtn = h('button', { type: 'button', class: 'small', 'data-field': 'draft-summary', disabled: true,
        onclick: (e) => { e.preventDefault(); void draftSummary(); } }, 'Draft summary');
    const draftWhy = h('span', { class: 'muted small', 'data-field': 'draft-why' }, 'checking the analysis model…');
    const draftRow = h('div', { class: 'pm-draft' }, draftBtn, draftWhy);
    let doc = null;
    let timer;
    let saving = false;
    let dirty = false;
    const fields = new Map();
    let timelineBox = null;
    let followBox = null;
    function render(p) {
        doc = p;
        fields.clear();
        const parts = [];
        for (const [key, label] of TEXT_SECTIONS) {
            const ta = h('textarea', { name: key, rows: key === 'summary' || key === 'impact' ? 4 : 3, 'aria-label': label });
            ta.value = String(p.sections[key] ?? '');
            ta.addEventListener('input', changed);
            fields.set(key, ta);
            parts.push(h('label', { class: 'pm-section' }, h('h2', { class: 'section-title' }, label), ta));
            if (key === 'summary')
                parts.push(draftRow);
        }
        timelineBox = h('textarea', { name: 'timeline', rows: 6, class: 'mono', 'aria-label': 'Timeline' });
        timelineBox.value = (p.sections.timeline ?? []).map((e) => `${isoFull(e.at)}  ${e.text}`).join('\n');
        timelineBox.addEventListener('input', changed);
        followBox = h('textarea', { name: 'follow_ups', rows: 4, 'aria-label': 'Follow-up actions' });
        followBox.value = (p.sections.follow_ups ?? []).join('\n');
        followBox.addEventListener('input', changed);
        replace(body, p.draft ? h('p', { class: 'banner' }, 'Draft pre-filled from the incident (its times, supported hypotheses, pinned timeline entries and actions). It is saved as soon as you edit it.') : null, parts, h('label', { class: 'pm-section' }, h('h2', { class: 'section-title' }, 'Timeline'), h('span', { class: 'muted small' }, 'One entry a line: ISO time, two spaces, what happened. Pin entries on the incident page to add them to a new draft.'), timelineBox), h('label', { class: 'pm-section' }, h('h2', { class: 'section-title' }, 'Follow-up actions'), followBox));
        status.textContent = p.draft ? 'not saved yet' : `version ${p.version}${p.updated_at ? ` · saved ${clockAt(p.updated_at)}` : ''}`;
    }
    function sections() {
        const s = {};
        for (const [key] of TEXT_SECTIONS)
            s[key] = fields.get(key)?.value ?? '';
        s.timeline = [];
        for (const line of (timelineBox?.value ?? '').split('\n')) {
            if (!line.trim())
                continue;
            const m = /^(\S+)\s+(.*)$/.exec(line.trim());
            const at = m ? Date.parse(m[1]) : NaN;
            if (!m || Number.isNaN(at))
                return `Timeline line "${line.trim().slice(0, 40)}" does not start with an ISO time`;
            s.timeline.push({ at: new Date(at).toISOString(), text: m[2] });
        }
        s.follow_ups = (followBox?.value ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
        return s;
    }
    function changed() {
        dirty = true;
        status.textContent = 'editing…';
        window.clearTimeout(timer);
        timer = window.setTimeout(() => void save(), AUTOSAVE_MS);
    }
    async function save() {
        if (!doc || saving || !dirty)
            return;
        const s = sections();
        if (typeof s === 'string') {
            status.textContent = s;
            return;
        }
        saving = true;
        dirty = false;
        status.textContent = 'saving…';
        try {
            const saved = await api.savePostmortem(id, doc.version, s);
            doc = saved;
            status.textContent = `version ${saved.version} · saved ${clockAt(saved.updated_at ?? new Date().toISOString())}`;
        }
        catch (e) {
            if (e instanceof ApiError && e.status === 409) {
                toast('Someone else saved this postmortem first: showing their version, yours was not saved', 'error');
                render(await api.postmortem(id));
            }
            else {
                dirty = true;
                status.textContent = `not saved: ${errorMessage(e)}`;
            }
        }
        finally {
            saving = false;
        }
        if (dirty)
            changed();
    }
    async function modelState() {
        try {
            const st = await api.vlmStatus();
            const ready = st.state === 'ready';
            draftBtn.disabled = !ready;
            draftWhy.textContent = ready
                ? `Asks ${st.model} on this machine for a summary of the timeline and findings; inserted below your text, labelled as machine-written.`
                : `Needs the analysis model: ${st.message}`;
        }
        catch (e) {
            draftBtn.disabled = true;
            draftWhy.textContent = `Needs the analysis model: ${errorMessage(e)}`;
        }
    }
    async function draftSummary() {
        const ta = fields.get('summary');
        if (!ta)
            return;
        draftBtn.disabled = true;
        draftWhy.textContent = 'the local model is writing…';
        try {
            const d = await api.draftSummary(id);
            // Added below what is there: nothing the user wrote is replaced.
            const mine = ta.value.replace(/\s+$/, '');
            ta.value = mine ? `${mine}\n\n${d.block}\n` : `${d.block}\n`;
            changed();
            draftWhy.textContent = `${d.label}: inserted below, ${(d.ms / 1000).toFixed(1)} s by ${d.model}.`;
            toast('Summary drafted by the local model and inserted, labelled: review it before sharing');
        }
        catch (e) {
            draftWhy.textContent = errorMessage(e);
            if (!(e instanceof ApiError && e.code === 'model_loading'))
                toast(errorMessage(e), 'error');
        }
        finally {
            draftBtn.disabled = false;
        }
    }
    async function download(format) {
        try {
            await save();
            const blob = await api.postmortemExport(id, format);
            const a = h('a', { href: URL.createObjectURL(blob), download: `postmortem-incident-${id}.${format}` });
            document.body.appendChild(a);
            a.click();
            a.remove();
            setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
        }
        catch (e) {
            toast(errorMessage(e), 'error');
        }
    }
    api.postmortem(id).then(render, (e) => replace(body, errorLine(`Could not load the postmortem: ${errorMessage(e)}`)));
    void modelState();
    return {
        el,
        dispose: () => {
            window.clearTimeout(timer);
            if (dirty)
                void save();
        },
    };
}
