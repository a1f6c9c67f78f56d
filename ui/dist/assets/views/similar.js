// Memory across incidents on the incident page: the "possible duplicate of #N — merge?"
// banner and the panel of similar past incidents, each with why it was ranked and links to
// what was learnt then (its postmortem and actions).
import { api } from '../api.js';
import { empty, statusBadge, toast } from '../components.js';
import { h, replace } from '../dom.js';
import { errorMessage, go } from '../app.js';
/** The banner offering to merge this incident into the open one it probably duplicates. */
export function duplicateBanner(inc) {
    const d = inc.possible_duplicate_of;
    if (!d || inc.merged_into != null)
        return null;
    const btn = h('button', { type: 'button', class: 'primary small', 'data-action': 'merge' }, `Merge into #${d.incident_id}`);
    btn.addEventListener('click', () => {
        if (!window.confirm(`Merge #${inc.id} into #${d.incident_id}? Its evidence, timeline, hypotheses and actions move there; #${inc.id} is closed.`))
            return;
        btn.disabled = true;
        api.merge(inc.id, d.incident_id).then((out) => {
            toast(`Merged into #${out.into.id}: ${out.evidence} evidence, ${out.timeline} timeline entries moved`);
            go(`#/incident/${out.into.id}`);
        }, (e) => {
            btn.disabled = false;
            toast(errorMessage(e), 'error');
        });
    });
    return h('div', { class: 'banner dup-banner', role: 'status' }, h('span', null, 'Possible duplicate of ', h('a', { href: `#/incident/${d.incident_id}` }, `#${d.incident_id} ${d.title}`), h('span', { class: 'muted' }, ` — ${d.reason}`), '. '), btn);
}
/** The similar incidents panel; `load` (re)reads it. */
export function similarPanel(id) {
    const body = h('div', { class: 'similar-body' });
    const el = h('section', { class: 'panel similar', 'aria-label': 'Similar incidents' }, h('h2', { class: 'section-title' }, 'Similar incidents'), body);
    let last = '';
    async function load() {
        let s;
        try {
            s = await api.similar(id);
        }
        catch (e) {
            replace(body, h('p', { class: 'error-line' }, `Could not rank similar incidents: ${errorMessage(e)}`));
            return;
        }
        const sig = JSON.stringify(s.items.map((x) => [x.incident_id, x.score, x.reasons]));
        if (sig === last)
            return;
        last = sig;
        replace(body, s.items.length
            ? h('ol', { class: 'similar-list' }, s.items.map((hit) => h('li', { class: 'similar-hit', 'data-id': hit.incident_id }, h('div', { class: 'similar-title' }, h('a', { href: hit.link }, `#${hit.incident_id} ${hit.title}`), ' ', statusBadge(hit.status), h('span', { class: 'similar-score muted small', title: `text ${hit.text_score}, screenshot ${hit.image_score ?? '—'}` }, ` ${Math.round(hit.score * 100)}%`)), h('ul', { class: 'similar-why small' }, hit.reasons.map((r) => h('li', null, r))), hit.actions.length
                ? h('p', { class: 'small muted' }, 'Actions then: ', hit.actions.slice(0, 3).join('; '), hit.actions.length > 3 ? ' …' : '')
                : null, h('p', { class: 'small' }, h('a', { href: hit.postmortem_link }, hit.has_postmortem ? 'Read its postmortem' : 'Its postmortem (not written)'), ' · ', h('a', { href: hit.link }, 'its actions and evidence')))))
            : empty('Nothing similar yet.', 'Past incidents with the same words, service or screenshots show here.'));
    }
    return { el, load };
}
