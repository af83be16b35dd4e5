//! Every operation and exception path, on synthetic vectors (no models needed).

mod common;
use common::*;
use likeness_collections::*;
use likeness_vision::{QualityFilter, QualityReason};

fn name(e: CollectionError) -> &'static str {
    e.exception_name()
}

#[test]
fn collection_lifecycle_and_limits() {
    let mut c = open(MemoryStore::default(), 1);
    let out = block_on(c.create_collection(&coll("team"))).unwrap();
    assert_eq!(out.status_code, 200);
    assert_eq!(out.face_model_version, VERSION);
    assert_eq!(name(block_on(c.create_collection(&coll("team"))).unwrap_err()), "ResourceAlreadyExistsException");
    assert_eq!(name(block_on(c.create_collection(&coll("bad/id"))).unwrap_err()), "InvalidParameterException");
    assert_eq!(name(block_on(c.create_collection(&coll(&"x".repeat(256)))).unwrap_err()), "InvalidParameterException");
    block_on(c.create_collection(&coll(&"x".repeat(255)))).unwrap();
    let d = c.describe_collection(&coll("team")).unwrap();
    assert_eq!((d.face_count, d.user_count), (0, 0));
    assert_eq!(d.creation_timestamp, 1_700_000_000.0);
    assert_eq!(name(c.describe_collection(&coll("nope")).unwrap_err()), "ResourceNotFoundException");

    for max in [0, 4097] {
        let e = c.list_collections(&ListCollectionsInput { next_token: None, max_results: Some(max) }).unwrap_err();
        assert_eq!(name(e), "InvalidParameterException");
    }
    assert!(c.list_collections(&ListCollectionsInput { next_token: None, max_results: Some(4096) }).is_ok());

    block_on(c.delete_collection(&coll("team"))).unwrap();
    assert_eq!(name(c.describe_collection(&coll("team")).unwrap_err()), "ResourceNotFoundException");
    assert_eq!(name(block_on(c.delete_collection(&coll("team"))).unwrap_err()), "ResourceNotFoundException");
    // Re-created empty: nothing of the old collection comes back.
    block_on(c.create_collection(&coll("team"))).unwrap();
    assert_eq!(c.describe_collection(&coll("team")).unwrap().face_count, 0);
}

#[test]
fn list_collections_pages_cover_everything_once() {
    let mut c = open(MemoryStore::default(), 1);
    for i in 0..23 {
        block_on(c.create_collection(&coll(&format!("c{i:02}")))).unwrap();
    }
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page =
            c.list_collections(&ListCollectionsInput { next_token: token.clone(), max_results: Some(5) }).unwrap();
        assert!(page.collection_ids.len() <= 5);
        assert_eq!(page.collection_ids.len(), page.face_model_versions.len());
        seen.extend(page.collection_ids);
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let expected: Vec<String> = (0..23).map(|i| format!("c{i:02}")).collect();
    assert_eq!(seen, expected);
    let e =
        c.list_collections(&ListCollectionsInput { next_token: Some("forged".into()), max_results: None }).unwrap_err();
    assert_eq!(name(e), "InvalidPaginationTokenException");
}

