//! Event times of evidence and timeline entries: what a person gave, else what the content
//! says, else the moment it was recorded.

use opslens_domain::OccurredAtSource;
use opslens_store::At;

use crate::when::{earliest_in_text, parse_time, Parsed};
use crate::CoreError;

/// The API has no zone of its own: zone-less times are UTC, and the answer says so.
fn api_zone() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(0).expect("zero offset")
}

/// The `occurred_at` a person gave, read; `None` when none was given.
pub(crate) fn given_time(input: Option<&str>) -> Result<Option<Parsed>, CoreError> {
    input
        .map(|s| parse_time("occurred_at", s, api_zone(), chrono::Utc::now()))
        .transpose()
}

/// The time of new text evidence and the zone assumed for it: the given one, else the
/// earliest stamp in the content (derived), else none (recorded now).
pub(crate) fn evidence_time(
    input: Option<&str>,
    content: &str,
) -> Result<(Option<At>, Option<String>), CoreError> {
    if let Some(p) = given_time(input)? {
        let at = At {
            time: p.at,
            source: OccurredAtSource::User,
        };
        return Ok((Some(at), p.assumed_zone));
    }
    let derived = earliest_in_text(content, chrono::Utc::now()).map(|time| At {
        time,
        source: OccurredAtSource::Derived,
    });
    Ok((derived, None))
}
