//! Reads criterion's medians (`target/criterion`) and the memory probe's result
//! (`target/keyward-bench/memory.json`), checks the verify path's targets as ratios, prints the
//! table and writes it to `target/keyward-bench/report.md`.
//!
//! `cargo run --release -p keyward-benches --bin keyward-report`
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use keyward_benches::{fixture, report};

fn main() -> ExitCode {
    let medians = report::read_medians(&fixture::target_dir().join("criterion"));
    if medians.is_empty() {
        eprintln!("no criterion results: run `cargo bench -p keyward-benches` first");
        return ExitCode::FAILURE;
    }
    let memory = std::fs::read_to_string(fixture::data_dir().join("memory.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v.get("index_bytes_per_credential")?.as_f64());
    let checks = report::check(&medians, memory);
    let md = report::markdown(&medians, &checks);
    print!("{md}");
    let path = fixture::data_dir().join("report.md");
    let _ = std::fs::create_dir_all(fixture::data_dir());
    if let Err(e) = std::fs::write(&path, &md) {
        eprintln!("cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    eprintln!("wrote {}", path.display());
    ExitCode::SUCCESS
}
