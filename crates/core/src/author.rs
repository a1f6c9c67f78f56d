//! Who the writes of the current request are by. The API's guard (a person's token) or the MCP
//! server ("agent via MCP") sets it for a request's task; [`crate::db::Db::run`] hands it to the
//! store's write on the blocking thread, so no service signature carries it.

use std::future::Future;

tokio::task_local! {
    static AUTHOR: Option<String>;
}

/// Runs `fut` (a request) with `author` as the author of every write it makes.
pub async fn with_author<F: Future>(author: Option<String>, fut: F) -> F::Output {
    AUTHOR.scope(author, fut).await
}

/// Runs `work` (calls into the services) with every write it makes authored by `who` instead
/// of the token's person: the MCP server names its writes "agent via MCP" this way, so the
/// timeline says who did what although the agent holds the user's token.
pub async fn as_author<F: Future>(who: &str, work: F) -> F::Output {
    with_author(Some(who.to_string()), work).await
}

/// The author of the request being served, if it came with a person's token.
pub(crate) fn current_author() -> Option<String> {
    AUTHOR.try_with(Clone::clone).ok().flatten()
}
