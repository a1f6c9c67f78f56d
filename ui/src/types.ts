// Wire types of /api/v1, mirroring crates/domain (the spelling of every enum comes from there).

export type Severity = 'critical' | 'high' | 'medium' | 'low';
export type IncidentStatus =
  | 'triggered' | 'acknowledged' | 'investigating' | 'mitigated' | 'resolved' | 'closed';
export type EvidenceType = 'log' | 'metric' | 'screenshot' | 'deployment' | 'alert' | 'note';
export type AnalysisState = 'waiting-for-model' | 'queued' | 'running' | 'done' | 'failed';
export type HypothesisStatus = 'proposed' | 'supported' | 'refuted';
export type ActionStatus = 'open' | 'in_progress' | 'done' | 'cancelled';
/** How an `occurred_at` was arrived at. */
export type OccurredAtSource = 'recorded' | 'user' | 'derived';

export const SEVERITIES: Severity[] = ['critical', 'high', 'medium', 'low'];
export const STATUSES: IncidentStatus[] = [
  'triggered', 'acknowledged', 'investigating', 'mitigated', 'resolved', 'closed',
];
export const TEXT_EVIDENCE: EvidenceType[] = ['log', 'note', 'metric', 'deployment', 'alert'];
export const HYPOTHESIS_STATUSES: HypothesisStatus[] = ['proposed', 'supported', 'refuted'];
export const ACTION_STATUSES: ActionStatus[] = ['open', 'in_progress', 'done', 'cancelled'];

export interface Incident {
  id: number;
  title: string;
  description: string;
  severity: Severity;
  status: IncidentStatus;
  source: string;
  external_id: string | null;
  created_at: string;
  updated_at: string;
  acknowledged_at: string | null;
  mitigated_at: string | null;
  resolved_at: string | null;
  tta_seconds: number | null;
  ttm_seconds: number | null;
  ttr_seconds: number | null;
  next_update_at: string | null;
  evidence_count: number;
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface ImageInfo {
  mime: string;
  width: number;
  height: number;
  bytes: number;
  original_name: string | null;
}

export interface Evidence {
  id: number;
  incident_id: number;
  evidence_type: EvidenceType;
  title: string;
  content: string;
  source: string;
  sha256: string;
  image: ImageInfo | null;
  analysis_state: AnalysisState | null;
  analysis_model: string | null;
  analysis_error: string | null;
  analysis_ms: number | null;
  findings: unknown;
  occurred_at: string;
  occurred_at_source: OccurredAtSource;
  assumed_zone?: string;
  author: string | null;
  created_at: string;
  updated_at: string;
}

export interface StatusUpdate {
  id: number;
  incident_id: number;
  status: IncidentStatus;
  impact: string;
  text: string;
  next_update_at: string | null;
  author: string | null;
  created_at: string;
}

export interface PostmortemSections {
  summary: string;
  impact: string;
  root_cause: string;
  contributing_factors: string;
  went_well: string;
  went_badly: string;
  timeline: { at: string; text: string }[];
  follow_ups: string[];
}

export interface Postmortem {
  incident_id: number;
  version: number;
  draft: boolean;
  sections: PostmortemSections;
  author: string | null;
  updated_at: string | null;
}

export type Role = 'commander' | 'communications' | 'scribe' | 'participant';
export const ROLES: Role[] = ['commander', 'communications', 'scribe', 'participant'];

export interface Person {
  id: number;
  name: string;
  handle: string | null;
  email: string | null;
  local_user: boolean;
}

export interface IncidentRoles {
  commander: Person | null;
  communications: Person | null;
  scribe: Person | null;
  participants: Person[];
}

export interface TimelineEvent {
  id: number;
  incident_id: number;
  kind: string;
  message: string;
  occurred_at: string;
  occurred_at_source: OccurredAtSource;
  assumed_zone?: string;
  created_at: string;
  evidence_id: number | null;
  pinned: boolean;
  /** A person's name, or the integration that wrote it. */
  author: string | null;
}

export interface Hypothesis {
  id: number;
  incident_id: number;
  statement: string;
  status: HypothesisStatus;
  origin: 'human' | 'model' | 'correlation';
  evidence_ids: number[];
  author: string | null;
  created_at: string;
  updated_at: string;
}

export interface Action {
  id: number;
  incident_id: number;
  title: string;
  owner: string | null;
  status: ActionStatus;
  due_at: string | null;
  author: string | null;
  created_at: string;
  updated_at: string;
}

export interface SearchHit {
  kind: 'incident' | 'evidence';
  id: number;
  incident_id: number;
  title: string;
  snippet: string;
}

export interface PullProgress {
  state: 'downloading' | 'done' | 'failed';
  file: string | null;
  done_bytes: number;
  total_bytes: number;
  error: string | null;
}

export interface AnalysisJob {
  id: number;
  evidence_id: number;
  question: string | null;
  state: AnalysisState;
  attempts: number;
  answer: string | null;
  error: string | null;
}

export interface VlmStatus {
  model: string;
  repo: string;
  revision: string;
  reason: string | null;
  model_dir: string | null;
  pull: PullProgress | null;
  state: string;
  loaded: boolean;
  device: string;
  queue_length: number;
  queue: Record<string, number>;
  last_analysis: unknown;
  message: string;
}

export interface ServerInfo {
  version: string;
  data_dir: string;
  port: number;
  hotkey: string;
  /** Opens the desktop app's region selection overlay. */
  region_hotkey: string;
  desktop: boolean;
}

export interface IncidentQuery {
  /** `open`: every status but resolved and closed. */
  status?: IncidentStatus | '' | 'open';
  severity?: Severity | '';
  q?: string;
  limit?: number;
  offset?: number;
}

/** What a change event of `GET /api/v1/events` is about. */
export type FeedKind = 'incident' | 'evidence' | 'timeline' | 'hypothesis' | 'action';

/** One event of the change feed: `{kind}.{op}`, or `resync` (refetch everything shown). */
export interface FeedEvent {
  seq: number;
  type: string;
  kind?: FeedKind;
  incident_id?: number;
  id?: number;
}
