//! The binary change-set format: snapshots and deltas are the same thing, a list of
//! operations with a header, so a snapshot is simply "every operation since nothing".
//!
//! ```text
//! "LKNS" | format u16 (=2) | kind u8 (0 snapshot, 1 delta) | 0u8
//! section*: tag u8 | length u32 LE | payload
//!   1 HEADER  collection id, FaceModelVersion, vector dimension
//!   2 VERSION version vector: the state the sender had
//!   3 OPS     operations
//!   4 FLOOR   version vector below which tombstones were compacted (own snapshots only)
//!   other tags are skipped (newer writers may add sections)
//! 0xFF | 4 | CRC-32 of every byte before it
//! ```
//!
//! Little-endian throughout and no platform-sized integers, so wasm and native read each
//! other's bytes. Every length is checked before it is trusted; any defect is a typed
//! [`CollectionError::InvalidSnapshot`] and nothing partial is returned. Encoding refuses
//! (rather than truncates) anything past the format's limits: a `u32` length per string,
//! vector, operation count and section.
//!
//! Format 2 (written since the int8 store) holds FaceIds and ImageIds as 16 raw bytes and
//! each face vector as its canonical int8 codes, `dimension` bytes with no length (about
//! 250 bytes per face, against 709 in format 1). Format 1 held ids as strings and vectors as
//! f32; [`decode`] reads both, turning a format-1 unit vector into its codes, so stores and
//! peers written by older builds still load. Format-1 builds also wrote a removed face as an
//! AddFace with an empty vector followed by its RemoveFace; [`decode`] keeps only the
//! removal. Golden files in `tests/golden/` pin both formats.

use crate::error::{CollectionError, Result};
use crate::hlc::{Hlc, VersionVector};
use crate::ids::Uuid;
use crate::search::{is_canonical, quantize};
use crate::state::{CollectionMeta, Op, OpKind, StoredFace, UserValue};
use likeness_vision::BoundingBox;

pub const MAGIC: &[u8; 4] = b"LKNS";
/// The format this build writes.
pub const FORMAT_VERSION: u16 = 2;
/// The oldest format this build reads.
pub const OLDEST_FORMAT: u16 = 1;
/// Largest deviation from unit length of a format-1 (f32) vector.
const V1_UNIT_TOLERANCE: f32 = 1e-3;
const TAG_HEADER: u8 = 1;
const TAG_VERSION: u8 = 2;
const TAG_OPS: u8 = 3;
const TAG_FLOOR: u8 = 4;
const TAG_CHECKSUM: u8 = 0xFF;
/// Longest vector accepted from a change set.
const MAX_DIMENSION: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Snapshot,
    Delta,
}

/// Decoded change set.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeSet {
    pub kind: ChangeKind,
    pub collection_id: String,
    pub face_model_version: String,
    pub dimension: u32,
    /// The sender's claim of what it has seen. Informational: receivers derive their own
    /// version vector from the operations they apply.
    pub version: VersionVector,
    pub ops: Vec<Op>,
    /// Compaction floor of the writer's own state (empty in deltas).
    pub floor: VersionVector,
}

fn bad(msg: impl Into<String>) -> CollectionError {
    CollectionError::InvalidSnapshot(msg.into())
}

/// Appends little-endian fields; a length past `u32` marks the writer as failed, and
/// [`encode`] then refuses the whole change set.
#[derive(Default)]
struct Writer(Vec<u8>, bool);

