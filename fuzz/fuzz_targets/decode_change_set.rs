//! Any bytes through the snapshot/delta decoder: a typed error or a change set that
//! re-encodes to the same bytes it was read from, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use likeness_collections::codec;

fuzz_target!(|data: &[u8]| {
    if let Ok(cs) = codec::decode(data) {
        let again = codec::decode(&codec::encode(&cs)).expect("re-encoded change set decodes");
        assert_eq!(again, cs);
    }
});
