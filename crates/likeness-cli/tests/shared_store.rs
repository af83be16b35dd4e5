//! The `likeness` binary as people run it: several processes on one store (`xargs -P 4`),
//! a folder of photos in one call, and deletes that leave nothing on disk. Real photos from
//! ../shared/data/faces; skipped, saying so, without them.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn all_files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out
}

fn mentions(root: &Path, needle: &str) -> Vec<PathBuf> {
    all_files(root)
        .into_iter()
        .filter(|(_, b)| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .map(|(p, _)| p)
        .collect()
}

#[test]
fn four_parallel_index_processes_keep_every_face() {
    let Some(root) = faces() else { return };
    let store = tempfile::tempdir().unwrap();
    ok_json(likeness(store.path(), &["create-collection", "--collection-id", "staff"]));
    let people = ["obama", "biden", "amy", "penny", "raj", "sheldon", "howard", "leonard"];
    // Four processes at once, two people each, every photo of them.
    let handles: Vec<_> = people
        .chunks(2)
        .map(|pair| {
            let store = store.path().to_path_buf();
            let dirs: Vec<PathBuf> = pair.iter().map(|p| root.join(p)).collect();
            std::thread::spawn(move || {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_likeness"));
                cmd.arg("--store").arg(&store).args(["index-faces", "--collection-id", "staff", "--image"]);
                cmd.args(&dirs);
                ok_json(cmd.output().unwrap())
            })
        })
        .collect();
    let mut indexed = 0;
    for h in handles {
        let summary = h.join().unwrap();
        assert_eq!(summary["Summary"]["ImagesFailed"], 0, "{summary}");
        indexed += summary["Summary"]["FacesIndexed"].as_u64().unwrap();
    }
    assert!(indexed > 0);
    let listed = ok_json(likeness(store.path(), &["list-faces", "--collection-id", "staff", "--max-results", "4096"]));
    let faces = listed["Faces"].as_array().unwrap();
    assert_eq!(faces.len() as u64, indexed, "faces lost between processes");
}

#[test]
fn a_folder_indexes_in_one_call_with_a_summary() {
    let Some(root) = faces() else { return };
    let store = tempfile::tempdir().unwrap();
    ok_json(likeness(store.path(), &["create-collection", "--collection-id", "c"]));
    let folder = tempfile::tempdir().unwrap();
    for f in ["obama.jpg", "obama1.jpg"] {
        std::fs::copy(root.join("obama").join(f), folder.path().join(f)).unwrap();
    }
    std::fs::write(folder.path().join("broken.jpg"), b"not an image").unwrap();
    std::fs::write(folder.path().join("notes.txt"), b"skipped: not an image file name").unwrap();
    let run = likeness(
        store.path(),
        &[
            "index-faces",
            "--collection-id",
            "c",
            "--external-image-id",
            "obama",
            "--image",
            folder.path().to_str().unwrap(),
        ],
    );
    // One image failed: the summary is printed and the exit status says so.
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).starts_with("IndexFacesIncomplete: 1 of 3 images failed"));
    let out: serde_json::Value = serde_json::from_slice(&run.stdout).expect("summary on stdout");
    assert_eq!(out["Summary"]["Images"], 3, "{out}");
    assert_eq!(out["Summary"]["FacesIndexed"], 2, "{out}");
    assert_eq!(out["Summary"]["ImagesFailed"], 1, "{out}");
    let failed: Vec<_> = out["Images"].as_array().unwrap().iter().filter(|i| i.get("Error").is_some()).collect();
    assert_eq!(failed[0]["Error"]["Code"], "InvalidImageFormatException", "{out}");
    // A missing collection stops the run with the exception, exit 1.
    let missing =
        likeness(store.path(), &["index-faces", "--collection-id", "nope", "--image", folder.path().to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).starts_with("ResourceNotFoundException"));
}

#[test]
fn deleted_faces_and_collections_leave_no_external_image_id_in_the_store() {
    let Some(root) = faces() else { return };
    let store = tempfile::tempdir().unwrap();
    let s = store.path();
    ok_json(likeness(s, &["create-collection", "--collection-id", "c"]));
    let index = |image: &Path, ext: &str| {
        let out = ok_json(likeness(
            s,
            &["index-faces", "--collection-id", "c", "--external-image-id", ext, "--image", image.to_str().unwrap()],
        ));
        out["FaceRecords"][0]["Face"]["FaceId"].as_str().unwrap().to_string()
    };
    let gone = index(&root.join("obama/obama.jpg"), "obama-delete-me");
    index(
        &root.join("biden").join(std::fs::read_dir(root.join("biden")).unwrap().next().unwrap().unwrap().file_name()),
        "biden-keep-me",
    );
    assert!(!mentions(s, "obama-delete-me").is_empty());
    ok_json(likeness(s, &["delete-faces", "--collection-id", "c", "--face-ids", &gone]));
    assert_eq!(mentions(s, "obama-delete-me"), Vec::<PathBuf>::new(), "DeleteFaces left the ExternalImageId on disk");
    assert!(!mentions(s, "biden-keep-me").is_empty());
    ok_json(likeness(s, &["delete-collection", "--collection-id", "c"]));
    assert_eq!(mentions(s, "biden-keep-me"), Vec::<PathBuf>::new(), "DeleteCollection left an ExternalImageId on disk");
}
