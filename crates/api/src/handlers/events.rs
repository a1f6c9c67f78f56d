//! The change feed: server-sent events naming every committed change, so clients refetch
//! what changed the moment it changes instead of polling.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use opslens_domain::FeedEvent;
use serde::Deserialize;
use tokio::sync::{broadcast, watch};
use utoipa::IntoParams;

use crate::error::ErrorBody;
use crate::extract::Query;

/// Keep-alive comment interval: well under the idle timeouts of proxies and of clients that
/// treat a silent stream as dead.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Ends open event streams when the server shuts down (a graceful shutdown waits for every
/// open response, and these never end by themselves).
#[derive(Debug, Clone)]
pub struct Closing(pub watch::Receiver<bool>);

impl Closing {
    /// Resolves once the server is shutting down (never, if nobody can say so any more).
    async fn wait(mut self) {
        if self.0.wait_for(|closing| *closing).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Query of `GET /events`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only changes of this incident (plus `ready` and `resync`).
    pub incident_id: Option<i64>,
}

/// Live change feed (server-sent events). Each `data:` line is one [`FeedEvent`] as JSON,
/// with the SSE `id:` set to its `seq`: first `ready`, then one event per committed change
/// (`incident.created`, `incident.updated`, `incident.deleted`, `evidence.created`,
/// `evidence.updated` — analysis state changes and results included —, `timeline.created`,
/// `timeline.deleted`, `hypothesis.created`, `hypothesis.updated`, `action.created`,
/// `action.updated`), each naming the incident and the object, so a client refetches just
/// that. A client too slow to keep up gets `resync` (events were dropped: refetch
/// everything). A comment line keeps the connection alive every 15 s. Needs the token like
/// every route: browsers' `EventSource` cannot send it, so read the stream with `fetch()`.
#[utoipa::path(get, path = "/events", tag = "system",
    params(EventsQuery),
    responses(
        (status = 200, description = "text/event-stream; every `data:` line is a FeedEvent",
            content_type = "text/event-stream", body = FeedEvent),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn events(
    State(feed): State<opslens_core::feed::Feed>,
    State(closing): State<Option<Closing>>,
    Query(q): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribe before answering: nothing committed after the `ready` event is missed.
    let rx = feed.subscribe();
    let ready = FeedEvent::ready(feed.latest_seq());
    let stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> = match closing {
        Some(c) => Box::pin(c.wait()),
        None => Box::pin(std::future::pending()),
    };
    let state = Feed {
        rx,
        stop,
        filter: q.incident_id,
        feed,
        first: Some(ready),
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        let ev = st.next().await?;
        Some((Ok::<_, Infallible>(sse(&ev)), st))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// One subscriber's position in the feed.
struct Feed {
    rx: broadcast::Receiver<FeedEvent>,
    stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    filter: Option<i64>,
    feed: opslens_core::feed::Feed,
    first: Option<FeedEvent>,
}

impl Feed {
    /// The next event for this client; `None` ends the stream (server shutting down).
    async fn next(&mut self) -> Option<FeedEvent> {
        if let Some(ev) = self.first.take() {
            return Some(ev);
        }
        loop {
            let got = tokio::select! {
                () = &mut self.stop => return None,
                got = self.rx.recv() => got,
            };
            match got {
                Ok(ev) if self.filter.is_none_or(|i| ev.concerns(i)) => return Some(ev),
                Ok(_) => continue,
                // Dropped events cannot be told apart by incident: everyone resyncs.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Some(FeedEvent::resync(self.feed.latest_seq()))
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

fn sse(ev: &FeedEvent) -> Event {
    Event::default()
        .id(ev.seq.to_string())
        .json_data(ev)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opslens_domain::{FeedChange, FeedKind, FeedOp};

    fn feed_of(feed: &opslens_core::feed::Feed, filter: Option<i64>) -> Feed {
        Feed {
            rx: feed.subscribe(),
            stop: Box::pin(std::future::pending()),
            filter,
            feed: feed.clone(),
            first: None,
        }
    }

    fn note(incident_id: i64, id: i64) -> FeedChange {
        FeedChange {
            kind: FeedKind::Timeline,
            op: FeedOp::Created,
            incident_id,
            id,
        }
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_is_told_to_resync_then_follows_again() {
        let feed = opslens_core::feed::Feed::default();
        let mut client = feed_of(&feed, None);
        let n = opslens_core::feed::FEED_CAPACITY as i64 + 10;
        feed.publish((0..n).map(|i| note(1, i)).collect());
        let ev = client.next().await.unwrap();
        assert_eq!(ev.event_type, "resync");
        assert_eq!(ev.seq, n as u64);
        // Then the events still buffered, in order, without gaps among them.
        let ev = client.next().await.unwrap();
        assert_eq!(ev.event_type, "timeline.created");
        let next = client.next().await.unwrap();
        assert_eq!(next.seq, ev.seq + 1);
    }

    #[tokio::test]
    async fn the_filter_passes_its_incident_only() {
        let feed = opslens_core::feed::Feed::default();
        let mut client = feed_of(&feed, Some(2));
        feed.publish(vec![note(1, 10), note(2, 11), note(3, 12), note(2, 13)]);
        assert_eq!(client.next().await.unwrap().id, Some(11));
        assert_eq!(client.next().await.unwrap().id, Some(13));
    }
}
