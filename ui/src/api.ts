// The /api/v1 client: every call carries the token; errors come back as ApiError with the
// server's code and message, so the UI can show what to fix.

import type {
  Action, ActionStatus, IntegrationCheck, IntegrationsOverview, KeyStored, AnalysisJob, AnalysisProgress, Evidence, Hypothesis, HypothesisStatus, Incident, IncidentPage, IncidentQuery, IncidentRoles, IncidentStatus, Person, Postmortem, PostmortemSections, Role, StatusUpdate, PullProgress, MergeOutcome, RedactionBox, RedactionSuggestion, SimilarIncidents, SearchKind, SearchResults, ServerInfo, Severity, TeamSettingsSaved, TeamStatus, ScreenComparison, SummaryDraft, TextEvidenceType, TimelineEvent, VlmStatus,
} from './types.js';

const TOKEN_KEY = 'opslens.token';

/** An error answer of the API (or a network failure, with status 0). */
export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) {
    super(message);
  }
}

/** The token: sessionStorage for this tab, localStorage when the user asked to be remembered. */
export const session = {
  get(): string | null {
    return sessionStorage.getItem(TOKEN_KEY) ?? localStorage.getItem(TOKEN_KEY);
  },
  set(token: string, remember: boolean): void {
    sessionStorage.setItem(TOKEN_KEY, token);
    if (remember) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  },
  remembered(): boolean {
    return localStorage.getItem(TOKEN_KEY) !== null;
  },
  clear(): void {
    sessionStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(TOKEN_KEY);
    images.clear();
  },
};

/** Fired on any 401, so the app can ask for the token again. */
export const UNAUTHORIZED_EVENT = 'opslens:unauthorized';

async function send(method: string, path: string, body?: unknown, auth = true): Promise<Response> {
  const headers: Record<string, string> = {};
  const token = session.get();
  if (auth && token) headers['Authorization'] = `Bearer ${token}`;
  let payload: BodyInit | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(`/api/v1${path}`, { method, headers, body: payload, cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the OpsLens server: is it still running?');
  }
  if (!res.ok) {
    let code = 'error';
    let message = `${res.status} ${res.statusText}`;
    try {
      const j = (await res.json()) as { error?: { code?: string; message?: string } };
      code = j.error?.code ?? code;
      message = j.error?.message ?? message;
    } catch {
      // not JSON: keep the status line
    }
    if (res.status === 401 && auth) window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT));
    throw new ApiError(res.status, code, message);
  }
  return res;
}

async function json<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
  const res = await send(method, path, body, auth);
  return (await res.json()) as T;
}

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Object URLs of screenshot images, fetched once with the token (an <img src> cannot send it). */
const images = {
  urls: new Map<number, Promise<string>>(),
  get(id: number): Promise<string> {
    let p = this.urls.get(id);
    if (!p) {
      p = send('GET', `/evidence/${id}/image`).then(async (r) => URL.createObjectURL(await r.blob()));
      p.catch(() => this.urls.delete(id));
      this.urls.set(id, p);
    }
    return p;
  },
  clear(): void {
    for (const p of this.urls.values()) p.then((u) => URL.revokeObjectURL(u)).catch(() => {});
    this.urls.clear();
  },
};

