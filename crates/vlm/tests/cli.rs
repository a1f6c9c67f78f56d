//! The `opslens vlm run` entry point on the tiny fixture model: arguments parse as the binary
//! will declare them and a JSON run completes.

use clap::Parser;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    run: opslens_vlm::RunArgs,
}

#[test]
fn run_cli_on_tiny_model() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/test/tiny-qwen3-vl"
    );
    let image = format!("{dir}/wide.png");
    for dtype in ["f32", "q4k"] {
        let cli = Cli::try_parse_from([
            "vlm",
            "--model",
            dir,
            "--image",
            &image,
            "--prompt",
            "What spiked?",
            "--max-new-tokens",
            "4",
            "--greedy",
            "--json",
            "--dtype",
            dtype,
        ])
        .expect("args parse");
        assert_eq!(cli.run.max_new_tokens, 4);
        opslens_vlm::run_cli(&cli.run).expect("run");
    }
}

#[test]
fn rejects_unknown_dtype() {
    let cli =
        Cli::try_parse_from(["vlm", "--model", "x", "--prompt", "p", "--dtype", "bf16"]).unwrap();
    let err = opslens_vlm::run_cli(&cli.run).unwrap_err();
    assert!(err.to_string().contains("bf16"), "{err}");
}
