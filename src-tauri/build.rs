//! Build script: Tauri's code generation (config, icons, capabilities under
//! `src-tauri/capabilities/`), and a rebuild when the UI changes (the server embeds it).
fn main() {
    println!("cargo:rerun-if-changed=ui");
    tauri_build::try_build(
        tauri_build::Attributes::new().capabilities_path_pattern("./src-tauri/capabilities/**/*"),
    )
    .expect("tauri-build failed (tauri.conf.json, icons or capabilities)");
}
