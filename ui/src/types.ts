// Wire types of /api/v1: aliases of the types generated from the server's OpenAPI spec
// (src/api.gen.ts, made by build.mjs from ui/openapi.json), so a change on the Rust side that
// the UI does not follow fails the type check. Only what the spec cannot say lives here.

import type { components } from './api.gen.js';

type Schemas = components['schemas'];

export type Severity = Schemas['Severity'];
export type IncidentStatus = Schemas['IncidentStatus'];
export type EvidenceType = Schemas['EvidenceType'];
export type AnalysisState = Schemas['AnalysisState'];
export type HypothesisStatus = Schemas['HypothesisStatus'];
export type ActionStatus = Schemas['ActionStatus'];
/** How an `occurred_at` was arrived at. */
export type OccurredAtSource = Schemas['OccurredAtSource'];

export const SEVERITIES: Severity[] = ['critical', 'high', 'medium', 'low'];
export const STATUSES: IncidentStatus[] = [
  'triggered', 'acknowledged', 'investigating', 'mitigated', 'resolved', 'closed',
];
/** The evidence types that are posted as text (screenshots are uploaded as files). */
export type TextEvidenceType = Schemas['NewEvidence']['evidence_type'];
export const TEXT_EVIDENCE: TextEvidenceType[] = ['log', 'note', 'metric', 'deployment', 'alert'];
export const HYPOTHESIS_STATUSES: HypothesisStatus[] = ['proposed', 'supported', 'refuted'];
export const ACTION_STATUSES: ActionStatus[] = ['open', 'in_progress', 'done', 'cancelled'];

export type Incident = Schemas['Incident'];
/** A page of incidents (`GET /incidents`). */
export type IncidentPage = Schemas['Page_Incident'];
export type ImageInfo = Schemas['ImageInfo'];
export type Evidence = Schemas['Evidence'];
export type TimelineEvent = Schemas['TimelineEvent'];
export type Hypothesis = Schemas['Hypothesis'];
export type Action = Schemas['Action'];
export type SearchHit = Schemas['SearchHit'];
export type SearchResults = Schemas['SearchResults'];
export type SearchGroup = Schemas['SearchGroup'];
export type SearchKind = Schemas['SearchKind'];
export type PullProgress = Schemas['PullProgress'];
export type AnalysisJob = Schemas['AnalysisJob'];
export type VlmStatus = Schemas['VlmStatus'];
/** What getting a model takes here: bytes left, free disk, whether it fits. */
export type DownloadPlan = Schemas['DownloadPlan'];
/** The measured cost of an analysis on this machine. */
export type Calibration = Schemas['Calibration'];
export type IntegrationsOverview = Schemas['IntegrationsOverview'];
export type IntegrationInfo = Schemas['IntegrationInfo'];
export type IntegrationCheck = Schemas['IntegrationCheck'];
export type KeyStored = Schemas['KeyStored'];
/** One event of `GET /evidence/{id}/analysis/stream`: the text so far of a running analysis. */
export type AnalysisProgress = Schemas['AnalysisProgress'];
export type SummaryDraft = Schemas['SummaryDraft'];
/** The local model's answer to "what changed?" between two screenshots. */
export type ScreenComparison = Schemas['ScreenComparison'];
export type ServerInfo = Schemas['Info'];
/** Where this app's link to a team server stands (`GET /team`). */
export type TeamStatus = Schemas['TeamStatus'];
export type TeamSettingsSaved = Schemas['TeamSettingsSaved'];
/** What a change event of `GET /api/v1/events` is about. */
export type FeedKind = Schemas['FeedKind'];
/** One event of the change feed: `{kind}.{op}`, `ready` or `resync` (refetch everything shown). */
export type FeedEvent = Schemas['FeedEvent'];
export type StatusUpdate = Schemas['StatusUpdate'];
export type PostmortemSections = Schemas['PostmortemSections'];
export type Postmortem = Schemas['Postmortem'];
export type Role = Schemas['Role'];
export const ROLES: Role[] = ['commander', 'communications', 'scribe', 'participant'];
export type Person = Schemas['Person'];
export type IncidentRoles = Schemas['IncidentRoles'];
export type SimilarIncidents = Schemas['SimilarIncidents'];
export type SimilarHit = Schemas['SimilarHit'];
export type MergeOutcome = Schemas['MergeOutcome'];
export type RedactionBox = Schemas['RedactionBox'];
export type RedactionSuggestion = Schemas['RedactionSuggestion'];

export interface IncidentQuery {
  /** `open`: every status but resolved and closed. */
  status?: IncidentStatus | '' | 'open';
  severity?: Severity | '';
  q?: string;
  limit?: number;
  offset?: number;
}
