//! `opslens vlm run` as a standalone example, for trying the crate without the app binary:
//! `cargo run --release -p opslens-vlm --example vlm_run -- --model DIR --image PNG --prompt TEXT --json`

use clap::Parser;

/// Command line of the example: exactly the crate's [`opslens_vlm::RunArgs`].
#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    run: opslens_vlm::RunArgs,
}

fn main() -> anyhow::Result<()> {
    opslens_vlm::run_cli(&Cli::parse().run)
}
