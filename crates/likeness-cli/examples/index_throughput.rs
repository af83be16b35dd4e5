//! IndexFaces throughput: index every image under a folder into a fresh directory store
//! (decode, detect, align, embed, quality filter, one fsynced delta per call), one thread.
//! Usage: cargo run --release --example index_throughput -- IMAGE_DIR

use likeness_collections::{
    block_on, CollectionInput, Collections, DirStore, IndexFacesInput, SystemClock, VectorSpace,
};
use likeness_vision::{FaceEngine, ImageInput};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: index_throughput IMAGE_DIR")?;
    let mut files = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d)?.filter_map(|e| e.ok()) {
            if e.path().is_dir() {
                stack.push(e.path())
            } else {
                files.push(e.path())
            }
        }
    }
    files.sort();
    let engine = FaceEngine::embedded()?;
    let store_dir = std::env::temp_dir().join(format!("likeness-throughput-{}", std::process::id()));
    let mut c =
        block_on(Collections::open(DirStore::open(&store_dir)?, Box::new(SystemClock), 1, VectorSpace::of(&engine)))?;
    // One process owns this store: hold its write lock for the whole run.
    c.store_mut().lock()?;
    block_on(c.create_collection(&CollectionInput { collection_id: "bench".into() }))?;
    let t = Instant::now();
    let mut faces = 0;
    for f in &files {
        let bytes = std::fs::read(f)?;
        let input = IndexFacesInput {
            collection_id: "bench".into(),
            external_image_id: None,
            max_faces: None,
            quality_filter: None,
        };
        faces += block_on(c.index_faces_image(&engine, &input, ImageInput::Encoded(&bytes)))?.face_records.len();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{} images, {faces} faces indexed in {secs:.1} s: {:.2} images/s, {:.0} ms per image",
        files.len(),
        files.len() as f64 / secs,
        secs * 1e3 / files.len() as f64
    );
    std::fs::remove_dir_all(&store_dir)?;
    Ok(())
}
