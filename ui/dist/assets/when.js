// Times on screen and times people type, in one display zone: UTC (the default: logs and
// dashboards speak UTC) or this browser's local zone, chosen once in Settings and remembered.
const ZONE_KEY = 'opslens.zone';
const DAY_MS = 86_400_000;
/** The display zone (remembered in localStorage; UTC until chosen). */
export function displayZone() {
    try {
        return localStorage.getItem(ZONE_KEY) === 'local' ? 'local' : 'utc';
    }
    catch {
        return 'utc';
    }
}
export function setDisplayZone(z) {
    try {
        localStorage.setItem(ZONE_KEY, z);
    }
    catch {
        // Storage refused (private mode): the choice lasts for this page only.
    }
    zoneOverride = z;
}
let zoneOverride = null;
function zone() {
    return zoneOverride ?? displayZone();
}
/** Offset of the display zone at `d`, in minutes east of UTC. */
function offsetAt(d, z = zone()) {
    return z === 'utc' ? 0 : -d.getTimezoneOffset();
}
/** "+01:00", or "Z" for UTC. */
function offsetText(min) {
    if (min === 0)
        return 'Z';
    const a = Math.abs(min);
    return `${min < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}
/** Short name of the display zone for labels: "UTC" or "UTC+01:00". */
export function zoneLabel(d = new Date()) {
    const o = offsetAt(d);
    return o === 0 ? 'UTC' : `UTC${offsetText(o)}`;
}
/** The wall-clock fields of `d` in the display zone (read from a shifted UTC date). */
function wall(d) {
    return new Date(d.getTime() + offsetAt(d) * 60_000);
}
const p2 = (n) => String(n).padStart(2, '0');
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** Full ISO-8601 with the display zone's offset: the hover text of every time. */
export function isoFull(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime()))
        return iso;
    const w = wall(d);
    return `${w.getUTCFullYear()}-${p2(w.getUTCMonth() + 1)}-${p2(w.getUTCDate())}T${p2(w.getUTCHours())}:${p2(w.getUTCMinutes())}:${p2(w.getUTCSeconds())}${offsetText(offsetAt(d))}`;
}
/** "07:13:42 UTC" today, "Nov 29 07:13:42 UTC" another day (in the display zone). */
export function clockAt(iso, now = new Date()) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime()))
        return iso;
    const w = wall(d);
    const today = wall(now);
    const time = `${p2(w.getUTCHours())}:${p2(w.getUTCMinutes())}:${p2(w.getUTCSeconds())}`;
    const sameDay = w.getUTCFullYear() === today.getUTCFullYear() && w.getUTCMonth() === today.getUTCMonth()
        && w.getUTCDate() === today.getUTCDate();
    const date = sameDay ? '' : `${MONTHS[w.getUTCMonth()]} ${w.getUTCDate()}${w.getUTCFullYear() === today.getUTCFullYear() ? '' : ` ${w.getUTCFullYear()}`} `;
    return `${date}${time} ${zoneLabel(d)}`;
}
const TIME = /^(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?$/;
const ZONE = /^(?:Z|UTC|GMT|([+-])(\d{2}):?(\d{2})?)$/i;
/**
 * Reads `07:13`, `07:13:42Z`, `08:13+01:00`, `2026-11-30 07:13` or ISO-8601 with offset. A time
 * without date is the latest such time not in the future; without zone it is in the display
 * zone. More than a day ahead is refused, as the server does.
 */
export function parseTyped(input, now = new Date()) {
    const s = input.trim();
    const bad = { error: `Cannot read "${s}" as a time: use 07:13, 07:13:42Z or 2026-11-30T07:13:42+01:00` };
    const m = /^(?:(\d{4})-(\d{2})-(\d{2})[T ])?(\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)\s*(.*)$/i.exec(s);
    if (!m)
        return bad;
    const t = TIME.exec(m[4]);
    if (!t)
        return bad;
    const [hh, mm, ss] = [Number(t[1]), Number(t[2]), Number(t[3] ?? 0)];
    const ms = t[4] ? Number(`0.${t[4]}`) * 1000 : 0;
    if (hh > 23 || mm > 59 || ss > 59)
        return bad;
    let offset = null;
    if (m[5]) {
        const z = ZONE.exec(m[5]);
        if (!z)
            return bad;
        offset = z[1] ? (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3] ?? 0)) : 0;
    }
    // Wall-clock fields → instant, in the given offset or the display zone's offset that day.
    const toInstant = (y, mo, d) => {
        const asUtc = Date.UTC(y, mo, d, hh, mm, ss, ms);
        if (offset !== null)
            return asUtc - offset * 60_000;
        const guess = asUtc - offsetAt(new Date(asUtc)) * 60_000;
        return asUtc - offsetAt(new Date(guess)) * 60_000;
    };
    let at;
    if (m[1]) {
        const [y, mo, d] = [Number(m[1]), Number(m[2]) - 1, Number(m[3])];
        if (mo > 11 || d < 1 || d > 31)
            return bad;
        at = toInstant(y, mo, d);
    }
    else {
        const w = offset !== null ? new Date(now.getTime() + offset * 60_000) : wall(now);
        at = toInstant(w.getUTCFullYear(), w.getUTCMonth(), w.getUTCDate());
        if (at > now.getTime())
            at -= DAY_MS;
    }
    if (at > now.getTime() + DAY_MS)
        return { error: `"${s}" is more than a day in the future` };
    return { iso: new Date(at).toISOString(), assumed: offset === null ? zoneLabel(new Date(at)) : null };
}
/** A small time field beside a form: empty means now. */
export function timeField(name) {
    const el = document.createElement('input');
    el.name = name;
    el.className = 'time-field';
    el.autocomplete = 'off';
    el.placeholder = 'now';
    el.title = `When it happened: 07:13 (${zoneLabel()}), 07:13:42Z, 2026-11-30T08:13:42+01:00; empty: now`;
    el.setAttribute('aria-label', 'When it happened');
    el.size = 9;
    return el;
}
/** A `datetime-local` value (no zone) read in the display zone, as ISO-8601 UTC; `undefined`
 * when empty. The browser would read it in its own zone, unlike every time on screen. */
export function localInputIso(value, zone = displayZone()) {
    if (!value)
        return undefined;
    const t = Date.parse(zone === 'utc' ? `${value}Z` : value);
    return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}
/** Reads a time field: `undefined` when empty (now), else the reading or its error. */
export function readField(el, now = new Date()) {
    return el.value.trim() ? parseTyped(el.value, now) : undefined;
}
/** `<time>` showing the clock time, the full ISO time with offset on hover; `≈` marks a time
 * read from the content rather than given or recorded. */
export function timeEl(iso, source) {
    const el = document.createElement('time');
    el.dateTime = iso;
    el.title = source === 'derived' ? `${isoFull(iso)} (read from the content)` : isoFull(iso);
    el.textContent = `${source === 'derived' ? '≈ ' : ''}${clockAt(iso)}`;
    if (source)
        el.dataset['source'] = source;
    return el;
}
