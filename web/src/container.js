// Video containers, read in JS: MP4 (ISO BMFF) and WebM/Matroska.
// - `probeVideo`: what a file says about itself, for GetFaceSearch's VideoMetadata
//   (container, codec, frame size, frame rate, duration), from headers read through
//   Blob.slice, so a large file is never loaded whole. Anything unreadable is left null: the
//   browser's decoder judges whether a video plays, this only describes it.
// - `demuxVideo`: the video track's encoded frames (timestamps, key flags, bytes) and the
//   WebCodecs decoder config, so stored-video search decodes with VideoDecoder as fast as the
//   CPU allows and picks sampled frames by exact timestamp. Null for what it does not read
//   (the caller then plays the file in a <video>).

const MAX_BOX = 64 << 20; // an MP4 'moov' larger than this is not a header we read
const EBML_SCAN = 1 << 20; // WebM headers (Info, Tracks) come before the first Cluster

const ascii = (bytes, at, n) => String.fromCharCode(...bytes.subarray(at, at + n));

async function read(blob, start, end) {
  return new Uint8Array(await blob.slice(start, Math.min(end, blob.size)).arrayBuffer());
}

/** `{format, codec, frameWidth, frameHeight, frameRate, durationMillis}`; unknown fields null. */
export async function probeVideo(blob) {
  const empty = { format: null, codec: null, frameWidth: null, frameHeight: null, frameRate: null, durationMillis: null };
  const head = await read(blob, 0, 64);
  try {
    if (head.length >= 12 && ascii(head, 4, 4) === 'ftyp') return { ...empty, ...(await probeMp4(blob)) };
    if (head.length >= 4 && head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3) {
      return { ...empty, ...probeEbml(await read(blob, 0, EBML_SCAN)) };
    }
  } catch {
    // A damaged header: describe nothing; the decoder decides whether it plays.
  }
  return empty;
}

// ---- MP4 / QuickTime: boxes of (u32 size, fourcc), size 1 = u64 follows, 0 = to the end.

function boxes(bytes, start = 0, end = bytes.length) {
  const out = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = start;
  while (at + 8 <= end) {
    let size = view.getUint32(at);
    let header = 8;
    if (size === 1) {
      if (at + 16 > end) break;
      size = Number(view.getBigUint64(at + 8));
      header = 16;
    } else if (size === 0) {
      size = end - at;
    }
    if (size < header || at + size > end) break;
    out.push({ type: ascii(bytes, at + 4, 4), start: at + header, end: at + size });
    at += size;
  }
  return out;
}

const child = (bytes, box, type, skip = 0) => boxes(bytes, box.start + skip, box.end).find((b) => b.type === type);

async function probeMp4(blob) {
  // Walk the top-level boxes by their headers only, then read 'moov' whole.
  let at = 0;
  let moov = null;
  while (at + 8 <= blob.size) {
    const h = await read(blob, at, at + 16);
    const view = new DataView(h.buffer);
    let size = view.getUint32(0);
    if (size === 1 && h.length >= 16) size = Number(view.getBigUint64(8));
    else if (size === 0) size = blob.size - at;
    if (size < 8) break;
    if (ascii(h, 4, 4) === 'moov') {
      if (size > MAX_BOX) break;
      moov = await read(blob, at, at + size);
      break;
    }
    at += size;
  }
  const ftyp = await read(blob, 8, 12);
  const format = ascii(ftyp, 0, 4) === 'qt  ' ? 'mov' : 'mp4';
  if (!moov) return { format };
  const root = boxes(moov)[0];
  const view = new DataView(moov.buffer);
  for (const trak of boxes(moov, root.start, root.end).filter((b) => b.type === 'trak')) {
    const mdia = child(moov, trak, 'mdia');
    const hdlr = mdia && child(moov, mdia, 'hdlr');
    if (!hdlr || ascii(moov, hdlr.start + 8, 4) !== 'vide') continue;
    const mdhd = child(moov, mdia, 'mdhd');
    let timescale = 0;
    let duration = 0;
    if (mdhd) {
      const v1 = moov[mdhd.start] === 1;
      timescale = view.getUint32(mdhd.start + (v1 ? 20 : 12));
      duration = v1 ? Number(view.getBigUint64(mdhd.start + 24)) : view.getUint32(mdhd.start + 16);
    }
    const stbl = child(moov, child(moov, mdia, 'minf') ?? mdia, 'stbl');
    let codec = null;
    let frameWidth = null;
    let frameHeight = null;
    let frameRate = null;
    const stsd = stbl && child(moov, stbl, 'stsd');
    if (stsd) {
      const entry = boxes(moov, stsd.start + 8, stsd.end)[0];
      if (entry) {
        codec = { avc1: 'h264', avc3: 'h264', hvc1: 'h265', hev1: 'h265', vp08: 'vp8', vp09: 'vp9', av01: 'av1', mp4v: 'mpeg4' }[entry.type] ?? entry.type.trim();
        frameWidth = view.getUint16(entry.start + 24);
        frameHeight = view.getUint16(entry.start + 26);
      }
    }
    const stts = stbl && child(moov, stbl, 'stts');
    if (stts && timescale > 0) {
      let samples = 0;
      let ticks = 0;
      const n = view.getUint32(stts.start + 4);
      for (let i = 0; i < n && stts.start + 16 + 8 * i <= stts.end; i++) {
        const count = view.getUint32(stts.start + 8 + 8 * i);
        samples += count;
        ticks += count * view.getUint32(stts.start + 12 + 8 * i);
      }
      if (samples > 0 && ticks > 0) frameRate = round2((samples * timescale) / ticks);
    }
    const durationMillis = timescale > 0 && duration > 0 ? Math.round((duration * 1000) / timescale) : null;
    return { format, codec, frameWidth, frameHeight, frameRate, durationMillis };
  }
  return { format };
}

