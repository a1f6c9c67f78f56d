// Settings: where the data lives, the port, the token, the capture hotkeys, the theme and the
// state of the local analysis model.
import { api, session } from '../api.js';
import { errorLine, kbd, loading, toast } from '../components.js';
import { h, replace, select } from '../dom.js';
import { bytes } from '../format.js';
import { displayZone, setDisplayZone, zoneLabel } from '../when.js';
import { errorMessage, toggleTheme } from '../app.js';
import { teamPanel } from './team.js';
import { modelCard } from './firstrun.js';
import { integrationsPanel } from './integrations_panel.js';
export function settingsView(onSignOut) {
    const server = h('div', null, loading('Reading the server settings…'));
    const model = h('div', null, loading('Asking the model status…'));
    const firstRun = modelCard(false);
    const el = h('section', { class: 'settings-view' }, h('h1', null, 'Settings'), h('section', { class: 'panel' }, h('h2', { class: 'section-title' }, 'You'), youForm()), h('section', { class: 'panel' }, h('h2', { class: 'section-title' }, 'This OpsLens'), server), firstRun.el, h('section', { class: 'panel' }, h('h2', { class: 'section-title' }, 'Analysis model'), model), h('section', { class: 'panel' }, h('h2', { class: 'section-title' }, 'Integrations'), h('p', { class: 'muted small' }, 'Keys are stored like ', kbd('opslens secrets set'), ' stores them: the OS keychain, else secrets.env (mode 0600); they are never shown back.'), integrationsPanel()), h('section', { class: 'panel' }, h('h2', { class: 'section-title' }, 'Team server'), teamPanel()), h('section', { class: 'panel' }, h('h2', { class: 'section-title' }, 'Appearance'), h('p', null, 'Theme: ', h('button', { type: 'button', onclick: toggleTheme }, 'Switch dark / light'), ' ', kbd('t')), zonePicker()));
    async function loadInfo() {
        try {
            renderInfo(await api.info());
        }
        catch (e) {
            replace(server, errorLine(errorMessage(e)));
        }
    }
    function renderInfo(info) {
        const token = session.get() ?? '';
        const shown = h('code', { class: 'token' }, mask(token));
        let visible = false;
        replace(server, h('dl', { class: 'facts' }, h('dt', null, 'Data directory'), h('dd', null, h('code', { 'data-field': 'data_dir' }, info.data_dir)), h('dt', null, 'Address'), h('dd', null, h('code', { 'data-field': 'port' }, `http://127.0.0.1:${info.port}`), ' (loopback only; start with ', kbd('opslens serve --addr 127.0.0.1:PORT'), ')'), h('dt', null, 'API token'), h('dd', null, shown, ' ', h('button', { type: 'button', class: 'ghost small', onclick: (ev) => {
                visible = !visible;
                shown.textContent = visible ? token : mask(token);
                ev.currentTarget.textContent = visible ? 'Hide' : 'Show';
            } }, 'Show'), ' ', h('button', { type: 'button', class: 'ghost small', onclick: () => {
                navigator.clipboard?.writeText(token).then(() => toast('Token copied'), () => toast('Copy failed: select it and copy by hand', 'error'));
            } }, 'Copy'), ' ', h('button', { type: 'button', class: 'ghost small', onclick: () => { session.clear(); onSignOut(); } }, 'Sign out of this browser'), h('p', { class: 'muted small' }, session.remembered()
            ? 'Remembered in this browser (localStorage).'
            : 'Kept for this tab only (sessionStorage). `opslens token` prints it; scripts send it as Authorization: Bearer.')), h('dt', null, 'Capture hotkey'), h('dd', null, kbd(info.hotkey), info.desktop ? '' : h('span', { class: 'muted small' }, ' — in the desktop app (not in this browser window)')), h('dt', null, 'Region hotkey'), h('dd', null, kbd(info.region_hotkey), h('span', { class: 'muted small' }, ' — drag a rectangle on the frozen screen')), h('dt', null, 'Disk'), h('dd', { 'data-field': 'disk' }, info.storage.free_bytes == null ? 'free space unknown on this platform'
            : `${bytes(info.storage.free_bytes)} free${info.storage.total_bytes ? ` of ${bytes(info.storage.total_bytes)}` : ''}`, info.storage.warning ? h('p', { class: 'error-line small' }, info.storage.warning)
            : h('span', { class: 'muted small' }, ` — warns under ${bytes(info.storage.warn_below_bytes)} (OPSLENS_LOW_DISK_MB)`)), h('dt', null, 'Version'), h('dd', null, info.version), h('dt', null, 'API'), h('dd', null, h('a', { href: '/docs', target: '_blank', rel: 'noopener' }, 'Interactive docs (/docs)'))));
    }
    async function loadModel() {
        try {
            renderModel(await api.vlmStatus());
        }
        catch (e) {
            replace(model, errorLine(errorMessage(e)));
        }
    }
    function renderModel(s) {
        const queue = Object.entries(s.queue).map(([k, v]) => `${k}: ${v}`).join(', ') || 'empty';
        replace(model, h('dl', { class: 'facts' }, h('dt', null, 'Model'), h('dd', null, h('code', null, s.model)), h('dt', null, 'State'), h('dd', null, h('span', { class: `badge model-${s.state}`, 'data-field': 'model-state' }, s.loaded ? `${s.state} (loaded)` : s.state)), h('dt', null, 'Device'), h('dd', { 'data-field': 'device' }, deviceText(s)), s.device_note ? h('dt', null, 'Device note') : null, s.device_note ? h('dd', { 'data-field': 'device-note', class: 'error-line small' }, s.device_note) : null, h('dt', null, 'Screenshots'), h('dd', { 'data-field': 'privacy', class: s.privacy ? 'privacy-note' : '' }, s.privacy ?? 'analysed on this machine; they never leave it'), h('dt', null, 'Queue'), h('dd', null, `${s.queue_length} (${queue})`)), h('p', { class: 'model-message' }, s.message), s.pull ? h('p', { class: 'small', 'data-field': 'pull' }, pullText(s.pull)) : null, h('button', { type: 'button', class: 'ghost small', onclick: () => void loadModel() }, 'Refresh'));
    }
    /** `cuda:0 — NVIDIA H200, 139.8 GiB (120.0 GiB free) · weights bf16`: what the model runs on. */
    function deviceText(s) {
        const parts = [s.device_hardware, s.device_memory
                ? `${bytes(s.device_memory.total_bytes)}${s.device_memory.free_bytes != null ? ` (${bytes(s.device_memory.free_bytes)} free)` : ''}`
                : null].filter((p) => !!p);
        const what = parts.length ? `${s.device} — ${parts.join(', ')}` : s.device;
        return s.remote_url ? what : `${what} · weights ${s.weights}`;
    }
    void loadInfo();
    void loadModel();
    const timer = window.setInterval(() => void loadModel(), 10_000);
    return { el, dispose: () => { window.clearInterval(timer); firstRun.dispose(); } };
}
/** The local user's name: the author of every entry written from this install. */
function youForm() {
    const name = h('input', { name: 'me_name', placeholder: 'Your name', autocomplete: 'name', 'aria-label': 'Your name', maxlength: 200 });
    const handle = h('input', { name: 'me_handle', placeholder: '@handle', autocomplete: 'off', 'aria-label': 'Handle', size: 12 });
    const email = h('input', { name: 'me_email', type: 'email', placeholder: 'email (optional)', autocomplete: 'email', 'aria-label': 'Email' });
    const form = h('form', { class: 'inline-form me-form' }, name, handle, email, h('button', { type: 'submit' }, 'Save'));
    api.me().then((p) => {
        name.value = p.name;
        handle.value = p.handle ? `@${p.handle}` : '';
        email.value = p.email ?? '';
    }, () => { });
    form.addEventListener('submit', (e) => {
        e.preventDefault();
        api.setMe({ name: name.value, handle: handle.value || undefined, email: email.value || undefined }).then((p) => toast(`Entries you write now show ${p.name}`), (err) => toast(errorMessage(err), 'error'));
    });
    return h('div', null, form, h('p', { class: 'muted small' }, 'The author of what you write here, in the CLI and through the API token (', kbd('opslens config set name …'), ').'));
}
/** One time zone for every time on screen: UTC (default) or this browser's zone. */
function zonePicker() {
    const pick = select(['utc', 'local'], displayZone(), {
        name: 'zone', title: 'Time zone',
        label: (z) => (z === 'utc' ? 'UTC' : `Local (${Intl.DateTimeFormat().resolvedOptions().timeZone})`),
    });
    pick.addEventListener('change', () => {
        setDisplayZone(pick.value);
        toast(`Times now show in ${zoneLabel()}`);
    });
    return h('p', null, h('label', { class: 'inline' }, 'Times in ', pick), h('span', { class: 'muted small' }, ' — typed times without a zone are read in it too'));
}
function pullText(p) {
    const pct = p.total_bytes ? Math.floor((100 * p.done_bytes) / p.total_bytes) : 0;
    if (p.state === 'downloading')
        return `Downloading ${p.file ?? ''}: ${pct}% of ${(p.total_bytes / 2 ** 30).toFixed(2)} GiB`;
    if (p.state === 'failed')
        return `Download failed: ${p.error ?? 'unknown error'}`;
    if (p.state === 'cancelled')
        return `Download stopped at ${pct}%; getting the model again resumes it.`;
    return 'Download complete.';
}
function mask(t) {
    return t ? `${t.slice(0, 4)}${'•'.repeat(12)}${t.slice(-4)}` : '(none)';
}
