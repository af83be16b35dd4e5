//! The server's scenarios (`common/scenarios.rs`) on SQLite files, in-process.

mod common;
use common::{scenarios, Backend};

#[test]
fn push_is_idempotent_pull_pages_and_snapshots_fold_the_log() {
    scenarios::push_is_idempotent_pull_pages_and_snapshots_fold_the_log(&Backend::Sqlite);
}

#[test]
fn invites_are_single_use_and_expire() {
    scenarios::invites_are_single_use_and_expire(&Backend::Sqlite);
}

#[test]
fn groups_are_isolated_and_revoked_devices_refused() {
    scenarios::groups_are_isolated_and_revoked_devices_refused(&Backend::Sqlite);
}

#[test]
fn a_device_with_the_wrong_key_is_refused_before_it_writes() {
    scenarios::a_device_with_the_wrong_key_is_refused_before_it_writes(&Backend::Sqlite);
}

#[test]
fn limits_are_typed_refusals() {
    scenarios::limits_are_typed_refusals(&Backend::Sqlite);
}

#[test]
fn a_connected_device_hears_of_new_records_within_a_second() {
    scenarios::a_connected_device_hears_of_new_records_within_a_second(&Backend::Sqlite);
}

#[test]
fn the_database_files_hold_nothing_in_the_clear() {
    scenarios::the_database_files_hold_nothing_in_the_clear(&Backend::Sqlite);
}
