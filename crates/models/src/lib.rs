//! The model manager: which models OpsLens supports (`models/manifest.json`, compiled in),
//! where their files are on this machine, whether they are intact, and how to fetch them.
//!
//! Weights are never committed: they live in the standard Hugging Face cache (shared with
//! Python tools, so a model already pulled by `huggingface-cli` is found) or in a folder the
//! user points at. Nothing here loads a model; it only hands a verified folder to the engine.

pub mod manifest;
pub mod pull;
pub mod resolve;
pub mod verify;

pub use manifest::{Manifest, ModelEntry, ModelFile};
pub use pull::{
    bytes_present, bytes_to_fetch, pull, pull_stoppable, pull_with, PullError, PullEvent,
    PullOptions,
};
pub use resolve::{resolve, Located, ModelSettings, NotFound};
pub use verify::{verify, FileCheck, VerifyReport};
