//! Running the `likeness` binary on a store, and the real photos it is tested on.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// ../shared/data/faces/identities, or None (saying so) where it is absent.
pub fn faces() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/faces/identities");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("SKIP: {} is absent; these tests need the real photos", p.display());
        None
    }
}

pub fn likeness(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_likeness")).arg("--store").arg(store).args(args).output().expect("likeness runs")
}

pub fn ok_json(out: Output) -> serde_json::Value {
    assert!(out.status.success(), "likeness failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}