// ---- WebM / Matroska: EBML elements of (variable-length id, variable-length size).

const EBML = {
  DocType: 0x4282,
  Segment: 0x18538067,
  Info: 0x1549a966,
  TimestampScale: 0x2ad7b1,
  Duration: 0x4489,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackType: 0x83,
  CodecID: 0x86,
  DefaultDuration: 0x23e383,
  Video: 0xe0,
  PixelWidth: 0xb0,
  PixelHeight: 0xba,
  Cluster: 0x1f43b675,
};
const MASTERS = new Set([EBML.Segment, EBML.Info, EBML.Tracks, EBML.TrackEntry, EBML.Video, 0x1a45dfa3]);

function vint(bytes, at, keepMarker) {
  const first = bytes[at];
  if (first === undefined || first === 0) return null;
  const length = Math.clz32(first) - 23;
  if (at + length > bytes.length) return null;
  let value = keepMarker ? first : first & (0xff >> length);
  let allOnes = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    value = value * 256 + bytes[at + i];
    if (bytes[at + i] !== 0xff) allOnes = false;
  }
  return { value, length, unknown: !keepMarker && allOnes };
}

function uint(bytes, at, n) {
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + bytes[at + i];
  return v;
}

/**
 * The EBML elements in bytes[start, end): `{id, body, stop}` (the body is bytes[body,
 * stop)). An element of unknown size runs to `end` and is the last one yielded: its children
 * follow it directly, so the caller reads them by descending into it.
 */
function* elements(bytes, start, end) {
  let at = start;
  while (at < end) {
    const id = vint(bytes, at, true);
    if (!id) return;
    const size = vint(bytes, at + id.length, false);
    if (!size) return;
    const body = at + id.length + size.length;
    const stop = size.unknown ? end : Math.min(end, body + size.value);
    yield { id: id.value, body, stop };
    if (size.unknown) return;
    at = stop;
  }
}

