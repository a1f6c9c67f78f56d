//! How a failed command tells the user why: one line, each cause of the chain once.
//!
//! anyhow's `{:#}` joins every cause's message, but our library errors often embed their
//! source in their own message as well (`VlmError::Io` prints "path: io error" and exposes the
//! io error as its source), so the plain chain repeats "(os error 2)"; and a candle error made
//! while `RUST_BACKTRACE=1` is set carries its backtrace inside its message (18 lines). Unless
//! the user asks for `-v`, both are cut here, once, for every command.

/// The text printed to stderr for a failed command.
///
/// Quiet: `error: ` then the chain on one line, `: `-separated, each message cut at its first
/// line break and skipped when an earlier message already contains it. Verbose: anyhow's full
/// report (every cause on its own line, then the backtrace when one was captured).
pub fn render(err: &anyhow::Error, verbose: bool) -> String {
    if verbose {
        return format!("error: {err:?}");
    }
    let mut line = String::from("error: ");
    let start = line.len();
    for cause in err.chain() {
        let text = cause.to_string();
        let msg = text.lines().next().unwrap_or_default().trim();
        if msg.is_empty() || line[start..].contains(msg) {
            continue;
        }
        if line.len() > start {
            line.push_str(": ");
        }
        line.push_str(msg);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    /// An error that, like `VlmError::Io`, prints its source in its own message.
    #[derive(Debug)]
    struct FileError {
        path: String,
        source: std::io::Error,
    }
    impl std::fmt::Display for FileError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}: {}", self.path, self.source)
        }
    }
    impl std::error::Error for FileError {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    /// Like candle's `Error::WithBacktrace`: the backtrace printed inside the message.
    #[derive(Debug)]
    struct WithBacktrace(&'static str, std::backtrace::Backtrace);
    impl std::fmt::Display for WithBacktrace {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}\n{}", self.0, self.1)
        }
    }
    impl std::error::Error for WithBacktrace {}

    #[test]
    fn a_cause_embedded_in_its_parent_is_printed_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let io_text = io.to_string();
        let err = Err::<(), _>(FileError {
            path: "/m/config.json".into(),
            source: io,
        })
        .context("loading model from /m")
        .unwrap_err();
        let quiet = render(&err, false);
        assert_eq!(
            quiet,
            format!("error: loading model from /m: /m/config.json: {io_text}")
        );
        assert_eq!(quiet.matches(&io_text).count(), 1, "{quiet}");
        // anyhow's own one-line form repeats it: the reason for this function.
        assert_eq!(format!("{err:#}").matches(&io_text).count(), 2);
    }

    #[test]
    fn a_backtrace_inside_a_message_stays_out_unless_verbose() {
        let with_bt = WithBacktrace(
            "cannot find tensor lm_head.weight",
            std::backtrace::Backtrace::force_capture(),
        );
        assert!(with_bt.to_string().lines().count() > 1);
        let err = anyhow::Error::new(with_bt).context("loading model from /m");
        let quiet = render(&err, false);
        assert_eq!(
            quiet,
            "error: loading model from /m: cannot find tensor lm_head.weight"
        );
        let loud = render(&err, true);
        assert!(loud.lines().count() > 2, "{loud}");
        assert!(loud.contains("lm_head.weight"));
    }

    #[test]
    fn distinct_causes_are_all_kept() {
        let err = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(render(&err, false), "error: outer: middle: inner");
    }
}