impl Writer {
    fn len32(&mut self, n: usize) {
        match u32::try_from(n) {
            Ok(n) => self.u32(n),
            Err(_) => {
                self.1 = true;
                self.u32(0)
            }
        }
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v)
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes())
    }
    fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes())
    }
    fn str(&mut self, s: &str) {
        self.len32(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s)
            }
            None => self.u8(0),
        }
    }
    fn uuid(&mut self, format: u16, id: &Uuid) {
        if format == 1 {
            self.str(&id.to_string())
        } else {
            self.0.extend_from_slice(&id.0)
        }
    }
    fn hlc(&mut self, h: Hlc) {
        self.u64(h.millis);
        self.u32(h.counter);
        self.u64(h.replica);
    }
    fn section(&mut self, tag: u8, body: Writer) {
        self.u8(tag);
        self.len32(body.0.len());
        self.1 |= body.1;
        self.0.extend_from_slice(&body.0);
    }
    fn version(&mut self, v: &VersionVector) {
        self.len32(v.0.len());
        for s in v.0.values() {
            self.hlc(*s);
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end =
            self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| bad("truncated change set"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| bad("truncated"))?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| bad("truncated"))?))
    }
    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(self.take(4)?.try_into().map_err(|_| bad("truncated"))?))
    }
    fn str(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| bad("string is not UTF-8"))
    }
    fn opt_str(&mut self) -> Result<Option<String>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            t => Err(bad(format!("bad option tag {t}"))),
        }
    }
    fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            t => Err(bad(format!("bad boolean {t}"))),
        }
    }
    fn uuid(&mut self, format: u16, what: &str) -> Result<Uuid> {
        if format == 1 {
            let s = self.str()?;
            Uuid::parse(&s).ok_or_else(|| bad(format!("{what} {s:?} is not a lowercase UUID")))
        } else {
            let b = self.take(16)?;
            let mut id = [0u8; 16];
            id.copy_from_slice(b);
            Ok(Uuid(id))
        }
    }
    fn hlc(&mut self) -> Result<Hlc> {
        Ok(Hlc { millis: self.u64()?, counter: self.u32()?, replica: self.u64()? })
    }
    fn done(&self) -> bool {
        self.pos == self.buf.len()
    }
}

fn write_op(w: &mut Writer, format: u16, op: &Op) {
    w.hlc(op.stamp);
    match &op.kind {
        OpKind::Meta(m) => {
            w.u8(1);
            w.u8(m.live as u8);
            w.str(&m.face_model_version);
            w.u64(m.created_millis);
        }
        OpKind::AddFace(f) => {
            w.u8(2);
            w.uuid(format, &f.face_id);
            w.uuid(format, &f.image_id);
            w.opt_str(f.external_image_id.as_deref());
            let b = f.bounding_box;
            for v in [b.width, b.height, b.left, b.top, f.confidence] {
                w.f32(v);
            }
            if format == 1 {
                w.len32(f.vector.len());
                for v in crate::search::dequantize(&f.vector) {
                    w.f32(v);
                }
            } else {
                w.0.extend(f.vector.iter().map(|&c| c as u8));
            }
        }
        OpKind::RemoveFace { face_id } => {
            w.u8(3);
            w.uuid(format, face_id);
        }
        OpKind::User { user_id, value } => {
            w.u8(4);
            w.str(user_id);
            w.u8(value.live as u8);
            w.opt_str(value.client_request_token.as_deref());
        }
        OpKind::Associate { face_id, user_id } => {
            w.u8(5);
            w.uuid(format, face_id);
            w.opt_str(user_id.as_deref());
        }
    }
}

