// Who runs the incident: commander, communications lead, scribe and participants, shown in
// the header and assigned from it (each change is a timeline entry, written by the server).
import { api } from '../api.js';
import { toast } from '../components.js';
import { h, select } from '../dom.js';
import { ROLES } from '../types.js';
import { errorMessage } from '../app.js';
const ROLE_LABEL = {
    commander: 'Commander', communications: 'Comms', scribe: 'Scribe', participant: 'Participants',
};
/** The roles line with a small "assign" form; `changed` re-reads the incident. */
export function rolesBar(incident, roles, people, changed) {
    const who = (p) => p ? h('span', { class: 'person', title: p.handle ? `@${p.handle}` : p.name }, p.name, remove(p)) : h('span', { class: 'muted' }, '—');
    let current = 'commander';
    const remove = (p) => {
        const role = roleOf(roles, p, current);
        if (!role)
            return null;
        return h('button', {
            class: 'ghost tiny', type: 'button', title: `Remove ${p.name} as ${ROLE_LABEL[role].toLowerCase()}`, 'aria-label': `Remove ${p.name}`,
            onclick: () => void api.unassignRole(incident, role, p.id).then(changed, (e) => toast(errorMessage(e), 'error')),
        }, '×');
    };
    const parts = [];
    for (const r of ['commander', 'communications', 'scribe']) {
        current = r;
        parts.push(h('span', { class: 'role', 'data-role': r }, `${ROLE_LABEL[r]}: `, who(roles[r] ?? null)));
    }
    current = 'participant';
    parts.push(h('span', { class: 'role', 'data-role': 'participant' }, `${ROLE_LABEL.participant}: `, roles.participants.length ? roles.participants.map((p) => who(p)) : who(null)));
    const role = select(ROLES, 'commander', { name: 'role', title: 'Role', label: (r) => ROLE_LABEL[r] });
    const listId = `people-${incident}`;
    const person = h('input', { name: 'person', list: listId, placeholder: 'name, @handle, or someone new', autocomplete: 'off', 'aria-label': 'Person', size: 14 });
    const options = h('datalist', { id: listId }, people.map((p) => h('option', { value: p.handle ? `@${p.handle}` : p.name }, p.name)));
    const form = h('form', { class: 'roles-form' }, role, person, options, h('button', { type: 'submit', class: 'small' }, 'Assign'));
    form.addEventListener('submit', (e) => {
        e.preventDefault();
        const name = person.value.trim();
        if (!name)
            return;
        // A name nobody has yet is someone new: they are added to the people, then assigned
        // (an unknown @handle or id stays an error: it names someone who should exist).
        const lower = name.toLowerCase();
        const known = people.some((p) => p.name.toLowerCase() === lower || (p.handle && `@${p.handle}` === name) || String(p.id) === name);
        const isNew = !known && !name.startsWith('@') && !/^\d+$/.test(name);
        const who = isNew ? api.addPerson({ name }).then((p) => String(p.id)) : Promise.resolve(name);
        who.then((w) => api.assignRole(incident, role.value, w)).then(() => {
            if (isNew)
                toast(`Added ${name} to the people`);
            person.value = '';
            changed();
        }, (err) => toast(errorMessage(err), 'error'));
    });
    return h('div', { class: 'roles-bar', 'aria-label': 'Roles' }, parts, form);
}
function roleOf(roles, p, hint) {
    if (hint === 'participant')
        return roles.participants.some((x) => x.id === p.id) ? 'participant' : null;
    return roles[hint]?.id === p.id ? hint : null;
}