#[test]
fn index_faces_filters_limits_and_deduplicates() {
    let mut c = open(MemoryStore::default(), 1);
    block_on(c.create_collection(&coll("c"))).unwrap();
    let input = |max_faces, filter, ext: Option<&str>| IndexFacesInput {
        collection_id: "c".into(),
        external_image_id: ext.map(str::to_string),
        max_faces,
        quality_filter: filter,
    };
    // MaxFaces 1 of 3: the largest is kept, the others are EXCEEDS_MAX_FACES.
    let out = block_on(c.index_faces_analyzed(
        &input(Some(1), Some(QualityFilter::None), Some("img:1")),
        "img-1",
        image(&[vector(0, 0), vector(1, 0), vector(2, 0)]),
    ))
    .unwrap();
    assert_eq!(out.face_records.len(), 1);
    assert_eq!(out.face_records[0].face.bounding_box.width, 0.5);
    assert_eq!(out.face_records[0].face.external_image_id.as_deref(), Some("img:1"));
    assert_eq!(out.unindexed_faces.len(), 2);
    assert!(out.unindexed_faces.iter().all(|u| u.reasons == vec![QualityReason::ExceedsMaxFaces]));
    // Same image, same ExternalImageId: the stored face comes back, nothing is added.
    let again = block_on(c.index_faces_analyzed(
        &input(Some(1), Some(QualityFilter::None), Some("img:1")),
        "img-1",
        image(&[vector(0, 0), vector(1, 0), vector(2, 0)]),
    ))
    .unwrap();
    assert_eq!(again.face_records[0].face.face_id, out.face_records[0].face.face_id);
    assert_eq!(c.describe_collection(&coll("c")).unwrap().face_count, 1);

    // HIGH filter rejects a low-confidence face with reasons.
    let mut img = image(&[vector(3, 0)]);
    img.faces[0].detail.confidence = 60.0;
    let out =
        block_on(c.index_faces_analyzed(&input(None, Some(QualityFilter::High), None), "img-2", img.clone())).unwrap();
    assert!(out.face_records.is_empty());
    assert!(out.unindexed_faces[0].reasons.contains(&QualityReason::LowConfidence));
    let out = block_on(c.index_faces_analyzed(&input(None, Some(QualityFilter::None), None), "img-2", img)).unwrap();
    assert_eq!(out.face_records.len(), 1);

    // Parameter errors change nothing.
    let before = c.describe_collection(&coll("c")).unwrap().face_count;
    for (inp, img) in [
        (input(Some(0), None, None), image(&[vector(4, 0)])),
        (input(None, None, Some("bad id")), image(&[vector(4, 0)])),
        (input(None, None, Some(&"e".repeat(256))), image(&[vector(4, 0)])),
    ] {
        assert_eq!(
            name(block_on(c.index_faces_analyzed(&inp, "img-3", img)).unwrap_err()),
            "InvalidParameterException"
        );
    }
    let mut foreign = image(&[vector(4, 0)]);
    foreign.face_model_version = "other-model".into();
    assert_eq!(
        name(block_on(c.index_faces_analyzed(&input(None, None, None), "img-4", foreign)).unwrap_err()),
        "InvalidParameterException"
    );
    let mut short = image(&[vec![1.0; 3]]);
    short.faces[0].embedding = vec![1.0, 0.0, 0.0];
    assert_eq!(
        name(block_on(c.index_faces_analyzed(&input(None, None, None), "img-5", short)).unwrap_err()),
        "InvalidParameterException"
    );
    assert_eq!(c.describe_collection(&coll("c")).unwrap().face_count, before);
    let missing = IndexFacesInput {
        collection_id: "missing".into(),
        external_image_id: None,
        max_faces: None,
        quality_filter: None,
    };
    assert_eq!(
        name(block_on(c.index_faces_analyzed(&missing, "i", image(&[vector(0, 0)]))).unwrap_err()),
        "ResourceNotFoundException"
    );
}

#[test]
fn list_faces_pages_filters_and_limits() {
    let mut c = open(MemoryStore::default(), 1);
    block_on(c.create_collection(&coll("c"))).unwrap();
    let mut all = Vec::new();
    for i in 0..25 {
        all.extend(index(&mut c, "c", &format!("img{i}"), &[vector(i, 0)]));
    }
    all.sort();
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_faces(&ListFacesInput {
                collection_id: "c".into(),
                next_token: token,
                max_results: Some(7),
                user_id: None,
                face_ids: None,
            })
            .unwrap();
        seen.extend(page.faces.into_iter().map(|f| f.face_id));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, all, "every face exactly once, in order");
    let only = c
        .list_faces(&ListFacesInput {
            collection_id: "c".into(),
            next_token: None,
            max_results: None,
            user_id: None,
            face_ids: Some(vec![all[3].clone()]),
        })
        .unwrap();
    assert_eq!(only.faces.len(), 1);
    for max in [0, 4097] {
        let e = c.list_faces(&ListFacesInput {
            collection_id: "c".into(),
            next_token: None,
            max_results: Some(max),
            user_id: None,
            face_ids: None,
        });
        assert_eq!(name(e.unwrap_err()), "InvalidParameterException");
    }
    let e = c.list_faces(&ListFacesInput {
        collection_id: "c".into(),
        next_token: Some("x.y.z".into()),
        max_results: None,
        user_id: None,
        face_ids: None,
    });
    assert_eq!(name(e.unwrap_err()), "InvalidPaginationTokenException");
}

