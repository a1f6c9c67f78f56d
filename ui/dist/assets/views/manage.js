// Renaming and deleting an incident from its page.
import { api } from '../api.js';
import { busy, dialog, toast } from '../components.js';
import { h } from '../dom.js';
import { errorMessage, go } from '../app.js';
/** The title as a heading that turns into a field on click (Enter saves, Esc cancels). */
export function editableTitle(inc, saved) {
    const title = h('h1', { class: 'inc-title', title: 'Click to rename', tabindex: 0 }, inc.title);
    const edit = () => {
        const input = h('input', { name: 'title', value: inc.title, maxlength: 500, 'aria-label': 'Incident title', class: 'title-input' });
        const done = (save) => {
            const v = input.value.trim();
            if (!save || !v || v === inc.title) {
                input.replaceWith(title);
                return;
            }
            api.updateIncident(inc.id, { title: v }).then((updated) => {
                toast('Renamed');
                saved(updated);
            }, (e) => {
                toast(errorMessage(e), 'error');
                input.replaceWith(title);
            });
        };
        input.addEventListener('keydown', (e) => {
            if (e.key === 'Enter') {
                e.preventDefault();
                done(true);
            }
            if (e.key === 'Escape') {
                e.preventDefault();
                e.stopPropagation();
                done(false);
            }
        });
        input.addEventListener('blur', () => done(true));
        title.replaceWith(input);
        input.focus();
        input.select();
    };
    title.addEventListener('click', edit);
    title.addEventListener('keydown', (e) => { if (e.key === 'Enter')
        edit(); });
    return title;
}
/** Asks, then deletes the incident with everything on it and goes back to the list. */
export function deleteIncidentDialog(inc) {
    const yes = h('button', { type: 'submit', class: 'danger' }, `Delete incident #${inc.id}`);
    const form = h('form', { class: 'form' }, h('p', null, `“${inc.title}” goes away with its ${inc.evidence_count} evidence, timeline, hypotheses and actions. This cannot be undone.`), h('div', { class: 'form-actions' }, yes));
    const d = dialog('Delete incident?', form);
    yes.focus();
    form.addEventListener('submit', (e) => {
        e.preventDefault();
        void busy(yes, 'Deleting…', async () => {
            try {
                await api.deleteIncident(inc.id);
                d.close();
                toast(`Incident #${inc.id} deleted`);
                go('#/');
            }
            catch (err) {
                toast(errorMessage(err), 'error');
            }
        });
    });
}
/** Pin (for the postmortem), and for notes and observations edit and delete. */
export function entryTools(t, changed) {
    const fail = (e) => toast(errorMessage(e), 'error');
    const pin = h('button', {
        class: t.pinned ? 'ghost tiny pin pinned' : 'ghost tiny pin', type: 'button',
        title: t.pinned ? 'Unpin from the postmortem timeline' : 'Pin to the postmortem timeline',
        'aria-pressed': t.pinned ? 'true' : 'false',
        onclick: () => void api.editTimeline(t.id, { pinned: !t.pinned }).then(changed, fail),
    }, t.pinned ? 'Pinned' : 'Pin');
    const own = t.kind === 'note' || t.kind === 'observation';
    const editBtn = own ? h('button', {
        class: 'ghost tiny', type: 'button', title: 'Edit this entry',
        onclick: () => {
            const m = window.prompt('Edit the entry', t.message);
            if (m === null || !m.trim() || m === t.message)
                return;
            void api.editTimeline(t.id, { message: m.trim() }).then(changed, fail);
        },
    }, 'Edit') : null;
    const del = t.kind !== 'evidence_added' ? h('button', {
        class: 'ghost tiny', type: 'button', title: 'Delete this entry',
        onclick: () => {
            if (!window.confirm(`Delete "${t.message.slice(0, 80)}" from the timeline?`))
                return;
            void api.deleteTimeline(t.id).then(changed, fail);
        },
    }, 'Delete') : null;
    return h('span', { class: 'tl-tools' }, pin, editBtn, del);
}
