// Wire types of /api/v1: aliases of the types generated from the server's OpenAPI spec
// (src/api.gen.ts, made by build.mjs from ui/openapi.json), so a change on the Rust side that
// the UI does not follow fails the type check. Only what the spec cannot say lives here.
export const SEVERITIES = ['critical', 'high', 'medium', 'low'];
export const STATUSES = [
    'triggered', 'acknowledged', 'investigating', 'mitigated', 'resolved', 'closed',
];
export const TEXT_EVIDENCE = ['log', 'note', 'metric', 'deployment', 'alert'];
export const HYPOTHESIS_STATUSES = ['proposed', 'supported', 'refuted'];
export const ACTION_STATUSES = ['open', 'in_progress', 'done', 'cancelled'];
export const ROLES = ['commander', 'communications', 'scribe', 'participant'];
