//! OpsLens application crate: wiring of the CLI, the server and (later) the desktop shell.