function probeEbml(bytes) {
  const out = {};
  let scale = 1e6;
  let duration = null;
  const walk = (start, end, track) => {
    for (const { id, body, stop } of elements(bytes, start, end)) {
      if (id === EBML.Cluster) return;
      if (id === EBML.TrackEntry) {
        const t = {};
        walk(body, stop, t);
        if (t.type === 1 && !out.codec) {
          out.codec = { V_VP8: 'vp8', V_VP9: 'vp9', V_AV1: 'av1', 'V_MPEG4/ISO/AVC': 'h264', 'V_MPEGH/ISO/HEVC': 'h265' }[t.codecId] ?? t.codecId ?? null;
          out.frameWidth = t.width ?? null;
          out.frameHeight = t.height ?? null;
          out.frameRate = t.defaultDuration ? round2(1e9 / t.defaultDuration) : null;
        }
      } else if (MASTERS.has(id)) {
        walk(body, stop, track);
      } else if (stop <= bytes.length) {
        const n = stop - body;
        switch (id) {
          case EBML.DocType:
            out.format = ascii(bytes, body, n).replace(/\0+$/, '');
            break;
          case EBML.TimestampScale:
            scale = uint(bytes, body, n);
            break;
          case EBML.Duration:
            duration = n === 8 ? new DataView(bytes.buffer, body, 8).getFloat64(0) : n === 4 ? new DataView(bytes.buffer, body, 4).getFloat32(0) : null;
            break;
          case EBML.TrackType:
            if (track) track.type = uint(bytes, body, n);
            break;
          case EBML.CodecID:
            if (track) track.codecId = ascii(bytes, body, n).replace(/\0+$/, '');
            break;
          case EBML.DefaultDuration:
            if (track) track.defaultDuration = uint(bytes, body, n);
            break;
          case EBML.PixelWidth:
            if (track) track.width = uint(bytes, body, n);
            break;
          case EBML.PixelHeight:
            if (track) track.height = uint(bytes, body, n);
            break;
        }
      }
    }
  };
  walk(0, bytes.length, null);
  if (duration != null && Number.isFinite(duration) && duration > 0) out.durationMillis = Math.round((duration * scale) / 1e6);
  return out;
}

const round2 = (x) => Math.round(x * 100) / 100;

/** Files up to this size are demuxed in memory; larger ones play in a <video>. */
const MAX_DEMUX_BYTES = 512 << 20;

const hex2 = (n) => n.toString(16).padStart(2, '0');

/**
 * `{config: VideoDecoderConfig, samples: [{key, timestamp (µs, presentation), duration (µs),
 * data: Uint8Array}] in decode order}`, or null when the file is not one this reads.
 * Throws nothing: damaged tables give null or fewer samples, and the decoder reports bad data.
 */
export async function demuxVideo(blob) {
  if (blob.size > MAX_DEMUX_BYTES) return null;
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let out = null;
  try {
    if (bytes.length >= 12 && ascii(bytes, 4, 4) === 'ftyp') out = demuxMp4(bytes);
    else if (bytes.length >= 4 && bytes[0] === 0x1a && bytes[1] === 0x45 && bytes[2] === 0xdf && bytes[3] === 0xa3) out = demuxEbml(bytes);
  } catch {
    // Tables that point outside the file, truncated boxes: not demuxable here.
  }
  if (!out || !(out.config.codedWidth > 0 && out.config.codedHeight > 0)) return null;
  // Damaged tables can give impossible times: such frames are not decodable input.
  out.samples = out.samples.filter((s) => Number.isFinite(s.timestamp) && Number.isFinite(s.duration) && s.duration >= 0);
  return out;
}

