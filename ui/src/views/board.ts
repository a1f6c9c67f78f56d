// The hypotheses board (proposed / supported / refuted, with linked evidence) and the action
// items of an incident.

import { api } from '../api.js';
import { busy, dialog, empty, kbd, toast } from '../components.js';
import { h, replace, select } from '../dom.js';
import { ACTION_LABEL, cap, clock } from '../format.js';
import {
  ACTION_STATUSES, HYPOTHESIS_STATUSES, type Action, type ActionStatus, type Evidence,
  type Hypothesis, type HypothesisStatus,
} from '../types.js';
import { errorMessage } from '../app.js';
import { localInputIso, zoneLabel } from '../when.js';
import type { Ctx } from './ctx.js';
import { openViewer } from './viewer.js';

const COLUMN_HINT: Record<HypothesisStatus, string> = {
  proposed: 'Ideas not yet tested.',
  supported: 'Evidence points this way.',
  refuted: 'Ruled out, and why.',
};

export function hypothesesSection(ctx: Ctx): { el: HTMLElement; render: () => void; focusAdd: () => void } {
  const statement = h('input', {
    name: 'statement', maxlength: 2000, autocomplete: 'off', 'aria-label': 'Hypothesis',
    placeholder: 'Propose a hypothesis, e.g. the 14:02 deploy exhausted the DB pool   ( h )',
  });
  const linkBox = h('details', { class: 'link-box' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Propose');
  const form = h('form', { class: 'form hyp-form' }, h('div', { class: 'inline-form' }, statement, submit), linkBox);
  const columns = h('div', { class: 'board' });
  const el = h('section', { class: 'panel hypotheses', 'aria-label': 'Hypotheses' },
    h('h2', { class: 'section-title' }, 'Hypotheses'), form, columns);
  let checked = new Set<number>();

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = statement.value.trim();
    if (!text) return statement.focus();
    void busy(submit, 'Adding…', async () => {
      try {
        await api.addHypothesis(ctx.id, text, [...checked]);
        statement.value = '';
        checked = new Set();
        linkBox.open = false;
        await ctx.refresh('hypotheses', 'timeline');
      } catch (err) {
        toast(errorMessage(err), 'error');
      }
    });
  });

  function renderLinkBox(): void {
    const open = linkBox.open;
    replace(linkBox,
      h('summary', null, `Link evidence (${checked.size} selected)`),
      ctx.evidence.length
        ? evidencePicker(ctx.evidence, checked, () => renderLinkBox())
        : h('p', { class: 'muted small' }, 'Add evidence first; it can be linked here.'));
    linkBox.open = open;
  }

  function move(hyp: Hypothesis, status: HypothesisStatus): void {
    void (async () => {
      try {
        await api.updateHypothesis(hyp.id, { status });
        toast(`Hypothesis ${status}`);
        await ctx.refresh('hypotheses', 'timeline');
      } catch (err) {
        toast(errorMessage(err), 'error');
      }
    })();
  }

  function relink(hyp: Hypothesis): void {
    const sel = new Set(hyp.evidence_ids);
    const box = h('div');
    const save = h('button', { type: 'button', class: 'primary' }, 'Save links');
    const draw = (): void => replace(box, evidencePicker(ctx.evidence, sel, draw));
    draw();
    const d = dialog('Link evidence', h('div', { class: 'form' }, h('p', null, hyp.statement), box, h('div', { class: 'form-actions' }, save)));
    save.addEventListener('click', () => void busy(save, 'Saving…', async () => {
      try {
        await api.updateHypothesis(hyp.id, { evidence_ids: [...sel] });
        d.close();
        await ctx.refresh('hypotheses');
      } catch (err) {
        toast(errorMessage(err), 'error');
      }
    }));
  }

  function card(hyp: Hypothesis): HTMLElement {
    const moves = HYPOTHESIS_STATUSES.filter((s) => s !== hyp.status).map((s) =>
      h('button', { type: 'button', class: `ghost small to-${s}`, onclick: () => move(hyp, s) },
        s === 'proposed' ? 'Reopen' : s === 'supported' ? 'Supported' : 'Refuted'));
    const chips = hyp.evidence_ids.map((id) => {
      const ev = ctx.evidence.find((e) => e.id === id);
      return h('button', {
        type: 'button', class: 'chip', title: ev ? ev.title : `evidence #${id}`,
        onclick: () => (ev?.image ? openViewer(ctx, id) : document.getElementById(`evidence-${id}`)?.scrollIntoView({ behavior: 'smooth' })),
      }, `#${id} ${ev ? ev.title.slice(0, 40) : ''}`);
    });
    return h('article', { class: `hyp hyp-${hyp.status}`, 'data-id': hyp.id },
      h('p', { class: 'hyp-text' }, hyp.statement),
      h('div', { class: 'chips' }, chips,
        h('button', { type: 'button', class: 'chip add', onclick: () => relink(hyp) }, chips.length ? 'Edit links' : '+ Link evidence')),
      h('div', { class: 'hyp-foot' },
        h('span', { class: 'muted small' }, `${hyp.origin} · ${clock(hyp.updated_at)}`),
        h('span', { class: 'grow' }), moves));
  }

  function render(): void {
    renderLinkBox();
    replace(columns, HYPOTHESIS_STATUSES.map((s) => {
      const items = ctx.hypotheses.filter((x) => x.status === s);
      return h('div', { class: `column col-${s}`, 'data-status': s },
        h('h3', null, cap(s), h('span', { class: 'count-pill' }, String(items.length))),
        items.length ? items.map(card) : h('p', { class: 'muted small col-empty' }, COLUMN_HINT[s]));
    }));
    if (!ctx.hypotheses.length) {
      columns.prepend(h('div', { class: 'board-empty' }, empty('No hypotheses yet.', [
        'Write one above (', kbd('h'), '), link the evidence behind it, then mark it supported or refuted.',
      ])));
    }
  }

  return { el, render, focusAdd: () => statement.focus() };
}