#[test]
fn users_association_and_deletion_rules() {
    let mut c = open(MemoryStore::default(), 1);
    block_on(c.create_collection(&coll("c"))).unwrap();
    let alice: Vec<String> = (0..3).flat_map(|i| index(&mut c, "c", &format!("a{i}"), &[vector(0, i)])).collect();
    let bob = index(&mut c, "c", "b0", &[vector(5, 0)]);

    block_on(c.create_user(&user("c", "alice", Some("tok-1")))).unwrap();
    block_on(c.create_user(&user("c", "alice", Some("tok-1")))).unwrap(); // idempotent retry
    assert_eq!(name(block_on(c.create_user(&user("c", "alice", None))).unwrap_err()), "ConflictException");
    assert_eq!(
        name(block_on(c.create_user(&user("c", "bob", Some("tok-1")))).unwrap_err()),
        "IdempotentParameterMismatchException"
    );
    assert_eq!(name(block_on(c.create_user(&user("c", "bad user", None))).unwrap_err()), "InvalidParameterException");
    block_on(c.create_user(&user("c", "bob", None))).unwrap();
    let users = c.list_users(&users_req("c", None, None)).unwrap();
    assert_eq!(users.users.len(), 2);
    assert!(users.users.iter().all(|u| u.user_status == UserStatus::Created));

    let assoc = |ids: Vec<String>, user: &str| AssociateFacesInput {
        collection_id: "c".into(),
        user_id: user.into(),
        face_ids: ids,
        user_match_threshold: None,
        client_request_token: None,
    };
    let out = block_on(c.associate_faces(&assoc(alice[..2].to_vec(), "alice"))).unwrap();
    assert_eq!(out.associated_faces.len(), 2);
    assert_eq!(out.user_status, UserStatus::Active);
    // Bob's face does not match Alice's user vector; a missing face is FACE_NOT_FOUND.
    let ghost = "00000000-0000-4000-8000-000000000000".to_string();
    let out =
        block_on(c.associate_faces(&assoc(vec![alice[2].clone(), bob[0].clone(), ghost.clone()], "alice"))).unwrap();
    assert_eq!(out.associated_faces, vec![AssociatedFace { face_id: alice[2].clone() }]);
    let reasons: Vec<_> = out.unsuccessful_face_associations.iter().map(|u| u.reasons[0]).collect();
    assert_eq!(reasons, vec![AssociationFailureReason::LowMatchConfidence, AssociationFailureReason::FaceNotFound]);
    assert!(out.unsuccessful_face_associations[0].confidence.unwrap() < 75.0);
    let out = block_on(c.associate_faces(&assoc(vec![alice[0].clone()], "bob"))).unwrap();
    assert_eq!(
        out.unsuccessful_face_associations[0].reasons,
        vec![AssociationFailureReason::AssociatedToADifferentUser]
    );
    assert_eq!(
        name(block_on(c.associate_faces(&assoc(vec![alice[0].clone()], "carol"))).unwrap_err()),
        "ResourceNotFoundException"
    );
    assert_eq!(name(block_on(c.associate_faces(&assoc(vec![], "alice"))).unwrap_err()), "InvalidParameterException");
    assert_eq!(
        name(block_on(c.associate_faces(&assoc(vec![ghost.clone(); 101], "alice"))).unwrap_err()),
        "InvalidParameterException"
    );

    // ListFaces by user; an associated face cannot be deleted.
    let listed = c
        .list_faces(&ListFacesInput {
            collection_id: "c".into(),
            next_token: None,
            max_results: None,
            user_id: Some("alice".into()),
            face_ids: None,
        })
        .unwrap();
    assert_eq!(listed.faces.len(), 3);
    assert!(listed.faces.iter().all(|f| f.user_id.as_deref() == Some("alice")));
    let del = block_on(c.delete_faces(&del_req("c", &[alice[0].clone(), ghost.clone(), bob[0].clone()]))).unwrap();
    assert_eq!(del.deleted_faces, vec![bob[0].clone()]);
    let reasons: Vec<_> = del.unsuccessful_face_deletions.iter().map(|u| u.reasons[0]).collect();
    assert_eq!(reasons, vec![DeletionFailureReason::AssociatedToAnExistingUser, DeletionFailureReason::FaceNotFound]);
    assert_eq!(name(block_on(c.delete_faces(&del_req("c", &[]))).unwrap_err()), "InvalidParameterException");
    assert_eq!(
        name(block_on(c.delete_faces(&del_req("c", &vec![ghost.clone(); 4097]))).unwrap_err()),
        "InvalidParameterException"
    );
    assert_eq!(
        name(block_on(c.delete_faces(&del_req("c", &["not-a-uuid".into()]))).unwrap_err()),
        "InvalidParameterException"
    );

    // Disassociate one, then DeleteUser disassociates the rest; faces stay.
    let out = block_on(c.disassociate_faces(&disassoc("c", "alice", &[alice[2].clone(), ghost], None))).unwrap();
    assert_eq!(out.disassociated_faces.len(), 1);
    assert_eq!(out.unsuccessful_face_disassociations[0].reasons, vec![DisassociationFailureReason::FaceNotFound]);
    block_on(c.delete_user(&user("c", "alice", None))).unwrap();
    assert_eq!(name(block_on(c.delete_user(&user("c", "alice", None))).unwrap_err()), "ResourceNotFoundException");
    assert_eq!(c.describe_collection(&coll("c")).unwrap().face_count, 3);
    assert_eq!(c.describe_collection(&coll("c")).unwrap().user_count, 1);
    let del = block_on(c.delete_faces(&del_req("c", &[alice[0].clone()]))).unwrap();
    assert_eq!(del.deleted_faces.len(), 1);
    for max in [0, 501] {
        assert_eq!(name(c.list_users(&users_req("c", Some(max), None)).unwrap_err()), "InvalidParameterException");
    }
}

