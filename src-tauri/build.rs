//! Build script: Tauri's code generation (config, icons, capabilities under
//! `src-tauri/capabilities/`), and a rebuild when the UI changes (the server embeds it).
//!
//! The app's commands are listed so each gets an `allow-…` permission: a command is then
//! callable only from windows whose capability grants it (the region overlay's), instead of
//! from every local page.
fn main() {
    println!("cargo:rerun-if-changed=ui");
    git_commit();
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

/// `opslens --version` names the commit it was built from (`0.1.0 (1a2b3c4d)`, `-dirty` with
/// uncommitted changes), so a bug report from an installed package points at its source;
/// `unknown` outside a git checkout (a source tarball).
fn git_commit() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=8", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let suffix = if dirty { "-dirty" } else { "" };
    println!("cargo:rustc-env=OPSLENS_GIT_COMMIT={commit}{suffix}");
    // Rebuild when HEAD moves: the HEAD file, the branch it names, and packed refs.
    for path in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(p) = git(&["rev-parse", "--git-path", &branch]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
