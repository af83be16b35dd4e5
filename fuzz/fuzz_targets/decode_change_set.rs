//! Any bytes through the snapshot/delta decoder: a typed error or a change set that
//! re-encodes and decodes to itself, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use likeness_collections::codec;

fuzz_target!(|data: &[u8]| {
    if let Ok(cs) = codec::decode(data) {
        let bytes = codec::encode(&cs).expect("a decoded change set encodes");
        let again = codec::decode(&bytes).expect("re-encoded change set decodes");
        assert_eq!(again, cs);
    }
});