#[test]
fn a_user_holds_at_most_100_faces() {
    let mut c = open(MemoryStore::default(), 1);
    block_on(c.create_collection(&coll("c"))).unwrap();
    block_on(c.create_user(&user("c", "u", None))).unwrap();
    let faces: Vec<String> = (0..101).flat_map(|i| index(&mut c, "c", &format!("i{i}"), &[vector(0, i % 2)])).collect();
    let input = |ids: &[String]| AssociateFacesInput {
        collection_id: "c".into(),
        user_id: "u".into(),
        face_ids: ids.to_vec(),
        user_match_threshold: Some(0.0),
        client_request_token: None,
    };
    block_on(c.associate_faces(&input(&faces[..100]))).unwrap();
    let e = block_on(c.associate_faces(&input(&faces[100..]))).unwrap_err();
    assert_eq!(name(e), "ServiceQuotaExceededException");
    assert_eq!(
        c.list_faces(&ListFacesInput {
            collection_id: "c".into(),
            next_token: None,
            max_results: None,
            user_id: Some("u".into()),
            face_ids: None
        })
        .unwrap()
        .faces
        .len(),
        100
    );
}

#[test]
fn searches_rank_thresholds_and_exclusions() {
    let mut c = open(MemoryStore::default(), 1);
    block_on(c.create_collection(&coll("c"))).unwrap();
    let a: Vec<String> = (0..3).flat_map(|i| index(&mut c, "c", &format!("a{i}"), &[vector(0, i)])).collect();
    let _b = index(&mut c, "c", "b", &[vector(7, 0)]);
    let out = c.search_faces(&sf("c", &a[0], None, None)).unwrap();
    assert!(out.face_matches.iter().all(|m| m.face.face_id != a[0]), "the searched face is excluded");
    assert_eq!(out.face_matches.len(), 2, "the other person is below 80");
    assert!(out.face_matches.windows(2).all(|w| w[0].similarity >= w[1].similarity));
    assert_eq!(c.search_faces(&sf("c", &a[0], Some(0.0), Some(1))).unwrap().face_matches.len(), 1);
    assert_eq!(name(c.search_faces(&sf("c", &a[0], Some(101.0), None)).unwrap_err()), "InvalidParameterException");
    assert_eq!(name(c.search_faces(&sf("c", &a[0], None, Some(4097))).unwrap_err()), "InvalidParameterException");
    assert!(c.search_faces(&sf("c", &a[0], None, Some(4096))).is_ok());
    assert_eq!(
        name(c.search_faces(&sf("c", "00000000-0000-4000-8000-000000000000", None, None)).unwrap_err()),
        "ResourceNotFoundException"
    );

    let by_image = c.search_faces_by_analyzed(&sfi("c", None, None, None), image(&[vector(0, 1)])).unwrap();
    assert_eq!(by_image.face_matches.len(), 3);
    assert_eq!(by_image.searched_face_confidence, 99.0);
    assert_eq!(
        name(c.search_faces_by_analyzed(&sfi("c", None, None, None), image(&[])).unwrap_err()),
        "InvalidParameterException"
    );

    block_on(c.create_user(&user("c", "a", None))).unwrap();
    block_on(c.associate_faces(&AssociateFacesInput {
        collection_id: "c".into(),
        user_id: "a".into(),
        face_ids: a.clone(),
        user_match_threshold: None,
        client_request_token: None,
    }))
    .unwrap();
    let users = c.search_users_by_analyzed(&sui("c", None, None, None), image(&[vector(0, 2), vector(7, 0)])).unwrap();
    assert_eq!(users.user_matches.len(), 1);
    assert_eq!(users.user_matches[0].user.user_id, "a");
    assert_eq!(users.unsearched_faces.len(), 1);
    assert_eq!(users.unsearched_faces[0].reasons, vec![UnsearchedFaceReason::FaceNotLargest]);
    let none = c.search_users_by_analyzed(&sui("c", None, None, None), image(&[])).unwrap();
    assert!(none.user_matches.is_empty() && none.searched_face.is_none());
    let by_face = c.search_users(&su("c", None, Some(&a[1]), None, None)).unwrap();
    assert_eq!(by_face.user_matches[0].user.user_id, "a");
    let by_user = c.search_users(&su("c", Some("a"), None, None, None)).unwrap();
    assert!(by_user.user_matches.is_empty(), "a user is excluded from its own search");
    assert_eq!(
        name(c.search_users(&su("c", Some("a"), Some(&a[1]), None, None)).unwrap_err()),
        "InvalidParameterException"
    );
    assert_eq!(
        name(c.search_users(&su("c", Some("a"), None, None, Some(501))).unwrap_err()),
        "InvalidParameterException"
    );
}