function demuxMp4(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const moov = boxes(bytes).find((b) => b.type === 'moov');
  if (!moov) return null;
  for (const trak of boxes(bytes, moov.start, moov.end).filter((b) => b.type === 'trak')) {
    const mdia = child(bytes, trak, 'mdia');
    const hdlr = mdia && child(bytes, mdia, 'hdlr');
    if (!hdlr || ascii(bytes, hdlr.start + 8, 4) !== 'vide') continue;
    const mdhd = child(bytes, mdia, 'mdhd');
    const v1 = bytes[mdhd.start] === 1;
    const timescale = view.getUint32(mdhd.start + (v1 ? 20 : 12));
    if (!(timescale > 0)) return null;
    const stbl = child(bytes, child(bytes, mdia, 'minf'), 'stbl');
    const stsd = child(bytes, stbl, 'stsd');
    const entry = boxes(bytes, stsd.start + 8, stsd.end)[0];
    const codedWidth = view.getUint16(entry.start + 24);
    const codedHeight = view.getUint16(entry.start + 26);
    // VisualSampleEntry: 78 bytes of fields, then its boxes (avcC, vpcC, av1C, ...).
    const inner = boxes(bytes, entry.start + 78, entry.end);
    let codec = null;
    let description;
    if (entry.type === 'avc1' || entry.type === 'avc3') {
      const avcC = inner.find((b) => b.type === 'avcC');
      if (!avcC) return null;
      description = bytes.slice(avcC.start, avcC.end);
      codec = `avc1.${hex2(description[1])}${hex2(description[2])}${hex2(description[3])}`;
    } else if (entry.type === 'vp09') {
      const vpcC = inner.find((b) => b.type === 'vpcC');
      if (!vpcC) return null;
      const [profile, level, depth] = [bytes[vpcC.start + 4], bytes[vpcC.start + 5], bytes[vpcC.start + 6] >> 4];
      codec = `vp09.${String(profile).padStart(2, '0')}.${String(level).padStart(2, '0')}.${String(depth).padStart(2, '0')}`;
    } else {
      return null;
    }
    // Every count is bounded by what its box (or the file) can hold, so a damaged count
    // never allocates more than the file's size in entries.
    const table = (type, entry) => {
      const b = child(bytes, stbl, type);
      return b ? { b, n: Math.min(view.getUint32(b.start + 4), Math.floor((b.end - b.start - 8) / entry)) } : null;
    };
    // Sample sizes.
    const stsz = child(bytes, stbl, 'stsz');
    const fixed = view.getUint32(stsz.start + 4);
    const count = Math.min(view.getUint32(stsz.start + 8), fixed !== 0 ? Math.floor(bytes.length / fixed) : Math.floor((stsz.end - stsz.start - 12) / 4));
    const size = (i) => (fixed !== 0 ? fixed : view.getUint32(stsz.start + 12 + 4 * i));
    // Chunk offsets and samples per chunk give each sample's offset.
    const wide = child(bytes, stbl, 'stco') == null;
    const co = wide ? table('co64', 8) : table('stco', 4);
    const chunkOffset = (c) => (wide ? Number(view.getBigUint64(co.b.start + 8 + 8 * c)) : view.getUint32(co.b.start + 8 + 4 * c));
    const stsc = table('stsc', 12);
    const offsets = new Array(count);
    let sample = 0;
    for (let e = 0; e < stsc.n && sample < count; e++) {
      const first = view.getUint32(stsc.b.start + 8 + 12 * e) - 1;
      const per = view.getUint32(stsc.b.start + 12 + 12 * e);
      const last = e + 1 < stsc.n ? view.getUint32(stsc.b.start + 8 + 12 * (e + 1)) - 1 : co.n;
      for (let c = first; c < Math.min(last, co.n) && sample < count; c++) {
        let at = chunkOffset(c);
        for (let k = 0; k < per && sample < count; k++) {
          offsets[sample] = at;
          at += size(sample);
          sample += 1;
        }
      }
    }
    // Decode times (stts), composition offsets (ctts), the edit list's start (elst).
    const stts = table('stts', 8);
    const dts = new Array(count);
    const durations = new Array(count);
    let t = 0;
    sample = 0;
    for (let e = 0; e < stts.n; e++) {
      const n = view.getUint32(stts.b.start + 8 + 8 * e);
      const delta = view.getUint32(stts.b.start + 12 + 8 * e);
      for (let k = 0; k < n && sample < count; k++, sample++) {
        dts[sample] = t;
        durations[sample] = delta;
        t += delta;
      }
    }
    const cts = new Array(count).fill(0);
    const ctts = table('ctts', 8);
    if (ctts) {
      sample = 0;
      for (let e = 0; e < ctts.n; e++) {
        const n = view.getUint32(ctts.b.start + 8 + 8 * e);
        const off = view.getInt32(ctts.b.start + 12 + 8 * e);
        for (let k = 0; k < n && sample < count; k++) cts[sample++] = off;
      }
    }
    let shift = 0;
    const edts = child(bytes, trak, 'edts');
    const elst = edts && child(bytes, edts, 'elst');
    if (elst) {
      const ev1 = bytes[elst.start] === 1;
      const entries = view.getUint32(elst.start + 4);
      for (let e = 0; e < entries; e++) {
        const at = elst.start + 8 + e * (ev1 ? 20 : 12);
        const mediaTime = ev1 ? Number(view.getBigInt64(at + 8)) : view.getInt32(at + 4);
        if (mediaTime >= 0) {
          shift = mediaTime;
          break;
        }
      }
    }
    const stss = table('stss', 4);
    const keys = stss ? new Set(Array.from({ length: stss.n }, (_, i) => view.getUint32(stss.b.start + 8 + 4 * i) - 1)) : null;
    const us = (ticks) => Math.round((ticks * 1e6) / timescale);
    const samples = [];
    for (let i = 0; i < count; i++) {
      if (offsets[i] == null || dts[i] == null || offsets[i] + size(i) > bytes.length) break;
      samples.push({
        key: keys ? keys.has(i) : true,
        timestamp: us(dts[i] + cts[i] - shift),
        duration: us(durations[i]),
        data: bytes.subarray(offsets[i], offsets[i] + size(i)),
      });
    }
    return { config: { codec, codedWidth, codedHeight, description }, samples };
  }
  return null;
}

