// Evidence of an incident: adding it (text, file drop, file picker, clipboard paste) and the
// list of cards, with screenshot thumbnails and their analysis state.
import { api } from '../api.js';
import { analysisBadge, busy, empty, kbd, toast } from '../components.js';
import { h, replace, select } from '../dom.js';
import { bytes, cap, clock } from '../format.js';
import { TEXT_EVIDENCE } from '../types.js';
import { errorMessage } from '../app.js';
import { openViewer, summaryOf } from './viewer.js';
import { openCompare, screenshotsOf } from './compare.js';
import { parseTyped, readField, timeEl, timeField } from '../when.js';
const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp'];
export function evidenceSection(ctx) {
    const type = select(TEXT_EVIDENCE, 'log', { name: 'evidence_type', label: cap, title: 'Type' });
    const title = h('input', { name: 'title', placeholder: 'Title, e.g. payment-svc logs', maxlength: 500, autocomplete: 'off', 'aria-label': 'Evidence title' });
    const source = h('input', { name: 'source', placeholder: 'Source (kubectl, Grafana URL…)', autocomplete: 'off', 'aria-label': 'Source' });
    const content = h('textarea', {
        name: 'content', rows: 5, spellcheck: 'false', class: 'mono', 'aria-label': 'Evidence content',
        placeholder: 'Paste log lines or write a note. Ctrl+Enter adds it.',
    });
    const add = h('button', { type: 'submit', class: 'primary' }, 'Add evidence');
    const at = timeField('occurred_at');
    at.placeholder = 'from the text, else now';
    at.size = 18;
    const form = h('form', { class: 'form add-evidence' }, h('div', { class: 'row-fields' }, type, title, source, at), content, h('div', { class: 'form-actions' }, add));
    const file = h('input', { type: 'file', accept: IMAGE_TYPES.join(','), multiple: true, class: 'visually-hidden', name: 'file', 'aria-label': 'Screenshot file' });
    const drop = h('div', { class: 'drop', tabindex: 0, role: 'button', 'aria-label': 'Add a screenshot' }, h('strong', null, 'Screenshot'), h('span', null, ' — drop an image here, paste one with ', kbd('Ctrl+V'), ', or ', h('span', { class: 'link' }, 'choose a file'), ' ', kbd('u')), file);
    const uploads = h('div', { class: 'uploads', 'aria-live': 'polite' });
    const list = h('div', { class: 'ev-list' });
    const compare = h('button', { type: 'button', class: 'ghost small', 'data-action': 'compare', hidden: true,
        title: 'Compare two screenshots side by side or overlaid', onclick: () => openCompare(ctx) }, 'Compare screenshots');
    const el = h('section', { class: 'panel evidence', 'aria-label': 'Evidence' }, h('h2', { class: 'section-title' }, 'Evidence ', compare), form, drop, uploads, list);
    form.addEventListener('submit', (e) => {
        e.preventDefault();
        const text = content.value;
        const t = title.value.trim() || firstLine(text) || `${cap(type.value)} at ${new Date().toLocaleTimeString()}`;
        if (!text.trim()) {
            content.focus();
            toast('Paste or type the evidence first', 'error');
            return;
        }
        const when = readField(at);
        if (when && 'error' in when) {
            at.focus();
            toast(when.error, 'error');
            return;
        }
        void busy(add, 'Adding…', async () => {
            try {
                const added = await api.addEvidence(ctx.id, {
                    evidence_type: type.value, title: t, content: text, source: source.value.trim() || 'ui',
                    occurred_at: when?.iso,
                });
                title.value = '';
                content.value = '';
                at.value = '';
                const note = when?.assumed ? ` (no zone given: taken as ${when.assumed})`
                    : added.occurred_at_source === 'derived' ? ' (time read from the text)' : '';
                toast(`Evidence added at ${clock(added.occurred_at)}${note}`);
                await ctx.refresh('evidence', 'timeline', 'incident');
            }
            catch (err) {
                toast(errorMessage(err), 'error');
            }
        });
    });
    content.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
            e.preventDefault();
            form.requestSubmit();
        }
    });
    async function upload(files) {
        for (const f of files) {
            if (!IMAGE_TYPES.includes(f.type)) {
                toast(`${f.name || 'That file'} is not a PNG, JPEG or WebP image`, 'error');
                continue;
            }
            const name = f.name || `pasted-${new Date().toISOString().replace(/[:.]/g, '-')}.png`;
            const line = h('p', { class: 'loading', role: 'status' }, h('span', { class: 'dot' }), `Uploading ${name} (${bytes(f.size)})…`);
            uploads.appendChild(line);
            try {
                await api.upload(ctx.id, f, name);
                toast(`Screenshot ${name} added`);
            }
            catch (err) {
                toast(`Upload of ${name} failed: ${errorMessage(err)}`, 'error');
            }
            finally {
                line.remove();
            }
        }
        await ctx.refresh('evidence', 'timeline', 'incident');
    }
    drop.addEventListener('click', () => file.click());
    drop.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
            e.preventDefault();
            file.click();
        }
    });
    file.addEventListener('click', (e) => e.stopPropagation());
    file.addEventListener('change', () => {
        const files = Array.from(file.files ?? []);
        file.value = '';
        void upload(files);
    });
    // Drops and pastes anywhere on the incident page land here.
    const onDragOver = (e) => {
        if (e.dataTransfer?.types.includes('Files')) {
            e.preventDefault();
            drop.classList.add('over');
        }
    };
    const onDragLeave = (e) => {
        if (!e.relatedTarget)
            drop.classList.remove('over');
    };
    const onDrop = (e) => {
        const files = Array.from(e.dataTransfer?.files ?? []);
        drop.classList.remove('over');
        if (!files.length)
            return;
        e.preventDefault();
        void upload(files);
    };
    const onPaste = (e) => {
        const files = Array.from(e.clipboardData?.items ?? [])
            .filter((i) => i.kind === 'file' && i.type.startsWith('image/'))
            .map((i) => i.getAsFile())
            .filter((f) => f !== null);
        if (!files.length)
            return;
        e.preventDefault();
        void upload(files);
    };
    document.addEventListener('dragover', onDragOver);
    document.addEventListener('dragleave', onDragLeave);
    document.addEventListener('drop', onDrop);
    document.addEventListener('paste', onPaste);
    function render() {
        compare.hidden = screenshotsOf(ctx).length < 2;
        if (!ctx.evidence.length) {
            replace(list, empty('No evidence yet.', [
                'Paste a log above, drop a dashboard screenshot, or press ', kbd('Ctrl+V'), ' with one on the clipboard.',
            ]));
            return;
        }
        const cards = ctx.evidence.slice().reverse().map((e) => (e.image ? shotCard(e) : textCard(e)));
        replace(list, cards);
    }
    function shotCard(e) {
        const img = h('img', { alt: `Screenshot: ${e.title}`, class: 'thumb', 'data-evidence': e.id, loading: 'lazy' });
        api.imageUrl(e.id).then((u) => { img.src = u; }, () => { img.alt = 'image could not be loaded'; });
        const summary = summaryOf(e);
        return h('article', { class: 'card shot', id: `evidence-${e.id}`, 'data-id': e.id }, h('button', { class: 'thumb-btn', type: 'button', title: 'Open the viewer', onclick: () => openViewer(ctx, e.id) }, img), h('div', { class: 'card-body' }, h('div', { class: 'card-head' }, h('span', { class: 'tag' }, 'screenshot'), h('strong', { class: 'card-title' }, e.title), e.analysis_state ? analysisBadge(e.analysis_state) : null), h('p', { class: 'muted small' }, `#${e.id} · ${e.image ? `${e.image.width}×${e.image.height} · ${bytes(e.image.bytes)}` : ''} · `, evidenceTime(e)), summary ? h('p', { class: 'summary' }, summary) : null, e.analysis_state === 'failed' && e.analysis_error ? h('p', { class: 'error-line' }, e.analysis_error) : null, h('button', { class: 'ghost small', type: 'button', onclick: () => openViewer(ctx, e.id) }, 'View & analysis')));
    }
    function textCard(e) {
        const lines = e.content.split('\n');
        const long = lines.length > 12 || e.content.length > 1500;
        const pre = h('pre', { class: long ? 'content clipped' : 'content' }, e.content);
        const toggle = long
            ? h('button', { class: 'ghost small', type: 'button', onclick: () => {
                    pre.classList.toggle('clipped');
                    toggle.textContent = pre.classList.contains('clipped') ? `Show all ${lines.length} lines` : 'Show less';
                } }, `Show all ${lines.length} lines`)
            : null;
        return h('article', { class: `card text type-${e.evidence_type}`, id: `evidence-${e.id}`, 'data-id': e.id }, h('div', { class: 'card-head' }, h('span', { class: 'tag' }, e.evidence_type), h('strong', { class: 'card-title' }, e.title), h('span', { class: 'muted small' }, `#${e.id} · ${e.source} · `, evidenceTime(e))), pre, toggle);
    }
    return {
        el,
        render,
        focusAdd: () => content.focus(),
        pickFile: () => file.click(),
        dispose: () => {
            document.removeEventListener('dragover', onDragOver);
            document.removeEventListener('dragleave', onDragLeave);
            document.removeEventListener('drop', onDrop);
            document.removeEventListener('paste', onPaste);
        },
    };
}
/** When the evidence happened; a click lets a person set it (their time then stands). */
function evidenceTime(e) {
    const el = timeEl(e.occurred_at, e.occurred_at_source);
    el.classList.add('editable-time');
    el.tabIndex = 0;
    el.setAttribute('role', 'button');
    el.title += ' — click to change when it happened';
    const edit = () => {
        const input = window.prompt(`When did "${e.title}" happen? (07:13, 07:13:42Z, ISO-8601)`, e.occurred_at);
        if (input === null || !input.trim())
            return;
        const when = parseTyped(input);
        if ('error' in when) {
            toast(when.error, 'error');
            return;
        }
        api.updateEvidence(e.id, { occurred_at: when.iso }).then(() => toast(`Evidence #${e.id} now at ${clock(when.iso)}${when.assumed ? ` (taken as ${when.assumed})` : ''}`), (err) => toast(errorMessage(err), 'error'));
    };
    el.addEventListener('click', edit);
    el.addEventListener('keydown', (ev) => { if (ev.key === 'Enter')
        edit(); });
    return el;
}
function firstLine(text) {
    return (text.split('\n').find((l) => l.trim()) ?? '').trim().slice(0, 120);
}
