// The change feed (`GET /api/v1/events`, server-sent events): one stream per tab, read with
// fetch() so the token stays in the Authorization header (EventSource cannot send one).
// Views subscribe and refetch what an event names. When the stream drops it reconnects with
// backoff, quietly; after a reconnect subscribers get a `resync` (changes made while it was
// down were not seen), as they do when the server says they fell behind.
import { session, UNAUTHORIZED_EVENT } from './api.js';
const listeners = new Set();
/** No byte (not even the 15 s keep-alive comment) for this long: the stream is dead. */
const SILENCE_MS = 45_000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15_000;
let abort = null;
let retry;
let backoff = BACKOFF_MIN_MS;
let connected = false;
let everConnected = false;
let idle;
/** Whether the stream is up (views poll slowly then, and fall back to faster polls if not). */
export function liveConnected() {
    return connected;
}
/** Calls `fn` with every change event (and `resync`); returns the unsubscribe function. */
export function subscribe(fn) {
    listeners.add(fn);
    window.clearTimeout(idle);
    if (!abort && retry === undefined)
        connect();
    return () => {
        listeners.delete(fn);
        // Views come and go on navigation: keep the stream for the next one a moment.
        if (!listeners.size) {
            window.clearTimeout(idle);
            idle = window.setTimeout(stop, 5000);
        }
    };
}
function emit(ev) {
    for (const l of [...listeners]) {
        try {
            l(ev);
        }
        catch (e) {
            console.error('live listener failed', e);
        }
    }
}
function stop() {
    window.clearTimeout(retry);
    retry = undefined;
    abort?.abort();
    abort = null;
    connected = false;
    everConnected = false;
}
function later() {
    connected = false;
    abort = null;
    if (!listeners.size)
        return;
    const wait = backoff * (0.75 + Math.random() * 0.5);
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    retry = window.setTimeout(() => {
        retry = undefined;
        connect();
    }, wait);
}
function connect() {
    const token = session.get();
    if (!token) {
        later();
        return;
    }
    const ctl = new AbortController();
    abort = ctl;
    void run(ctl, token).finally(() => {
        if (abort === ctl)
            later();
    });
}
async function run(ctl, token) {
    let res;
    try {
        res = await fetch('/api/v1/events', {
            headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' },
            cache: 'no-store',
            signal: ctl.signal,
        });
    }
    catch {
        return;
    }
    if (res.status === 401)
        window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT));
    if (!res.ok || !res.body)
        return;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let watchdog = 0;
    const arm = () => {
        window.clearTimeout(watchdog);
        watchdog = window.setTimeout(() => ctl.abort(), SILENCE_MS);
    };
    arm();
    try {
        for (;;) {
            const { value, done } = await reader.read();
            if (done)
                return;
            arm();
            buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
            let end;
            while ((end = buf.indexOf('\n\n')) >= 0) {
                const block = buf.slice(0, end);
                buf = buf.slice(end + 2);
                const data = block.split('\n').filter((l) => l.startsWith('data:'))
                    .map((l) => l.slice(l.startsWith('data: ') ? 6 : 5)).join('\n');
                if (!data)
                    continue; // a keep-alive comment
                let ev;
                try {
                    ev = JSON.parse(data);
                }
                catch {
                    continue;
                }
                if (ev.type === 'ready') {
                    connected = true;
                    backoff = BACKOFF_MIN_MS;
                    // Whatever changed while the stream was down was not seen: refetch.
                    if (everConnected)
                        emit({ ...ev, type: 'resync' });
                    everConnected = true;
                }
                else {
                    emit(ev);
                }
            }
        }
    }
    catch {
        // aborted or the connection dropped: reconnect (the caller decides)
    }
    finally {
        window.clearTimeout(watchdog);
        connected = false;
    }
}
