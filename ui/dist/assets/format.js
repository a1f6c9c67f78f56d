// How times, durations, sizes and enum values read on screen.
import { clockAt } from './when.js';
/** "4m", "2h 05m", "3d 4h". */
export function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60)
        return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60)
        return `${m}m`;
    const hr = Math.floor(m / 60);
    if (hr < 24)
        return `${hr}h ${String(m % 60).padStart(2, '0')}m`;
    return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}
/** "5m ago". */
export function ago(iso, now = Date.now()) {
    return `${duration(now - Date.parse(iso))} ago`;
}
/** Clock time in the display zone (UTC or local, see when.ts), with the date when not today. */
export function clock(iso) {
    return clockAt(iso);
}
/** A size the way people write it: "512 B", "1.5 MiB", "27.7 GiB". */
export function bytes(n) {
    if (n < 1024)
        return `${n} B`;
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
        v /= 1024;
        i++;
    }
    return `${v.toFixed(1)} ${units[i]}`;
}
export const ANALYSIS_LABEL = {
    'waiting-for-model': 'waiting for model',
    queued: 'queued',
    running: 'analysing…',
    done: 'analysed',
    failed: 'analysis failed',
};
export const STATUS_LABEL = {
    triggered: 'Triggered',
    acknowledged: 'Acknowledged',
    investigating: 'Investigating',
    mitigated: 'Mitigated',
    resolved: 'Resolved',
    closed: 'Closed',
};
export const ACTION_LABEL = {
    open: 'Open',
    in_progress: 'In progress',
    done: 'Done',
    cancelled: 'Cancelled',
};
export function cap(s) {
    return s.charAt(0).toUpperCase() + s.slice(1);
}
