//! Build script: Tauri's code generation (config, icons, capabilities under
//! `src-tauri/capabilities/`), and a rebuild when the UI changes (the server embeds it).
//!
//! The app's commands are listed so each gets an `allow-…` permission: a command is then
//! callable only from windows whose capability grants it (the region overlay's), instead of
//! from every local page.
fn main() {
    println!("cargo:rerun-if-changed=ui");
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .capabilities_path_pattern("./src-tauri/capabilities/**/*")
            .app_manifest(tauri_build::AppManifest::new().commands(&[
                "region_frame",
                "region_shown",
                "region_select",
                "region_cancel",
            ])),
    )
    .expect("tauri-build failed (tauri.conf.json, icons or capabilities)");
}
