// Two screenshots of one incident compared (e.g. before and after a deploy): side by side, or
// one over the other with an opacity fade or a split slider, so a changed line or value shows
// up without flicking between two viewers. Both images load through the token-carrying image
// cache, so nothing leaves the page.
import { api } from '../api.js';
import { busy, dialog } from '../components.js';
import { errorMessage } from '../app.js';
import { h, replace } from '../dom.js';
import { clock } from '../format.js';
/** Screenshots of the incident, oldest event first (the natural before → after order). */
export function screenshotsOf(ctx) {
    return ctx.evidence
        .filter((e) => e.image)
        .sort((a, b) => a.occurred_at.localeCompare(b.occurred_at) || a.id - b.id);
}
/** Opens the comparison of screenshots `a` and `b` (defaults: the two latest). */
export function openCompare(ctx, a, b) {
    const shots = screenshotsOf(ctx);
    if (shots.length < 2)
        return;
    let before = a ?? shots[shots.length - 2].id;
    let after = b ?? shots[shots.length - 1].id;
    let mode = 'side';
    let amount = 50;
    const picker = (name, value, onPick) => {
        const s = h('select', { name, 'aria-label': name === 'before' ? 'Before' : 'After' }, shots.map((e) => h('option', { value: String(e.id), selected: e.id === value }, `#${e.id} ${e.title} · ${clock(e.occurred_at)}`)));
        s.addEventListener('change', () => { onPick(Number(s.value)); void draw(); });
        return s;
    };
    const modeBtn = (m, label) => {
        const btn = h('button', { type: 'button', class: 'ghost small', 'data-mode': m, 'aria-pressed': String(m === mode) }, label);
        btn.addEventListener('click', () => { mode = m; void draw(); });
        return btn;
    };
    const modes = h('div', { class: 'compare-modes', role: 'group', 'aria-label': 'View' }, modeBtn('side', 'Side by side'), modeBtn('fade', 'Overlay'), modeBtn('split', 'Slider'));
    const range = h('input', { type: 'range', min: 0, max: 100, value: amount, name: 'amount', 'aria-label': 'Overlay amount' });
    range.addEventListener('input', () => { amount = Number(range.value); applyAmount(); });
    const stage = h('div', { class: 'compare-stage', 'data-field': 'compare-stage' });
    // "What changed?": the local model gets both pictures in one prompt; its answer is shown
    // labelled as machine-written and is not saved.
    const question = h('input', { name: 'question', placeholder: 'Anything in particular? (optional)', maxlength: 2000, 'aria-label': 'Question about the change' });
    const ask = h('button', { type: 'button', class: 'primary small', 'data-action': 'what-changed' }, 'What changed?');
    const answer = h('div', { class: 'compare-answer', 'data-field': 'compare-answer', 'aria-live': 'polite' });
    ask.addEventListener('click', () => {
        void busy(ask, 'Asking the model…', async () => {
            try {
                const c = await api.compareShots(before, after, question.value.trim() || undefined);
                replace(answer, h('p', { class: 'muted small' }, h('strong', null, c.label), ` · ${c.model} · ${(c.ms / 1000).toFixed(1)} s`), h('p', { class: 'compare-text' }, c.answer));
            }
            catch (e) {
                replace(answer, h('p', { class: 'error-line' }, errorMessage(e)));
            }
        });
    });
    void api.vlmStatus().then((m) => {
        if (!m.loaded && m.state !== 'remote') {
            ask.title = m.state === 'missing'
                ? 'No analysis model is installed: Settings → Model, or `opslens models pull`'
                : 'The analysis model loads when asked; the first answer may take a while';
        }
    }, () => undefined);
    const body = h('div', { class: 'compare' }, h('div', { class: 'compare-bar' }, h('label', null, 'Before ', picker('before', before, (id) => { before = id; })), h('label', null, 'After ', picker('after', after, (id) => { after = id; })), modes, range), stage, h('div', { class: 'compare-ask' }, question, ask), answer);
    const d = dialog('Compare screenshots', body, { wide: true });
    d.el.classList.add('compare-dlg');
    let top = null;
    function applyAmount() {
        if (!top)
            return;
        if (mode === 'fade') {
            top.style.opacity = String(amount / 100);
            top.style.clipPath = '';
        }
        else if (mode === 'split') {
            top.style.opacity = '1';
            top.style.clipPath = `inset(0 0 0 ${amount}%)`;
        }
    }
    async function draw() {
        for (const b of modes.querySelectorAll('button')) {
            b.setAttribute('aria-pressed', String(b.dataset.mode === mode));
        }
        range.hidden = mode === 'side';
        const [ua, ub] = await Promise.all([api.imageUrl(before), api.imageUrl(after)]);
        const label = (id, which) => {
            const e = ctx.evidence.find((x) => x.id === id);
            return h('figcaption', { class: 'muted small' }, `${which}: #${id} ${e?.title ?? ''} · ${e ? clock(e.occurred_at) : ''}`);
        };
        const ia = h('img', { src: ua, alt: `before (#${before})`, 'data-role': 'before', draggable: 'false' });
        const ib = h('img', { src: ub, alt: `after (#${after})`, 'data-role': 'after', draggable: 'false' });
        if (mode === 'side') {
            top = null;
            replace(stage, h('div', { class: 'compare-side' }, h('figure', null, ia, label(before, 'Before')), h('figure', null, ib, label(after, 'After'))));
            return;
        }
        // Overlay and slider: the after image over the before image, both scaled to the before's
        // box so the same pixel of a dashboard lines up.
        ib.classList.add('compare-top');
        top = ib;
        replace(stage, h('figure', { class: 'compare-overlay' }, h('div', { class: 'compare-layers' }, ia, ib), h('figcaption', { class: 'muted small' }, mode === 'fade' ? 'Slide to fade from before to after.' : 'Slide to move the split: before on the left, after on the right.')));
        applyAmount();
    }
    void draw();
}