#[test]
fn a_failed_write_changes_nothing() {
    let mut c = open(MemoryStore::default(), 1);
    block_on(c.create_collection(&coll("c"))).unwrap();
    let faces = index(&mut c, "c", "i", &[vector(0, 0)]);
    c.store_mut().fail_writes = true;
    let e = block_on(c.index_faces_analyzed(
        &IndexFacesInput { collection_id: "c".into(), external_image_id: None, max_faces: None, quality_filter: None },
        "j",
        image(&[vector(1, 0)]),
    ))
    .unwrap_err();
    assert_eq!(name(e), "StorageException");
    assert!(block_on(c.delete_faces(&del_req("c", &faces))).is_err());
    assert!(block_on(c.create_user(&user("c", "u", None))).is_err());
    assert!(block_on(c.delete_collection(&coll("c"))).is_err());
    assert_eq!(c.describe_collection(&coll("c")).unwrap().face_count, 1);
    assert_eq!(c.describe_collection(&coll("c")).unwrap().user_count, 0);
    c.store_mut().fail_writes = false;
    let reopened = open(c.store().clone(), 1);
    assert_eq!(reopened.describe_collection(&coll("c")).unwrap().face_count, 1);
}

#[test]
fn reopening_restores_everything() {
    let dir = tempfile::tempdir().unwrap();
    let clock = || Box::new(ManualClock::new(5_000));
    let mut c = block_on(Collections::open(DirStore::open(dir.path()).unwrap(), clock(), 3, space())).unwrap();
    block_on(c.create_collection(&coll(".."))).unwrap(); // a legal id that must stay inside the store
    let mut store_c = open(MemoryStore::default(), 9);
    block_on(store_c.create_collection(&coll("x"))).unwrap();
    let faces: Vec<String> = (0..40)
        .map(|i| {
            block_on(c.index_faces_analyzed(
                &IndexFacesInput {
                    collection_id: "..".into(),
                    external_image_id: Some(format!("e{i}")),
                    max_faces: None,
                    quality_filter: None,
                },
                &format!("img{i}"),
                image(&[vector(i % 5, i)]),
            ))
            .unwrap()
            .face_records[0]
                .face
                .face_id
                .clone()
        })
        .collect();
    block_on(c.create_user(&user("..", "u", None))).unwrap();
    block_on(c.associate_faces(&AssociateFacesInput {
        collection_id: "..".into(),
        user_id: "u".into(),
        face_ids: faces[..2].to_vec(),
        user_match_threshold: Some(0.0),
        client_request_token: None,
    }))
    .unwrap();
    block_on(c.delete_faces(&del_req("..", &faces[10..12]))).unwrap();
    let before = c
        .list_faces(&ListFacesInput {
            collection_id: "..".into(),
            next_token: None,
            max_results: None,
            user_id: None,
            face_ids: None,
        })
        .unwrap();
    let snapshot_before = c.snapshot("..").unwrap();
    drop(c);
    assert!(dir.path().join("c-..").is_dir());
    let c = block_on(Collections::open(DirStore::open(dir.path()).unwrap(), clock(), 3, space())).unwrap();
    let after = c
        .list_faces(&ListFacesInput {
            collection_id: "..".into(),
            next_token: None,
            max_results: None,
            user_id: None,
            face_ids: None,
        })
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(after.faces.len(), 38);
    assert_eq!(c.snapshot("..").unwrap(), snapshot_before, "byte-for-byte the same state");

    // A corrupt file fails the open with a typed error.
    let delta = std::fs::read_dir(dir.path().join("c-.."))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("delta-"));
    if let Some(p) = delta {
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n / 2] ^= 0xff;
        std::fs::write(&p, bytes).unwrap();
        let e = block_on(Collections::open(DirStore::open(dir.path()).unwrap(), clock(), 3, space())).err().unwrap();
        assert_eq!(e.exception_name(), "InvalidSnapshotException");
    }
}