/// A face vector: format 2's canonical codes, or format 1's f32 unit vector (empty for the
/// old tombstone form) turned into codes.
fn read_vector(r: &mut Reader<'_>, format: u16, dimension: usize) -> Result<Vec<i8>> {
    if format >= 2 {
        let codes: Vec<i8> = r.take(dimension)?.iter().map(|&b| b as i8).collect();
        if !is_canonical(&codes) {
            return Err(bad("face vector is not in canonical int8 form"));
        }
        return Ok(codes);
    }
    let n = r.u32()? as usize;
    if n != 0 && n != dimension {
        return Err(bad(format!("face vector has {n} values; the collection's dimension is {dimension}")));
    }
    let raw = r.take(n.checked_mul(4).ok_or_else(|| bad("face vector too long"))?)?;
    let vector: Vec<f32> = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    if vector.iter().any(|v| !v.is_finite()) {
        return Err(bad("face vector holds a non-finite value"));
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if (norm - 1.0).abs() > V1_UNIT_TOLERANCE {
        return Err(bad(format!("face vector has length {norm}; stored vectors are unit vectors")));
    }
    Ok(quantize(&vector))
}

fn read_op(r: &mut Reader<'_>, format: u16, dimension: usize) -> Result<Op> {
    let stamp = r.hlc()?;
    let kind = match r.u8()? {
        1 => OpKind::Meta(CollectionMeta { live: r.bool()?, face_model_version: r.str()?, created_millis: r.u64()? }),
        2 => {
            let face_id = r.uuid(format, "FaceId")?;
            let image_id = r.uuid(format, "ImageId")?;
            let external_image_id = r.opt_str()?;
            let bounding_box = BoundingBox { width: r.f32()?, height: r.f32()?, left: r.f32()?, top: r.f32()? };
            let confidence = r.f32()?;
            let vector = read_vector(r, format, dimension)?;
            OpKind::AddFace(StoredFace { face_id, image_id, external_image_id, bounding_box, confidence, vector })
        }
        3 => OpKind::RemoveFace { face_id: r.uuid(format, "FaceId")? },
        4 => {
            OpKind::User { user_id: r.str()?, value: UserValue { live: r.bool()?, client_request_token: r.opt_str()? } }
        }
        5 => OpKind::Associate { face_id: r.uuid(format, "FaceId")?, user_id: r.opt_str()? },
        t => return Err(bad(format!("unknown operation type {t}"))),
    };
    Ok(Op { stamp, kind })
}

/// Encode a change set in the current format; refuses one past the format's limits (a
/// section over 4 GiB).
pub fn encode(cs: &ChangeSet) -> Result<Vec<u8>> {
    encode_format(cs, FORMAT_VERSION)
}

/// Encode in an older format this build still reads (compatibility tests, and peers that
/// have not upgraded).
pub fn encode_format(cs: &ChangeSet, format: u16) -> Result<Vec<u8>> {
    if !(OLDEST_FORMAT..=FORMAT_VERSION).contains(&format) {
        return Err(bad(format!("format {format} cannot be written")));
    }
    if format >= 2
        && cs.ops.iter().any(|op| matches!(&op.kind, OpKind::AddFace(f) if f.vector.len() != cs.dimension as usize))
    {
        return Err(bad("a face vector does not match the change set's dimension"));
    }
    let mut w = Writer::default();
    w.0.extend_from_slice(MAGIC);
    w.0.extend_from_slice(&format.to_le_bytes());
    w.u8(match cs.kind {
        ChangeKind::Snapshot => 0,
        ChangeKind::Delta => 1,
    });
    w.u8(0);
    let mut h = Writer::default();
    h.str(&cs.collection_id);
    h.str(&cs.face_model_version);
    h.u32(cs.dimension);
    w.section(TAG_HEADER, h);
    let mut v = Writer::default();
    v.version(&cs.version);
    w.section(TAG_VERSION, v);
    let mut o = Writer::default();
    o.len32(cs.ops.len());
    for op in &cs.ops {
        write_op(&mut o, format, op);
    }
    w.section(TAG_OPS, o);
    if !cs.floor.0.is_empty() {
        let mut f = Writer::default();
        f.version(&cs.floor);
        w.section(TAG_FLOOR, f);
    }
    if w.1 {
        return Err(CollectionError::ServiceQuotaExceeded(
            "the change set exceeds the format's limits (4 GiB per section, 2^32 entries per list)".into(),
        ));
    }
    let crc = crc32fast::hash(&w.0);
    w.u8(TAG_CHECKSUM);
    w.u32(4);
    w.u32(crc);
    Ok(w.0)
}

fn read_version(payload: &[u8]) -> Result<VersionVector> {
    let mut r = Reader { buf: payload, pos: 0 };
    let n = r.u32()? as usize;
    if n > payload.len() / 20 {
        return Err(bad("version vector count exceeds its section"));
    }
    let mut version = VersionVector::default();
    for _ in 0..n {
        version.observe(r.hlc()?);
    }
    Ok(version)
}

/// Decode and verify a change set; any defect is an error and nothing is returned.
pub fn decode(bytes: &[u8]) -> Result<ChangeSet> {
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(bad("not a Likeness change set (bad magic)"));
    }
    let format = u16::from_le_bytes([bytes[4], bytes[5]]);
    if !(OLDEST_FORMAT..=FORMAT_VERSION).contains(&format) {
        return Err(bad(format!("change set format {format} is newer than this build reads ({FORMAT_VERSION})")));
    }
    if bytes.len() < 17 {
        return Err(bad("truncated change set"));
    }
    let (body, trailer) = bytes.split_at(bytes.len() - 9);
    if trailer[0] != TAG_CHECKSUM || trailer[1..5] != 4u32.to_le_bytes() {
        return Err(bad("truncated change set (no checksum)"));
    }
    let stored = u32::from_le_bytes([trailer[5], trailer[6], trailer[7], trailer[8]]);
    if crc32fast::hash(body) != stored {
        return Err(bad("checksum mismatch: the change set is corrupt"));
    }
    let kind = match bytes[6] {
        0 => ChangeKind::Snapshot,
        1 => ChangeKind::Delta,
        k => return Err(bad(format!("unknown change set kind {k}"))),
    };
    let mut r = Reader { buf: body, pos: 8 };
    let mut header = None;
    let mut version = VersionVector::default();
    let mut floor = VersionVector::default();
    let mut ops_section = None;
    while !r.done() {
        let tag = r.u8()?;
        let len = r.u32()? as usize;
        let payload = r.take(len)?;
        match tag {
            TAG_HEADER => {
                let mut h = Reader { buf: payload, pos: 0 };
                header = Some((h.str()?, h.str()?, h.u32()?));
            }
            TAG_VERSION => version = read_version(payload)?,
            TAG_FLOOR => floor = read_version(payload)?,
            TAG_OPS => ops_section = Some(payload),
            _ => {} // a newer writer's section: skip
        }
    }
    let (collection_id, face_model_version, dimension) = header.ok_or_else(|| bad("change set has no header"))?;
    if dimension as usize > MAX_DIMENSION {
        return Err(bad(format!("vector dimension {dimension} is out of range")));
    }
    let mut ops = Vec::new();
    if let Some(payload) = ops_section {
        let mut o = Reader { buf: payload, pos: 0 };
        let n = o.u32()? as usize;
        // Each op takes at least 21 bytes: refuse counts the payload cannot hold.
        if n > payload.len() / 21 {
            return Err(bad("operation count exceeds the payload"));
        }
        ops.reserve(n);
        for _ in 0..n {
            ops.push(read_op(&mut o, format, dimension as usize)?);
        }
        if !o.done() {
            return Err(bad("trailing bytes after the operations"));
        }
    }
    drop_v1_tombstone_adds(&mut ops)?;
    Ok(ChangeSet { kind, collection_id, face_model_version, dimension, version, ops, floor })
}

