// The /api/v1 client: every call carries the token; errors come back as ApiError with the
// server's code and message, so the UI can show what to fix.
const TOKEN_KEY = 'opslens.token';
/** An error answer of the API (or a network failure, with status 0). */
export class ApiError extends Error {
    status;
    code;
    constructor(status, code, message) {
        super(message);
        this.status = status;
        this.code = code;
    }
}
/** The token: sessionStorage for this tab, localStorage when the user asked to be remembered. */
export const session = {
    get() {
        return sessionStorage.getItem(TOKEN_KEY) ?? localStorage.getItem(TOKEN_KEY);
    },
    set(token, remember) {
        sessionStorage.setItem(TOKEN_KEY, token);
        if (remember)
            localStorage.setItem(TOKEN_KEY, token);
        else
            localStorage.removeItem(TOKEN_KEY);
    },
    remembered() {
        return localStorage.getItem(TOKEN_KEY) !== null;
    },
    clear() {
        sessionStorage.removeItem(TOKEN_KEY);
        localStorage.removeItem(TOKEN_KEY);
        images.clear();
    },
};
/** Fired on any 401, so the app can ask for the token again. */
export const UNAUTHORIZED_EVENT = 'opslens:unauthorized';
async function send(method, path, body, auth = true) {
    const headers = {};
    const token = session.get();
    if (auth && token)
        headers['Authorization'] = `Bearer ${token}`;
    let payload;
    if (body instanceof FormData)
        payload = body;
    else if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        payload = JSON.stringify(body);
    }
    let res;
    try {
        res = await fetch(`/api/v1${path}`, { method, headers, body: payload, cache: 'no-store' });
    }
    catch {
        throw new ApiError(0, 'network', 'Cannot reach the OpsLens server: is it still running?');
    }
    if (!res.ok) {
        let code = 'error';
        let message = `${res.status} ${res.statusText}`;
        try {
            const j = (await res.json());
            code = j.error?.code ?? code;
            message = j.error?.message ?? message;
        }
        catch {
            // not JSON: keep the status line
        }
        if (res.status === 401 && auth)
            window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT));
        throw new ApiError(res.status, code, message);
    }
    return res;
}
async function json(method, path, body, auth = true) {
    const res = await send(method, path, body, auth);
    return (await res.json());
}
function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
        if (v !== undefined && v !== '')
            q.set(k, String(v));
    }
    const s = q.toString();
    return s ? `?${s}` : '';
}
/** Object URLs of screenshot images, fetched once with the token (an <img src> cannot send it). */
const images = {
    urls: new Map(),
    get(id) {
        let p = this.urls.get(id);
        if (!p) {
            p = send('GET', `/evidence/${id}/image`).then(async (r) => URL.createObjectURL(await r.blob()));
            p.catch(() => this.urls.delete(id));
            this.urls.set(id, p);
        }
        return p;
    },
    clear() {
        for (const p of this.urls.values())
            p.then((u) => URL.revokeObjectURL(u)).catch(() => { });
        this.urls.clear();
    },
};
export const api = {
    exchange: (code) => json('POST', '/auth/exchange', { code }, false),
    health: () => json('GET', '/health', undefined, false),
    info: () => json('GET', '/info'),
    vlmStatus: () => json('GET', '/test/vlm/status'),
    team: () => json('GET', '/team'),
    saveTeam: (server_url, token) => json('PUT', '/team', { server_url, token }),
    forgetTeam: () => send('DELETE', '/team').then(() => undefined),
    pullModel: (id) => json('POST', `/models/${encodeURIComponent(id)}/pull`),
    cancelPull: (id) => json('DELETE', `/models/${encodeURIComponent(id)}/pull`),
    integrations: () => json('GET', '/integrations'),
    setKey: (name, value) => json('PUT', `/integrations/keys/${encodeURIComponent(name)}`, { value }),
    testIntegration: (name) => json('POST', `/integrations/${encodeURIComponent(name)}/test`),
    analyze: (evidence, question) => json('POST', `/evidence/${evidence}/analyze`, question ? { question } : {}),
    analysisJob: (id) => json('GET', `/analysis/jobs/${id}`),
    incidents: (f) => json('GET', `/incidents${query({
        status: f.status === 'open' ? undefined : f.status, open: f.status === 'open' ? 'true' : undefined,
        severity: f.severity, q: f.q?.trim(), limit: f.limit, offset: f.offset,
    })}`),
    incident: (id) => json('GET', `/incidents/${id}`),
    setFocus: (id) => json('PUT', '/focus', { incident_id: id }),
    /** Leaving the page: the request must outlive it (keepalive), nobody reads the answer. */
    dropFocus: () => {
        const token = session.get();
        if (!token)
            return;
        void fetch('/api/v1/focus', {
            method: 'PUT', keepalive: true,
            headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
            body: JSON.stringify({ incident_id: null }),
        }).catch(() => undefined);
    },
    createIncident: (b) => json('POST', '/incidents', b),
    updateIncident: (id, b) => json('PATCH', `/incidents/${id}`, b),
    similar: (id) => json('GET', `/incidents/${id}/similar`),
    merge: (id, into) => json('POST', `/incidents/${id}/merge`, { into }),
    redact: (evidence, boxes) => json('POST', `/evidence/${evidence}/redactions`, { boxes }),
    redactionSuggestions: (evidence) => json('GET', `/evidence/${evidence}/redaction-suggestions`),
    /** The redacted copy (not cached: a redaction can be redone). */
    redactedImageUrl: (id) => send('GET', `/evidence/${id}/image?variant=redacted`).then(async (r) => URL.createObjectURL(await r.blob())),
    deleteIncident: (id) => send('DELETE', `/incidents/${id}`).then(() => undefined),
    search: (q, f = {}) => json('GET', `/search${query({
        q, limit: 50, status: f.status || undefined, severity: f.severity || undefined,
        kind: f.kind?.length ? f.kind.join(',') : undefined,
    })}`),
    evidenceOf: (incident) => json('GET', `/evidence/incident/${incident}`),
    evidence: (id) => json('GET', `/evidence/${id}`),
    addEvidence: (incident, b) => json('POST', `/evidence/incident/${incident}`, b),
    upload: (incident, file, name) => {
        const form = new FormData();
        form.append('file', file, name);
        return json('POST', `/evidence/incident/${incident}/upload-screenshot`, form);
    },
    imageUrl: (id) => images.get(id),
    timeline: (incident) => json('GET', `/incidents/${incident}/timeline`),
    addNote: (incident, message, occurred_at) => json('POST', `/incidents/${incident}/timeline`, { message, occurred_at }),
    updateEvidence: (id, b) => json('PATCH', `/evidence/${id}`, b),
    postUpdate: (incident, b) => json('POST', `/incidents/${incident}/updates`, b),
    postmortem: (incident) => json('GET', `/incidents/${incident}/postmortem`),
    savePostmortem: (incident, version, sections) => json('PUT', `/incidents/${incident}/postmortem`, { version, sections }),
    draftSummary: (incident) => json('POST', `/incidents/${incident}/postmortem/summary-draft`, {}),
    /** "What changed?" from screenshot `before` to `after`, asked of the local model. */
    compareShots: (before, after, question) => json('POST', `/evidence/${before}/compare`, { with: after, ...(question ? { question } : {}) }),
    postmortemExport: (incident, format) => send('GET', `/incidents/${incident}/postmortem/export?format=${format}`).then((r) => r.blob()),
    editTimeline: (id, b) => json('PATCH', `/timeline/${id}`, b),
    deleteTimeline: (id) => send('DELETE', `/timeline/${id}`).then(() => undefined),
    me: () => json('GET', '/me'),
    setMe: (b) => json('PUT', '/me', b),
    people: () => json('GET', '/people'),
    addPerson: (b) => json('POST', '/people', b),
    roles: (incident) => json('GET', `/incidents/${incident}/roles`),
    assignRole: (incident, role, person) => json('PUT', `/incidents/${incident}/roles/${role}`, { person }),
    unassignRole: (incident, role, person) => json('DELETE', `/incidents/${incident}/roles/${role}/${person}`),
    hypotheses: (incident) => json('GET', `/incidents/${incident}/hypotheses`),
    addHypothesis: (incident, statement, evidence_ids) => json('POST', `/incidents/${incident}/hypotheses`, { statement, evidence_ids }),
    updateHypothesis: (id, b) => json('PATCH', `/hypotheses/${id}`, b),
    actions: (incident) => json('GET', `/incidents/${incident}/actions`),
    addAction: (incident, b) => json('POST', `/incidents/${incident}/actions`, b),
    updateAction: (id, b) => json('PATCH', `/actions/${id}`, b),
};
/**
 * Follows the text of a screenshot's running analysis (`GET /evidence/{id}/analysis/stream`),
 * calling `on` with each event (the whole text so far) until the last one (`done`, `failed`
 * or `idle`) or `signal` aborts. Read with fetch() so the token stays in a header.
 */
export async function followAnalysis(id, on, signal) {
    const token = session.get();
    const headers = { Accept: 'text/event-stream' };
    if (token)
        headers['Authorization'] = `Bearer ${token}`;
    let res;
    try {
        res = await fetch(`/api/v1/evidence/${id}/analysis/stream`, { headers, cache: 'no-store', signal });
    }
    catch {
        return;
    }
    if (!res.ok || !res.body)
        return;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    try {
        for (;;) {
            const { value, done } = await reader.read();
            if (done)
                return;
            buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
            let end;
            while ((end = buf.indexOf('\n\n')) >= 0) {
                const block = buf.slice(0, end);
                buf = buf.slice(end + 2);
                const data = block.split('\n').filter((l) => l.startsWith('data:'))
                    .map((l) => l.slice(l.startsWith('data: ') ? 6 : 5)).join('\n');
                if (!data)
                    continue;
                try {
                    on(JSON.parse(data));
                }
                catch {
                    // not an event of ours
                }
            }
        }
    }
    catch {
        // aborted, or the connection dropped: the evidence refresh shows the result
    }
}
