//! kill -9 during a stream of pushes, on a SQLite file (`tests/postgres.rs` does the same on
//! PostgreSQL).

mod common;

#[test]
fn every_acknowledged_push_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    common::scenarios::every_acknowledged_push_survives_kill_9(&format!(
        "sqlite://{}",
        dir.path().join("server.db").display()
    ));
}
