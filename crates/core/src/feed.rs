//! The change feed: every committed change, from any path (REST, capture, hotkey, webhooks,
//! syncs, the analysis worker), as a numbered [`FeedEvent`] on a broadcast channel that
//! `GET /api/v1/events` streams to clients.
//!
//! The store records what each write transaction touched and hands the list over only after
//! the commit (see `opslens_store::FeedSink`), so a rolled-back write is never announced.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use opslens_domain::{FeedChange, FeedEvent};
use opslens_store::FeedSink;
use tokio::sync::broadcast;

/// Events a subscriber may fall behind by before it is told to resync.
pub const FEED_CAPACITY: usize = 1024;

/// The publishing side of the change feed; cheap to clone.
#[derive(Debug, Clone)]
pub struct Feed {
    tx: broadcast::Sender<FeedEvent>,
    seq: Arc<AtomicU64>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            tx: broadcast::channel(FEED_CAPACITY).0,
            seq: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Feed {
    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<FeedEvent> {
        self.tx.subscribe()
    }

    /// The number of the last event published (0 before the first).
    pub fn latest_seq(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }
}

impl Feed {
    /// Numbers and sends the changes of one committed transaction, in order.
    pub fn publish(&self, changes: Vec<FeedChange>) {
        for c in changes {
            let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
            // No subscriber is not an error: nobody is looking.
            let _ = self.tx.send(FeedEvent::change(seq, c));
        }
    }
}

impl FeedSink for Feed {
    fn committed(&self, changes: Vec<FeedChange>) {
        // Called under the store's writer lock, so events leave in commit order.
        self.publish(changes);
    }
}