/// Earlier builds sent a removed face as an AddFace with an empty vector beside its
/// RemoveFace. Keep the removal only; an empty vector without a removal is malformed.
fn drop_v1_tombstone_adds(ops: &mut Vec<Op>) -> Result<()> {
    let removed: std::collections::BTreeSet<Uuid> = ops
        .iter()
        .filter_map(|op| match &op.kind {
            OpKind::RemoveFace { face_id } => Some(*face_id),
            _ => None,
        })
        .collect();
    let mut orphan = None;
    let keep: Vec<bool> = ops
        .iter()
        .map(|op| match &op.kind {
            OpKind::AddFace(f) if f.vector.is_empty() => {
                if !removed.contains(&f.face_id) {
                    orphan = Some(f.face_id);
                }
                false
            }
            _ => true,
        })
        .collect();
    if orphan.is_some() {
        return Err(bad("a face has an empty vector and no removal"));
    }
    let mut i = 0;
    ops.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face() -> Uuid {
        Uuid([0xab; 16])
    }

    fn sample() -> ChangeSet {
        let stamp = Hlc { millis: 5, counter: 1, replica: 9 };
        let mut version = VersionVector::default();
        version.observe(stamp);
        ChangeSet {
            kind: ChangeKind::Snapshot,
            collection_id: "c1".into(),
            face_model_version: "v".into(),
            dimension: 2,
            version,
            ops: vec![
                Op {
                    stamp,
                    kind: OpKind::Meta(CollectionMeta {
                        live: true,
                        face_model_version: "v".into(),
                        created_millis: 5,
                    }),
                },
                Op {
                    stamp,
                    kind: OpKind::AddFace(StoredFace {
                        face_id: face(),
                        image_id: Uuid([7; 16]),
                        external_image_id: Some("x:y".into()),
                        bounding_box: BoundingBox { width: 0.1, height: 0.2, left: 0.3, top: 0.4 },
                        confidence: 99.0,
                        vector: quantize(&[0.6, 0.8]),
                    }),
                },
                Op { stamp, kind: OpKind::Associate { face_id: face(), user_id: Some("u".into()) } },
            ],
            floor: VersionVector::default(),
        }
    }

    #[test]
    fn round_trips() {
        let cs = sample();
        assert_eq!(decode(&encode(&cs).unwrap()).unwrap(), cs);
        assert_eq!(decode(&encode_format(&cs, 1).unwrap()).unwrap(), cs, "format 1 keeps the same codes");
        assert!(encode(&cs).unwrap().len() < encode_format(&cs, 1).unwrap().len());
        let mut with_floor = cs.clone();
        with_floor.floor.observe(Hlc { millis: 3, counter: 0, replica: 9 });
        assert_eq!(decode(&encode(&with_floor).unwrap()).unwrap(), with_floor);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_rejected() {
        for bytes in [encode(&sample()).unwrap(), encode_format(&sample(), 1).unwrap()] {
            for n in 0..bytes.len() {
                assert!(matches!(decode(&bytes[..n]), Err(CollectionError::InvalidSnapshot(_))), "prefix {n}");
            }
            for i in 0..bytes.len() {
                let mut b = bytes.clone();
                b[i] ^= 0x10;
                assert!(decode(&b).is_err(), "flip at {i}");
            }
        }
    }

    #[test]
    fn format_1_vectors_must_be_unit_and_format_2_codes_canonical() {
        let mut cs = sample();
        let OpKind::AddFace(f) = &mut cs.ops[1].kind else { unreachable!() };
        f.vector = vec![50, 60];
        let e = decode(&encode(&cs).unwrap()).unwrap_err();
        assert!(e.to_string().contains("canonical"), "{e}");
        // The same codes written as format 1 decode to their unit vector's codes.
        let v1 = decode(&encode_format(&cs, 1).unwrap()).unwrap();
        let OpKind::AddFace(f) = &v1.ops[1].kind else { unreachable!() };
        assert_eq!(f.vector, quantize(&[50.0, 60.0]));
    }

    #[test]
    fn newer_format_is_a_typed_error() {
        let mut bytes = encode(&sample()).unwrap();
        bytes[4] = 9;
        let e = decode(&bytes).unwrap_err();
        assert!(e.to_string().contains("newer"), "{e}");
    }

    #[test]
    fn an_empty_vector_is_read_only_as_a_v1_tombstone() {
        let mut cs = sample();
        let OpKind::AddFace(f) = &mut cs.ops[1].kind else { unreachable!() };
        f.vector.clear();
        assert!(encode(&cs).is_err(), "format 2 has no empty vectors");
        let bytes = encode_format(&cs, 1).unwrap();
        assert!(matches!(decode(&bytes), Err(CollectionError::InvalidSnapshot(_))), "no removal: malformed");
        let removal =
            Op { stamp: Hlc { millis: 6, counter: 0, replica: 9 }, kind: OpKind::RemoveFace { face_id: face() } };
        cs.ops.push(removal.clone());
        let decoded = decode(&encode_format(&cs, 1).unwrap()).unwrap();
        assert!(decoded.ops.iter().all(|op| !matches!(op.kind, OpKind::AddFace(_))), "{:?}", decoded.ops);
        assert!(decoded.ops.contains(&removal));
    }

    #[test]
    fn lengths_past_u32_are_refused_not_truncated() {
        let mut w = Writer::default();
        w.len32(u32::MAX as usize + 1);
        assert!(w.1, "the writer notes the overflow");
        let mut outer = Writer::default();
        outer.section(TAG_OPS, w);
        assert!(outer.1, "and it reaches the change set");
    }
}
