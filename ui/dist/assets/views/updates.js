// Status updates for stakeholders: a dialog (status, impact, text, next update due) that
// posts to /incidents/{id}/updates, which puts it on the timeline and sends it to Slack,
// Teams and the webhooks; and the header's "next update due" (red once overdue).
import { api } from '../api.js';
import { busy, dialog, toast } from '../components.js';
import { h, select } from '../dom.js';
import { STATUS_LABEL, duration } from '../format.js';
import { STATUSES } from '../types.js';
import { errorMessage } from '../app.js';
import { clockAt, isoFull } from '../when.js';
/** Opens the status update dialog; `done` runs after it was posted. */
export function statusUpdateDialog(inc, done) {
    const status = select(STATUSES, inc.status, { name: 'update_status', label: (s) => STATUS_LABEL[s], title: 'Status' });
    const impact = h('input', { name: 'impact', placeholder: 'Who is affected and how (optional)', autocomplete: 'off', maxlength: 4000 });
    const text = h('textarea', { name: 'update_text', rows: 4, placeholder: 'What we know, what we are doing', maxlength: 4000 });
    const next = h('input', { name: 'next_update', value: '30m', autocomplete: 'off', size: 10, title: '30m, 1h, 07:45 (UTC) or ISO-8601; empty: none promised' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Post update');
    const form = h('form', { class: 'form status-update' }, h('label', null, 'Status', status), h('label', null, 'Impact', impact), h('label', null, 'Update', text), h('label', null, 'Next update in', next), h('div', { class: 'form-actions' }, submit));
    const d = dialog(`Status update · #${inc.id}`, form);
    text.focus();
    form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        if (!text.value.trim()) {
            text.focus();
            toast('Write what the update says first', 'error');
            return;
        }
        void busy(submit, 'Posting…', async () => {
            try {
                await api.postUpdate(inc.id, {
                    text: text.value.trim(),
                    impact: impact.value.trim() || undefined,
                    status: status.value !== inc.status ? status.value : undefined,
                    next_update_at: next.value.trim() || undefined,
                });
                d.close();
                toast('Status update posted');
                done();
            }
            catch (e) {
                toast(errorMessage(e), 'error');
            }
        });
    });
}
/** "Next update 07:45:00 UTC (in 12m)", red and "overdue" once the time has passed. */
export function nextUpdate(inc, now = Date.now()) {
    if (!inc.next_update_at || inc.status === 'resolved' || inc.status === 'closed')
        return null;
    const due = Date.parse(inc.next_update_at);
    const overdue = due < now;
    return h('span', {
        class: overdue ? 'timer next-update overdue' : 'timer next-update',
        'data-field': 'next-update',
        title: `Next status update due ${isoFull(inc.next_update_at)}`,
    }, overdue
        ? `Update overdue by ${duration(now - due)}`
        : `Next update ${clockAt(inc.next_update_at)} (in ${duration(due - now)})`);
}
