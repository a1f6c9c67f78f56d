//! The `opslens` binary; everything happens in the library (`opslens::run`).
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    opslens::run()
}
