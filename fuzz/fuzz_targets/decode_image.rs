//! Any bytes through the image decoding path: a typed error or an image, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use likeness_vision::{decode, ImageInput};

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = decode(ImageInput::Encoded(data)) {
        let i = &img.image;
        assert_eq!(i.pixels.len(), i.width as usize * i.height as usize * 3);
    }
});
