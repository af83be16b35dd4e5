//! The vector space's constants and arithmetic, needed wherever face vectors are stored or
//! compared, with or without the engine that makes them.

/// Identifies the vector space: vectors from different versions must never be compared.
/// Bump when the model, preprocessing or alignment template changes.
pub const FACE_MODEL_VERSION: &str = "likeness-dlib-resnet-2";

/// Length of the face vectors (checked against the model when it loads).
pub const EMBEDDING_DIMENSION: usize = 128;

/// Scale to unit length in place; a zero vector stays zero.
pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 && n.is_finite() {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
