//! What the directory store leaves on disk: deleted faces are gone from every file, several
//! processes (here: threads with their own store handles and file locks) share one store
//! without losing writes, and a copied store writes as a new replica.

mod common;
use common::*;
use likeness_collections::*;
use std::path::Path;

const NOW: u64 = 1_700_000_000_000;

fn open_dir(root: &Path) -> Collections<DirStore> {
    let mut store = DirStore::open(root).unwrap();
    let replica = store.replica_id().unwrap();
    block_on(Collections::open(store, Box::new(SystemClock), replica, space())).unwrap()
}

fn index_dir(c: &mut Collections<DirStore>, collection: &str, external: &str, vectors: &[Vec<f32>]) -> Vec<String> {
    let input = IndexFacesInput {
        collection_id: collection.into(),
        external_image_id: Some(external.into()),
        max_faces: None,
        quality_filter: Some(likeness_vision::QualityFilter::None),
    };
    let image_id = ids::image_id(collection, external.as_bytes()).to_string();
    let out = block_on(c.index_faces_analyzed(&input, &image_id, image(vectors))).unwrap();
    out.face_records.into_iter().map(|r| r.face.face_id).collect()
}

/// Every file under `root`, read whole.
fn all_bytes(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A vector as stores and exports hold it: its int8 codes.
fn vector_bytes(v: &[f32]) -> Vec<u8> {
    likeness_collections::search::quantize(v).iter().map(|&c| c as u8).collect()
}

/// Neither the ExternalImageId nor the vector of a deleted face remain anywhere, as codes or
/// as f32 bytes.
fn assert_gone(root: &Path, exported: &[u8], external: &str, vector: &[f32]) {
    let forms = [vector_bytes(vector), vector.iter().flat_map(|x| x.to_le_bytes()).collect()];
    for (path, bytes) in all_bytes(root) {
        assert!(!contains(&bytes, external.as_bytes()), "{path} still holds ExternalImageId {external}");
        for vb in &forms {
            assert!(!contains(&bytes, vb), "{path} still holds a deleted face's vector");
        }
    }
    assert!(!contains(exported, external.as_bytes()), "the export still holds {external}");
    for vb in &forms {
        assert!(!contains(exported, vb), "the export still holds a deleted face's vector");
    }
}

#[test]
fn delete_faces_leaves_nothing_of_the_face_on_disk_or_in_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = open_dir(tmp.path());
    block_on(c.create_collection(&coll("c"))).unwrap();
    let keep = index_dir(&mut c, "c", "keeper-person", &[vector(1, 0)]);
    let gone = index_dir(&mut c, "c", "deleted-person-7f3a", &[vector(2, 0)]);
    assert!(
        all_bytes(tmp.path()).iter().any(|(_, b)| contains(b, &vector_bytes(&vector(2, 0)))),
        "the scan finds a stored vector before it is deleted"
    );
    block_on(c.delete_faces(&del_req("c", &gone))).unwrap();
    assert_gone(tmp.path(), &c.snapshot("c").unwrap(), "deleted-person-7f3a", &vector(2, 0));
    // The kept face is still there, on disk and after reopening.
    assert!(all_bytes(tmp.path()).iter().any(|(_, b)| contains(b, b"keeper-person")));
    let c = open_dir(tmp.path());
    assert_eq!(
        c.list_faces(&ListFacesInput {
            collection_id: "c".into(),
            next_token: None,
            max_results: None,
            user_id: None,
            face_ids: None
        })
        .unwrap()
        .faces
        .len(),
        1
    );
    assert_eq!(keep.len(), 1);
}

#[test]
fn delete_collection_leaves_nothing_of_its_faces_or_users() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = open_dir(tmp.path());
    block_on(c.create_collection(&coll("c"))).unwrap();
    let faces = index_dir(&mut c, "c", "first-person-91b2", &[vector(3, 0)]);
    index_dir(&mut c, "c", "second-person-c4d1", &[vector(4, 0)]);
    block_on(c.create_user(&user("c", "user-name-e5f6", Some("token-ab12")))).unwrap();
    block_on(c.associate_faces(&AssociateFacesInput {
        collection_id: "c".into(),
        user_id: "user-name-e5f6".into(),
        face_ids: faces,
        user_match_threshold: None,
        client_request_token: None,
    }))
    .unwrap();
    block_on(c.delete_collection(&coll("c"))).unwrap();
    let exported = c.snapshot("c").unwrap();
    assert_gone(tmp.path(), &exported, "first-person-91b2", &vector(3, 0));
    assert_gone(tmp.path(), &exported, "second-person-c4d1", &vector(4, 0));
    assert_gone(tmp.path(), &exported, "user-name-e5f6", &vector(3, 0));
    assert_gone(tmp.path(), &exported, "token-ab12", &vector(4, 0));
    // Recreated, it is empty, and stays so after reopening.
    block_on(c.create_collection(&coll("c"))).unwrap();
    let c = open_dir(tmp.path());
    assert_eq!(c.describe_collection(&coll("c")).unwrap().face_count, 0);
    assert_eq!(c.describe_collection(&coll("c")).unwrap().user_count, 0);
}

