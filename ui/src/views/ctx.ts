// What the incident page's sections share: the incident's data as last read, and how to read
// parts of it again. Its own module so the sections (board, evidence, viewer) and the page
// that composes them import it without importing each other.
import type { Action, Evidence, Hypothesis, Incident, IncidentRoles, Person, TimelineEvent } from '../types.js';

/** A part of the incident page that can be re-read on its own. */
export type Part = 'incident' | 'evidence' | 'timeline' | 'hypotheses' | 'actions';

/** Everything known about the incident on screen, shared by its sections. */
export interface Ctx {
  id: number;
  incident: Incident | null;
  roles: IncidentRoles | null;
  people: Person[];
  evidence: Evidence[];
  timeline: TimelineEvent[];
  hypotheses: Hypothesis[];
  actions: Action[];
  /** Re-reads parts from the server and re-renders what depends on them. */
  refresh: (...parts: Part[]) => Promise<void>;
  /** Called after every refresh (the open viewer follows its evidence this way). */
  listeners: Set<() => void>;
}
