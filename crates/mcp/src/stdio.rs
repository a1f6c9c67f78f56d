//! MCP over this process's stdin and stdout (what `opslens mcp` speaks to Claude Desktop or
//! Claude Code). Two threads move the bytes between the standard streams and in-memory pipes,
//! so the build does not need tokio's `io-std` (adding it would rebuild every crate on tokio).

use std::io::{Read, Write};

use rmcp::{ServerHandler, ServiceExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Serves `handler` on stdin/stdout until the client closes stdin.
pub async fn serve_stdio<S: ServerHandler>(handler: S) -> anyhow::Result<()> {
    let (input, output) = std_pipes();
    let running = handler.serve((input, output)).await?;
    running.waiting().await?;
    Ok(())
}

/// A reader fed from stdin and a writer drained to stdout (flushed after every chunk: each
/// JSON-RPC message is one line the client waits for).
fn std_pipes() -> (DuplexStream, DuplexStream) {
    let rt = tokio::runtime::Handle::current();
    let (input, mut feed) = tokio::io::duplex(64 * 1024);
    let (output, mut drain) = tokio::io::duplex(64 * 1024);
    let feed_rt = rt.clone();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if feed_rt.block_on(feed.write_all(&buf[..n])).is_err() {
                        break;
                    }
                }
            }
        }
        // Dropping `feed` ends the input: the service stops.
    });
    std::thread::spawn(move || {
        let mut stdout = std::io::stdout().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match rt.block_on(drain.read(&mut buf)) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if stdout
                        .write_all(&buf[..n])
                        .and_then(|_| stdout.flush())
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    (input, output)
}
