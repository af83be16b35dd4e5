//! Any bytes through the snapshot/delta decoder (formats 1 and 2): a typed error or a change
//! set that re-encodes in either format and decodes to itself, never a panic. Every vector
//! it returns is canonical int8 codes of the header's dimension.
#![no_main]
use libfuzzer_sys::fuzz_target;
use likeness_collections::codec;
use likeness_collections::search::is_canonical;
use likeness_collections::state::OpKind;

fuzz_target!(|data: &[u8]| {
    if let Ok(cs) = codec::decode(data) {
        for op in &cs.ops {
            if let OpKind::AddFace(f) = &op.kind {
                assert!(f.vector.len() == cs.dimension as usize && is_canonical(&f.vector));
            }
        }
        for format in [codec::FORMAT_VERSION, codec::OLDEST_FORMAT] {
            let bytes = codec::encode_format(&cs, format).expect("a decoded change set encodes");
            let again = codec::decode(&bytes).expect("re-encoded change set decodes");
            assert_eq!(again, cs);
        }
    }
});
