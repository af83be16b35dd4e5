//! The committed models are the ones models/README.md describes.

use sha2::{Digest, Sha256};

#[test]
fn model_checksums_match_the_readme() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut checked = 0;
    for line in readme.lines() {
        // Table rows: | file | ... | sha256 |
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(file) = cells.get(1).map(|f| f.trim_matches('`')).filter(|f| f.ends_with(".onnx")) else { continue };
        let expected = cells
            .iter()
            .rev()
            .find(|c| c.len() == 64 && c.chars().all(|x| x.is_ascii_hexdigit()))
            .expect("sha256 cell");
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let got: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(&got, expected, "{file}");
        checked += 1;
    }
    assert_eq!(checked, 4, "four models listed");
}

/// The prepared embedder's format names the tract version that writes and reads it (caches
/// are keyed by it): it must follow Cargo.lock when tract is updated.
#[cfg(feature = "engine")]
#[test]
fn the_prepared_format_names_the_locked_tract_version() {
    let lock =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock")).unwrap();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"tract-nnef\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"'))
        .expect("tract-nnef in Cargo.lock");
    assert!(
        likeness_vision::embedder::PREPARED_FORMAT.starts_with(&format!("tract-{version}-")),
        "PREPARED_FORMAT {} does not name tract {version}",
        likeness_vision::embedder::PREPARED_FORMAT
    );
}
