// Redaction before sharing: draw boxes over a screenshot to black them out. Saving writes a
// new, redacted image on the server (the original stays, unshared); every export uses the
// redacted one. Suggestions (emails, IPs, tokens, customer ids read by the analysis) are
// listed as text: the analysis gives no coordinates, so the user draws the box.
import { api } from '../api.js';
import { busy, dialog, toast } from '../components.js';
import { h, replace } from '../dom.js';
import { errorMessage } from '../app.js';
/** Opens the redaction editor for screenshot `e`; `done` runs after a save. */
export function openRedactor(e, done) {
    const canvas = h('canvas', { class: 'redact-canvas', 'aria-label': 'Drag to draw a box to black out' });
    const list = h('ul', { class: 'redact-boxes small' });
    const hints = h('div', { class: 'redact-hints small' });
    const save = h('button', { type: 'button', class: 'primary', 'data-action': 'save-redaction' }, 'Save redacted copy');
    const undo = h('button', { type: 'button', class: 'ghost small' }, 'Undo last box');
    const body = h('div', { class: 'redactor' }, h('p', { class: 'muted small' }, 'Drag over what must not leave this machine. The original is kept; exports and posts use the redacted copy.'), h('div', { class: 'redact-stage' }, canvas), h('div', { class: 'redact-side' }, h('h3', null, 'Boxes'), list, undo, hints, save));
    const d = dialog(`Redact: ${e.title}`, body, { wide: true });
    d.el.classList.add('redact-dlg');
    const img = new Image();
    const boxes = (e.redaction?.boxes ?? []).map((b) => ({ ...b }));
    let scale = 1;
    let drag = null;
    function toImage(ev) {
        const r = canvas.getBoundingClientRect();
        const x = ((ev.clientX - r.left) / r.width) * canvas.width / scale;
        const y = ((ev.clientY - r.top) / r.height) * canvas.height / scale;
        return { x: Math.max(0, Math.min(img.naturalWidth, x)), y: Math.max(0, Math.min(img.naturalHeight, y)) };
    }
    function draw() {
        const g = canvas.getContext('2d');
        if (!g)
            return;
        g.drawImage(img, 0, 0, canvas.width, canvas.height);
        g.fillStyle = '#000';
        for (const b of boxes)
            g.fillRect(b.x * scale, b.y * scale, b.width * scale, b.height * scale);
        if (drag) {
            g.strokeStyle = '#f2495c';
            g.lineWidth = 2;
            g.strokeRect(Math.min(drag.x, drag.cx) * scale, Math.min(drag.y, drag.cy) * scale, Math.abs(drag.cx - drag.x) * scale, Math.abs(drag.cy - drag.y) * scale);
        }
        replace(list, boxes.length
            ? boxes.map((b, i) => h('li', { 'data-box': i }, `${b.x},${b.y} ${b.width}×${b.height} `, h('button', { type: 'button', class: 'ghost small', 'aria-label': `Remove box ${i + 1}`, onclick: () => { boxes.splice(i, 1); draw(); } }, '✕')))
            : h('li', { class: 'muted' }, 'No boxes yet.'));
        save.disabled = boxes.length === 0;
    }
    canvas.addEventListener('pointerdown', (ev) => {
        const p = toImage(ev);
        drag = { x: p.x, y: p.y, cx: p.x, cy: p.y };
        canvas.setPointerCapture(ev.pointerId);
    });
    canvas.addEventListener('pointermove', (ev) => {
        if (!drag)
            return;
        const p = toImage(ev);
        drag.cx = p.x;
        drag.cy = p.y;
        draw();
    });
    canvas.addEventListener('pointerup', () => {
        if (!drag)
            return;
        const x = Math.floor(Math.min(drag.x, drag.cx));
        const y = Math.floor(Math.min(drag.y, drag.cy));
        const width = Math.min(Math.ceil(Math.max(drag.x, drag.cx)), img.naturalWidth) - x;
        const height = Math.min(Math.ceil(Math.max(drag.y, drag.cy)), img.naturalHeight) - y;
        drag = null;
        if (width >= 2 && height >= 2)
            boxes.push({ x, y, width, height });
        draw();
    });
    undo.addEventListener('click', () => { boxes.pop(); draw(); });
    save.addEventListener('click', () => {
        void busy(save, 'Saving…', async () => {
            try {
                await api.redact(e.id, boxes);
                toast(`Redacted copy saved (${boxes.length} box${boxes.length === 1 ? '' : 'es'}); exports use it`);
                d.close();
                done();
            }
            catch (err) {
                toast(errorMessage(err), 'error');
            }
        });
    });
    api.imageUrl(e.id).then((u) => {
        img.onload = () => {
            scale = Math.min(1, 900 / img.naturalWidth, 600 / img.naturalHeight);
            canvas.width = Math.round(img.naturalWidth * scale);
            canvas.height = Math.round(img.naturalHeight * scale);
            canvas.dataset['scale'] = String(scale);
            canvas.dataset['ready'] = '1';
            draw();
        };
        img.src = u;
    }, () => replace(body, h('p', { class: 'error-line' }, 'The image could not be loaded.')));
    api.redactionSuggestions(e.id).then((s) => {
        replace(hints, s.length
            ? [h('h3', null, 'Looks sensitive'),
                h('p', { class: 'muted' }, 'Read by the analysis; it gives no positions, so draw a box over each:'),
                h('ul', { class: 'redact-suggestions' }, s.map((x) => h('li', null, h('strong', null, x.kind), ': ', h('code', null, x.text))))]
            : h('p', { class: 'muted' }, 'The analysis read nothing that looks like an email, IP, token or customer id.'));
    }, () => undefined);
}
