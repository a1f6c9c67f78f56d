// Wire types of /api/v1, mirroring crates/domain (the spelling of every enum comes from there).
export const SEVERITIES = ['critical', 'high', 'medium', 'low'];
export const STATUSES = [
    'triggered', 'acknowledged', 'investigating', 'mitigated', 'resolved', 'closed',
];
export const TEXT_EVIDENCE = ['log', 'note', 'metric', 'deployment', 'alert'];
export const HYPOTHESIS_STATUSES = ['proposed', 'supported', 'refuted'];
export const ACTION_STATUSES = ['open', 'in_progress', 'done', 'cancelled'];
export const ROLES = ['commander', 'communications', 'scribe', 'participant'];
