//! Build script: re-run when the UI changes (the desktop shell embeds it).
fn main() {
    println!("cargo:rerun-if-changed=ui");
}
