// Shown when the page has no token: how to get signed in, and a field to paste the token.
import { api, ApiError, session } from '../api.js';
import { busy, errorLine, kbd } from '../components.js';
import { h } from '../dom.js';
export function connectView(onDone, problem) {
    const token = h('input', {
        type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false',
        placeholder: 'paste the output of `opslens token`', 'aria-label': 'API token',
    });
    const remember = h('input', { type: 'checkbox', name: 'remember' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Connect');
    const msg = h('div', null, problem ? errorLine(problem) : null);
    const form = h('form', { class: 'form connect-form' }, h('label', null, 'API token', token), h('label', { class: 'check' }, remember, 'Remember in this browser (otherwise only for this tab)'), h('div', { class: 'form-actions' }, submit), msg);
    form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const t = token.value.trim();
        if (!t)
            return token.focus();
        void busy(submit, 'Checking the token…', async () => {
            session.set(t, remember.checked);
            try {
                await api.info();
                onDone();
            }
            catch (e) {
                session.clear();
                const text = e instanceof ApiError && e.status === 401
                    ? 'That token was refused. Copy it again with `opslens token` (it is per data dir).'
                    : e instanceof Error ? e.message : String(e);
                msg.replaceChildren(errorLine(text));
                token.select();
            }
        });
    });
    const el = h('section', { class: 'connect' }, h('h1', null, 'Connect to OpsLens'), h('p', null, 'This page talks to the OpsLens server on this machine and needs its API token.'), h('ol', { class: 'steps' }, h('li', null, 'Easiest: run ', kbd('opslens open'), ' in a terminal. It opens this page already signed in (the link works once).'), h('li', null, 'Or run ', kbd('opslens token'), ' and paste the token below.')), form);
    setTimeout(() => token.focus(), 0);
    return { el };
}