function demuxEbml(bytes) {
  const ID = { TrackNumber: 0xd7, CodecPrivate: 0x63a2, Timestamp: 0xe7, SimpleBlock: 0xa3, BlockGroup: 0xa0, Block: 0xa1, ReferenceBlock: 0xfb };
  const tracks = [];
  const samples = [];
  let scale = 1e6;
  let clusterTime = 0;
  let video = null;
  const block = (body, end, key) => {
    const track = vint(bytes, body, false);
    if (!track || !video || track.value !== video.number) return;
    const at = body + track.length;
    const relative = new DataView(bytes.buffer, bytes.byteOffset + at, 2).getInt16(0);
    const flags = bytes[at + 2];
    if (flags & 0x06) return; // laced blocks: never used for video by the muxers we read
    const ticks = clusterTime + relative;
    samples.push({ key: key ?? (flags & 0x80) !== 0, timestamp: Math.round((ticks * scale) / 1000), duration: 0, data: bytes.subarray(at + 3, end) });
  };
  const walk = (start, end, track) => {
    for (const { id, body, stop } of elements(bytes, start, end)) {
      switch (id) {
        case EBML.Segment:
        case EBML.Tracks:
        case EBML.Info:
        case EBML.Video:
        case 0x1a45dfa3:
          walk(body, stop, track);
          break;
        case EBML.Cluster:
          walk(body, stop, null);
          break;
        case EBML.TrackEntry: {
          const t = {};
          walk(body, stop, t);
          tracks.push(t);
          if (t.type === 1 && !video) video = t;
          break;
        }
        case EBML.TimestampScale:
          scale = uint(bytes, body, stop - body);
          break;
        case ID.Timestamp:
          clusterTime = uint(bytes, body, stop - body);
          break;
        case ID.SimpleBlock:
          block(body, stop, null);
          break;
        case ID.BlockGroup: {
          // A Block without a ReferenceBlock is a key frame.
          const kids = [...elements(bytes, body, stop)];
          const b = kids.find((x) => x.id === ID.Block);
          if (b) block(b.body, b.stop, !kids.some((x) => x.id === ID.ReferenceBlock));
          break;
        }
        default:
          if (track) {
            const n = stop - body;
            if (id === EBML.TrackType) track.type = uint(bytes, body, n);
            else if (id === ID.TrackNumber) track.number = uint(bytes, body, n);
            else if (id === EBML.CodecID) track.codecId = ascii(bytes, body, n).replace(/\0+$/, '');
            else if (id === ID.CodecPrivate) track.private = bytes.slice(body, stop);
            else if (id === EBML.PixelWidth) track.width = uint(bytes, body, n);
            else if (id === EBML.PixelHeight) track.height = uint(bytes, body, n);
          }
      }
    }
  };
  walk(0, bytes.length, null);
  if (!video) return null;
  let codec;
  let description;
  switch (video.codecId) {
    case 'V_VP8':
      codec = 'vp8';
      break;
    case 'V_VP9':
      codec = 'vp09.00.10.08';
      break;
    case 'V_AV1':
      codec = 'av01.0.08M.08';
      break;
    case 'V_MPEG4/ISO/AVC':
      if (!video.private) return null;
      description = video.private;
      codec = `avc1.${hex2(description[1])}${hex2(description[2])}${hex2(description[3])}`;
      break;
    default:
      return null;
  }
  // Durations: the gap to the next frame in presentation order.
  const order = samples.map((s, i) => i).sort((a, b) => samples[a].timestamp - samples[b].timestamp);
  for (let k = 0; k + 1 < order.length; k++) samples[order[k]].duration = samples[order[k + 1]].timestamp - samples[order[k]].timestamp;
  return { config: { codec, codedWidth: video.width, codedHeight: video.height, description }, samples };
}