export const api = {
  exchange: (code: string) =>
    json<{ token: string }>('POST', '/auth/exchange', { code }, false),
  health: () => json<{ status: string; version: string }>('GET', '/health', undefined, false),
  info: () => json<ServerInfo>('GET', '/info'),
  vlmStatus: () => json<VlmStatus>('GET', '/test/vlm/status'),
  team: () => json<TeamStatus>('GET', '/team'),
  saveTeam: (server_url: string, token: string) =>
    json<TeamSettingsSaved>('PUT', '/team', { server_url, token }),
  forgetTeam: () => send('DELETE', '/team').then(() => undefined),
  pullModel: (id: string) => json<PullProgress>('POST', `/models/${encodeURIComponent(id)}/pull`),
  cancelPull: (id: string) => json<PullProgress>('DELETE', `/models/${encodeURIComponent(id)}/pull`),
  integrations: () => json<IntegrationsOverview>('GET', '/integrations'),
  setKey: (name: string, value: string) =>
    json<KeyStored>('PUT', `/integrations/keys/${encodeURIComponent(name)}`, { value }),
  testIntegration: (name: string) =>
    json<IntegrationCheck>('POST', `/integrations/${encodeURIComponent(name)}/test`),
  analyze: (evidence: number, question?: string) =>
    json<AnalysisJob>('POST', `/evidence/${evidence}/analyze`, question ? { question } : {}),
  analysisJob: (id: number) => json<AnalysisJob>('GET', `/analysis/jobs/${id}`),

  incidents: (f: IncidentQuery) =>
    json<IncidentPage>('GET', `/incidents${query({
      status: f.status === 'open' ? undefined : f.status, open: f.status === 'open' ? 'true' : undefined,
      severity: f.severity, q: f.q?.trim(), limit: f.limit, offset: f.offset,
    })}`),
  incident: (id: number) => json<Incident>('GET', `/incidents/${id}`),
  setFocus: (id: number | null) => json<{ incident_id?: number | null }>('PUT', '/focus', { incident_id: id }),
  /** Leaving the page: the request must outlive it (keepalive), nobody reads the answer. */
  dropFocus: (): void => {
    const token = session.get();
    if (!token) return;
    void fetch('/api/v1/focus', {
      method: 'PUT', keepalive: true,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ incident_id: null }),
    }).catch(() => undefined);
  },
  createIncident: (b: { title: string; description?: string; severity: Severity }) =>
    json<Incident>('POST', '/incidents', b),
  updateIncident: (id: number, b: { severity?: Severity; status?: IncidentStatus; title?: string }) =>
    json<Incident>('PATCH', `/incidents/${id}`, b),
  similar: (id: number) => json<SimilarIncidents>('GET', `/incidents/${id}/similar`),
  merge: (id: number, into: number) => json<MergeOutcome>('POST', `/incidents/${id}/merge`, { into }),
  redact: (evidence: number, boxes: RedactionBox[]) =>
    json<Evidence>('POST', `/evidence/${evidence}/redactions`, { boxes }),
  redactionSuggestions: (evidence: number) =>
    json<RedactionSuggestion[]>('GET', `/evidence/${evidence}/redaction-suggestions`),
  /** The redacted copy (not cached: a redaction can be redone). */
  redactedImageUrl: (id: number) =>
    send('GET', `/evidence/${id}/image?variant=redacted`).then(async (r) => URL.createObjectURL(await r.blob())),
  deleteIncident: (id: number) => send('DELETE', `/incidents/${id}`).then(() => undefined),
  search: (q: string, f: { status?: IncidentStatus | ''; severity?: Severity | ''; kind?: SearchKind[] } = {}) =>
    json<SearchResults>('GET', `/search${query({
      q, limit: 50, status: f.status || undefined, severity: f.severity || undefined,
      kind: f.kind?.length ? f.kind.join(',') : undefined,
    })}`),

  evidenceOf: (incident: number) => json<Evidence[]>('GET', `/evidence/incident/${incident}`),
  evidence: (id: number) => json<Evidence>('GET', `/evidence/${id}`),
  addEvidence: (incident: number, b: { evidence_type: TextEvidenceType; title: string; content: string; source: string; occurred_at?: string }) =>
    json<Evidence>('POST', `/evidence/incident/${incident}`, b),
  upload: (incident: number, file: Blob, name: string) => {
    const form = new FormData();
    form.append('file', file, name);
    return json<Evidence>('POST', `/evidence/incident/${incident}/upload-screenshot`, form);
  },
  imageUrl: (id: number) => images.get(id),

  timeline: (incident: number) => json<TimelineEvent[]>('GET', `/incidents/${incident}/timeline`),
  addNote: (incident: number, message: string, occurred_at?: string) =>
    json<TimelineEvent>('POST', `/incidents/${incident}/timeline`, { message, occurred_at }),
  updateEvidence: (id: number, b: { title?: string; occurred_at?: string }) =>
    json<Evidence>('PATCH', `/evidence/${id}`, b),

  postUpdate: (incident: number, b: { text: string; impact?: string; status?: IncidentStatus; next_update_at?: string }) =>
    json<StatusUpdate>('POST', `/incidents/${incident}/updates`, b),
  postmortem: (incident: number) => json<Postmortem>('GET', `/incidents/${incident}/postmortem`),
  savePostmortem: (incident: number, version: number, sections: PostmortemSections) =>
    json<Postmortem>('PUT', `/incidents/${incident}/postmortem`, { version, sections }),
  draftSummary: (incident: number) => json<SummaryDraft>('POST', `/incidents/${incident}/postmortem/summary-draft`, {}),
  /** "What changed?" from screenshot `before` to `after`, asked of the local model. */
  compareShots: (before: number, after: number, question?: string) =>
    json<ScreenComparison>('POST', `/evidence/${before}/compare`, { with: after, ...(question ? { question } : {}) }),
  postmortemExport: (incident: number, format: 'html' | 'zip') =>
    send('GET', `/incidents/${incident}/postmortem/export?format=${format}`).then((r) => r.blob()),
  editTimeline: (id: number, b: { message?: string; occurred_at?: string; pinned?: boolean }) =>
    json<TimelineEvent>('PATCH', `/timeline/${id}`, b),
  deleteTimeline: (id: number) => send('DELETE', `/timeline/${id}`).then(() => undefined),
  me: () => json<Person>('GET', '/me'),
  setMe: (b: { name: string; handle?: string; email?: string }) => json<Person>('PUT', '/me', b),
  people: () => json<Person[]>('GET', '/people'),
  addPerson: (b: { name: string; handle?: string; email?: string }) => json<Person>('POST', '/people', b),
  roles: (incident: number) => json<IncidentRoles>('GET', `/incidents/${incident}/roles`),
  assignRole: (incident: number, role: Role, person: string) =>
    json<IncidentRoles>('PUT', `/incidents/${incident}/roles/${role}`, { person }),
  unassignRole: (incident: number, role: Role, person: number) =>
    json<IncidentRoles>('DELETE', `/incidents/${incident}/roles/${role}/${person}`),

  hypotheses: (incident: number) => json<Hypothesis[]>('GET', `/incidents/${incident}/hypotheses`),
  addHypothesis: (incident: number, statement: string, evidence_ids: number[]) =>
    json<Hypothesis>('POST', `/incidents/${incident}/hypotheses`, { statement, evidence_ids }),
  updateHypothesis: (id: number, b: { status?: HypothesisStatus; evidence_ids?: number[] }) =>
    json<Hypothesis>('PATCH', `/hypotheses/${id}`, b),

  actions: (incident: number) => json<Action[]>('GET', `/incidents/${incident}/actions`),
  addAction: (incident: number, b: { title: string; owner?: string; due_at?: string }) =>
    json<Action>('POST', `/incidents/${incident}/actions`, b),
  updateAction: (id: number, b: { status?: ActionStatus }) =>
    json<Action>('PATCH', `/actions/${id}`, b),
};

/**
 * Follows the text of a screenshot's running analysis (`GET /evidence/{id}/analysis/stream`),
 * calling `on` with each event (the whole text so far) until the last one (`done`, `failed`
 * or `idle`) or `signal` aborts. Read with fetch() so the token stays in a header.
 */
export async function followAnalysis(id: number, on: (p: AnalysisProgress) => void, signal: AbortSignal): Promise<void> {
  const token = session.get();
  const headers: Record<string, string> = { Accept: 'text/event-stream' };
  if (token) headers['Authorization'] = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(`/api/v1/evidence/${id}/analysis/stream`, { headers, cache: 'no-store', signal });
  } catch {
    return;
  }
  if (!res.ok || !res.body) return;
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(l.startsWith('data: ') ? 6 : 5)).join('\n');
        if (!data) continue;
        try {
          on(JSON.parse(data) as AnalysisProgress);
        } catch {
          // not an event of ours
        }
      }
    }
  } catch {
    // aborted, or the connection dropped: the evidence refresh shows the result
  }
}