#[test]
fn a_deleted_user_keeps_no_request_token() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = open_dir(tmp.path());
    block_on(c.create_collection(&coll("c"))).unwrap();
    block_on(c.create_user(&user("c", "u1", Some("secret-token-99")))).unwrap();
    block_on(c.delete_user(&user("c", "u1", Some("delete-token-98")))).unwrap();
    for (path, bytes) in all_bytes(tmp.path()) {
        assert!(!contains(&bytes, b"secret-token-99") && !contains(&bytes, b"delete-token-98"), "{path}");
    }
}

#[test]
fn writers_sharing_a_store_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    block_on(open_dir(tmp.path()).create_collection(&coll("c"))).unwrap();
    const WRITERS: usize = 4;
    const EACH: usize = 15;
    let handles: Vec<_> = (0..WRITERS)
        .map(|w| {
            let root = tmp.path().to_path_buf();
            std::thread::spawn(move || {
                // Each writer is its own "process": its own store handle, lock file handle
                // and memory, and the same replica id (from the store), as the CLI has.
                let mut c = open_dir(&root);
                for i in 0..EACH {
                    c.store_mut().lock().unwrap();
                    block_on(c.refresh()).unwrap();
                    index_dir(&mut c, "c", &format!("w{w}-{i}"), &[vector(w * EACH + i, 0)]);
                    c.store_mut().unlock();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let c = open_dir(tmp.path());
    let input = ListFacesInput {
        collection_id: "c".into(),
        next_token: None,
        max_results: Some(4096),
        user_id: None,
        face_ids: None,
    };
    let faces = c.list_faces(&input).unwrap().faces;
    assert_eq!(faces.len(), WRITERS * EACH, "faces lost between writers");
    let distinct: std::collections::BTreeSet<_> = faces.iter().map(|f| f.face_id.clone()).collect();
    assert_eq!(distinct.len(), WRITERS * EACH, "two writers produced the same FaceId");
}

#[test]
fn a_fold_keeps_deltas_written_by_another_writer_since() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = open_dir(tmp.path());
    block_on(a.create_collection(&coll("c"))).unwrap();
    let mut b = open_dir(tmp.path());
    index_dir(&mut b, "c", "from-b", &[vector(1, 0)]);
    // `a` has not seen b's write; its delete folds a snapshot. That must not drop b's face.
    let mine = index_dir(&mut a, "c", "from-a", &[vector(2, 0)]);
    block_on(a.delete_faces(&del_req("c", &mine))).unwrap();
    let c = open_dir(tmp.path());
    let input = ListFacesInput {
        collection_id: "c".into(),
        next_token: None,
        max_results: None,
        user_id: None,
        face_ids: None,
    };
    let faces = c.list_faces(&input).unwrap().faces;
    assert_eq!(faces.iter().map(|f| f.external_image_id.clone().unwrap()).collect::<Vec<_>>(), vec!["from-b"]);
}

#[test]
fn a_copied_store_writes_as_a_new_replica() {
    let tmp = tempfile::tempdir().unwrap();
    let original = tmp.path().join("original");
    let id = DirStore::open(&original).unwrap().replica_id().unwrap();
    assert_eq!(DirStore::open(&original).unwrap().replica_id().unwrap(), id, "stable for the same store");
    let copy = tmp.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(&original).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
    }
    let copied = DirStore::open(&copy).unwrap().replica_id().unwrap();
    assert_ne!(copied, id, "a copy must not write as the original's replica");
    assert_eq!(DirStore::open(&original).unwrap().replica_id().unwrap(), id, "the original keeps its id");
    assert_eq!(DirStore::open(&copy).unwrap().replica_id().unwrap(), copied, "the copy keeps its new id");
    let _ = NOW;
}