function evidencePicker(evidence: Evidence[], sel: Set<number>, changed: () => void): HTMLElement {
  return h('ul', { class: 'picker' }, evidence.map((e) => {
    const box = h('input', { type: 'checkbox', value: e.id, checked: sel.has(e.id) });
    box.addEventListener('change', () => {
      if (box.checked) sel.add(e.id);
      else sel.delete(e.id);
      changed();
    });
    return h('li', null, h('label', { class: 'check' }, box, `#${e.id} `, h('span', { class: 'tag' }, e.evidence_type), ` ${e.title}`));
  }));
}

export function actionsSection(ctx: Ctx): { el: HTMLElement; render: () => void; focusAdd: () => void } {
  const title = h('input', { name: 'action', maxlength: 500, autocomplete: 'off', placeholder: 'New action item   ( a )', 'aria-label': 'Action item' });
  const owner = h('input', { name: 'owner', autocomplete: 'off', placeholder: 'Owner', 'aria-label': 'Owner', class: 'short' });
  const due = h('input', { name: 'due', type: 'datetime-local', 'aria-label': 'Due', title: `Due (optional), ${zoneLabel()}` });
  const submit = h('button', { type: 'submit' }, 'Add');
  const form = h('form', { class: 'form action-form' }, h('div', { class: 'inline-form' }, title, submit), h('div', { class: 'inline-form' }, owner, due));
  const list = h('div');
  const el = h('section', { class: 'panel actions', 'aria-label': 'Action items' },
    h('h2', { class: 'section-title' }, 'Action items'), form, list);

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const t = title.value.trim();
    if (!t) return title.focus();
    void busy(submit, 'Adding…', async () => {
      try {
        await api.addAction(ctx.id, {
          title: t,
          owner: owner.value.trim() || undefined,
          due_at: localInputIso(due.value),
        });
        title.value = '';
        due.value = '';
        await ctx.refresh('actions', 'timeline');
      } catch (err) {
        toast(errorMessage(err), 'error');
      }
    });
  });

  function set(a: Action, status: ActionStatus): void {
    void (async () => {
      try {
        await api.updateAction(a.id, { status });
        await ctx.refresh('actions', 'timeline');
      } catch (err) {
        toast(errorMessage(err), 'error');
      }
    })();
  }

  function row(a: Action): HTMLElement {
    const done = h('input', { type: 'checkbox', checked: a.status === 'done', 'aria-label': `Done: ${a.title}` });
    done.addEventListener('change', () => set(a, done.checked ? 'done' : 'open'));
    const st = select<ActionStatus>(ACTION_STATUSES, a.status, { label: (s) => ACTION_LABEL[s], title: 'Action status' });
    st.addEventListener('change', () => set(a, st.value as ActionStatus));
    const overdue = a.due_at && a.status !== 'done' && a.status !== 'cancelled' && Date.parse(a.due_at) < Date.now();
    return h('li', { class: `action st-${a.status}`, 'data-id': a.id },
      done,
      h('div', { class: 'action-body' },
        h('span', { class: 'action-title' }, a.title),
        h('span', { class: overdue ? 'small warn' : 'muted small' },
          [a.owner ? `@${a.owner}` : 'no owner', a.due_at ? `${overdue ? 'overdue since' : 'due'} ${clock(a.due_at)}` : null].filter(Boolean).join(' · '))),
      st);
  }

  function render(): void {
    const items = ctx.actions;
    replace(list, items.length
      ? h('ul', { class: 'action-list' }, items.map(row))
      : empty('No action items.', 'Add mitigations and follow-ups above; tick them off when done.'));
  }

  return { el, render, focusAdd: () => title.focus() };
}