#[test]
fn reload_picks_up_another_writer_and_keeps_own_writes() {
    // Two instances over one directory and one replica id, as two browser tabs share one
    // IndexedDB: each reloads before it writes (the tabs hold a lock for that), so their
    // stamps never collide.
    let dir = tempfile::tempdir().unwrap();
    let open_dir = || {
        block_on(Collections::open(DirStore::open(dir.path()).unwrap(), Box::new(ManualClock::new(5_000)), 3, space()))
            .unwrap()
    };
    let mut a = open_dir();
    block_on(a.create_collection(&coll("shared"))).unwrap();
    let mut b = open_dir();
    block_on(a.index_faces_analyzed(
        &IndexFacesInput {
            collection_id: "shared".into(),
            external_image_id: None,
            max_faces: None,
            quality_filter: None,
        },
        "img-a",
        image(&[vector(1, 0)]),
    ))
    .unwrap();
    assert_eq!(b.describe_collection(&coll("shared")).unwrap().face_count, 0, "b has not reloaded yet");
    block_on(b.reload()).unwrap();
    block_on(b.create_user(&user("shared", "ben", None))).unwrap();
    block_on(a.reload()).unwrap();
    for c in [&a, &b] {
        let d = c.describe_collection(&coll("shared")).unwrap();
        assert_eq!((d.face_count, d.user_count), (1, 1));
    }
    assert_eq!(a.snapshot("shared").unwrap(), b.snapshot("shared").unwrap());
    block_on(a.delete_user(&user("shared", "ben", None))).unwrap();
    block_on(b.reload()).unwrap();
    assert_eq!(b.describe_collection(&coll("shared")).unwrap().user_count, 0);
    assert_eq!(a.snapshot("shared").unwrap(), b.snapshot("shared").unwrap());
}

/// A store that keeps nothing and counts what it is asked to write.
#[derive(Default)]
struct Discarding {
    appends: usize,
    replaces: usize,
}

impl Store for Discarding {
    async fn load(&mut self) -> Result<Vec<PersistedCollection>> {
        Ok(Vec::new())
    }
    async fn append(&mut self, _: &str, _: &[u8]) -> Result<()> {
        self.appends += 1;
        Ok(())
    }
    async fn replace(&mut self, _: &str, _: &[u8]) -> Result<()> {
        self.replaces += 1;
        Ok(())
    }
    async fn remove(&mut self, _: &str) -> Result<()> {
        Ok(())
    }
    fn persists(&self) -> bool {
        false
    }
}

#[test]
fn a_store_that_keeps_nothing_is_never_asked_for_snapshots() {
    let mut c = block_on(Collections::open(Discarding::default(), Box::new(ManualClock::new(1)), 4, space())).unwrap();
    block_on(c.create_collection(&coll("m"))).unwrap();
    // Far past the 64 KiB of deltas that folds a snapshot in a persisting store.
    for i in 0..400 {
        let input = IndexFacesInput {
            collection_id: "m".into(),
            external_image_id: None,
            max_faces: None,
            quality_filter: None,
        };
        block_on(c.index_faces_analyzed(&input, &format!("img{i}"), image(&[vector(i % 7, i)]))).unwrap();
    }
    assert_eq!(c.describe_collection(&coll("m")).unwrap().face_count, 400);
    assert_eq!((c.store().appends, c.store().replaces), (401, 0));
}
