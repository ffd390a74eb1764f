//! A WebM (Matroska) container for one video track of encoded frames, as WebCodecs'
//! `VideoEncoder` hands them over: the EBML header, then a Segment with Info (the duration),
//! Tracks (one VP8 or VP9 track) and a Cluster per key frame holding SimpleBlocks. Every size is
//! known when the file is written, so every element has its exact size (no "unknown size"
//! elements, which some players refuse).

/// One encoded frame.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Chunk {
    pub(crate) data: Vec<u8>,
    /// Presentation time in microseconds.
    pub(crate) timestamp_us: u64,
    /// A key frame (decodable on its own): a new Cluster starts at each.
    pub(crate) key: bool,
}

/// Element IDs (Matroska's, with their marker bits).
mod id {
    pub(super) const EBML: u32 = 0x1A45_DFA3;
    pub(super) const EBML_VERSION: u32 = 0x4286;
    pub(super) const EBML_READ_VERSION: u32 = 0x42F7;
    pub(super) const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
    pub(super) const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
    pub(super) const DOC_TYPE: u32 = 0x4282;
    pub(super) const DOC_TYPE_VERSION: u32 = 0x4287;
    pub(super) const DOC_TYPE_READ_VERSION: u32 = 0x4285;
    pub(super) const SEGMENT: u32 = 0x1853_8067;
    pub(super) const INFO: u32 = 0x1549_A966;
    pub(super) const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
    pub(super) const MUXING_APP: u32 = 0x4D80;
    pub(super) const WRITING_APP: u32 = 0x5741;
    pub(super) const DURATION: u32 = 0x4489;
    pub(super) const TRACKS: u32 = 0x1654_AE6B;
    pub(super) const TRACK_ENTRY: u32 = 0xAE;
    pub(super) const TRACK_NUMBER: u32 = 0xD7;
    pub(super) const TRACK_UID: u32 = 0x73C5;
    pub(super) const TRACK_TYPE: u32 = 0x83;
    pub(super) const CODEC_ID: u32 = 0x86;
    pub(super) const VIDEO: u32 = 0xE0;
    pub(super) const PIXEL_WIDTH: u32 = 0xB0;
    pub(super) const PIXEL_HEIGHT: u32 = 0xBA;
    pub(super) const CLUSTER: u32 = 0x1F43_B675;
    pub(super) const TIMESTAMP: u32 = 0xE7;
    pub(super) const SIMPLE_BLOCK: u32 = 0xA3;
}

/// The longest a Cluster may run: SimpleBlock times are 16-bit offsets in milliseconds.
const MAX_CLUSTER_MS: u64 = 30_000;

/// An element: its ID, its size as an 8-byte variable-length integer, then `body`.
fn element(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 12);
    let id_bytes = id.to_be_bytes();
    let skip = id_bytes.iter().take_while(|&&b| b == 0).count();
    out.extend_from_slice(&id_bytes[skip..]);
    // Size: 0x01 marker then 7 bytes.
    let size = (body.len() as u64) | (1 << 56);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn uint(id: u32, value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    element(id, &bytes[skip..])
}

fn float(id: u32, value: f64) -> Vec<u8> {
    element(id, &value.to_be_bytes())
}

fn text(id: u32, value: &str) -> Vec<u8> {
    element(id, value.as_bytes())
}

/// The file of `chunks` (in presentation order, the first a key frame) of a `width × height`
/// video with codec `codec_id` ("V_VP8" or "V_VP9") lasting `duration_us`.
pub(crate) fn mux(
    width: u32,
    height: u32,
    codec_id: &str,
    chunks: &[Chunk],
    duration_us: u64,
) -> Result<Vec<u8>, String> {
    if chunks.first().is_none_or(|c| !c.key) {
        return Err("the video has no key frame to start from".into());
    }
    let header = element(
        id::EBML,
        &[
            uint(id::EBML_VERSION, 1),
            uint(id::EBML_READ_VERSION, 1),
            uint(id::EBML_MAX_ID_LENGTH, 4),
            uint(id::EBML_MAX_SIZE_LENGTH, 8),
            text(id::DOC_TYPE, "webm"),
            uint(id::DOC_TYPE_VERSION, 4),
            uint(id::DOC_TYPE_READ_VERSION, 2),
        ]
        .concat(),
    );
    let info = element(
        id::INFO,
        &[
            // Times in milliseconds.
            uint(id::TIMESTAMP_SCALE, 1_000_000),
            text(id::MUXING_APP, "flowplay"),
            text(id::WRITING_APP, "flowplay"),
            float(id::DURATION, duration_us as f64 / 1000.0),
        ]
        .concat(),
    );
    let tracks = element(
        id::TRACKS,
        &element(
            id::TRACK_ENTRY,
            &[
                uint(id::TRACK_NUMBER, 1),
                uint(id::TRACK_UID, 1),
                // Video.
                uint(id::TRACK_TYPE, 1),
                text(id::CODEC_ID, codec_id),
                element(
                    id::VIDEO,
                    &[
                        uint(id::PIXEL_WIDTH, u64::from(width)),
                        uint(id::PIXEL_HEIGHT, u64::from(height)),
                    ]
                    .concat(),
                ),
            ]
            .concat(),
        ),
    );
    let mut clusters = Vec::new();
    let mut cluster: Vec<u8> = Vec::new();
    let mut cluster_ms = 0u64;
    for chunk in chunks {
        let ms = chunk.timestamp_us / 1000;
        if chunk.key || ms.saturating_sub(cluster_ms) > MAX_CLUSTER_MS || cluster.is_empty() {
            if !cluster.is_empty() {
                clusters.push(element(id::CLUSTER, &cluster));
            }
            cluster_ms = ms;
            cluster = uint(id::TIMESTAMP, ms);
        }
        let offset = i16::try_from(ms.saturating_sub(cluster_ms)).unwrap_or(i16::MAX);
        // Track 1 as a 1-byte vint, the time offset, flags (0x80: key frame), the frame.
        let mut block = vec![0x81];
        block.extend_from_slice(&offset.to_be_bytes());
        block.push(if chunk.key { 0x80 } else { 0x00 });
        block.extend_from_slice(&chunk.data);
        cluster.extend(element(id::SIMPLE_BLOCK, &block));
    }
    if !cluster.is_empty() {
        clusters.push(element(id::CLUSTER, &cluster));
    }
    let segment = element(id::SEGMENT, &[info, tracks, clusters.concat()].concat());
    Ok([header, segment].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a variable-length integer: (value, length). IDs keep their marker bits.
    fn vint(bytes: &[u8], keep_marker: bool) -> (u64, usize) {
        let len = bytes[0].leading_zeros() as usize + 1;
        let mut value = u64::from(bytes[0]);
        if !keep_marker {
            value &= (1 << (8 - len)) - 1;
        }
        for &b in &bytes[1..len] {
            value = (value << 8) | u64::from(b);
        }
        (value, len)
    }

    /// The elements at this level: (id, body).
    fn children(mut bytes: &[u8]) -> Vec<(u32, &[u8])> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let (id, a) = vint(bytes, true);
            let (size, b) = vint(&bytes[a..], false);
            let body = &bytes[a + b..a + b + size as usize];
            out.push((id as u32, body));
            bytes = &bytes[a + b + size as usize..];
        }
        out
    }

    fn find<'a>(elements: &[(u32, &'a [u8])], id: u32) -> Vec<&'a [u8]> {
        elements
            .iter()
            .filter(|(i, _)| *i == id)
            .map(|(_, b)| *b)
            .collect()
    }

    #[test]
    fn the_container_reads_back_as_matroska() {
        let chunks: Vec<Chunk> = (0..7)
            .map(|k| Chunk {
                data: vec![k as u8; 10 + k],
                timestamp_us: k as u64 * 33_333,
                key: k % 3 == 0,
            })
            .collect();
        let file = mux(320, 240, "V_VP8", &chunks, 7 * 33_333).expect("muxed");
        let top = children(&file);
        assert_eq!(top.len(), 2);
        let header = children(find(&top, id::EBML)[0]);
        assert_eq!(find(&header, id::DOC_TYPE)[0], b"webm");
        let segment = children(find(&top, id::SEGMENT)[0]);
        let info = children(find(&segment, id::INFO)[0]);
        let duration = f64::from_be_bytes(find(&info, id::DURATION)[0].try_into().expect("8"));
        assert!((duration - 233.331).abs() < 1e-9);
        let track = children(find(&children(find(&segment, id::TRACKS)[0]), id::TRACK_ENTRY)[0]);
        assert_eq!(find(&track, id::CODEC_ID)[0], b"V_VP8");
        let video = children(find(&track, id::VIDEO)[0]);
        assert_eq!(find(&video, id::PIXEL_WIDTH)[0], &320u16.to_be_bytes());
        assert_eq!(find(&video, id::PIXEL_HEIGHT)[0], &[240]);
        // A cluster per key frame (0, 3, 6), holding every frame in order with its offset.
        let clusters = find(&segment, id::CLUSTER);
        assert_eq!(clusters.len(), 3);
        let mut k = 0;
        for cluster in clusters {
            let parts = children(cluster);
            let start = find(&parts, id::TIMESTAMP)[0]
                .iter()
                .fold(0u64, |v, &b| (v << 8) | u64::from(b));
            for block in find(&parts, id::SIMPLE_BLOCK) {
                assert_eq!(block[0], 0x81, "track 1");
                let offset = i16::from_be_bytes([block[1], block[2]]);
                assert_eq!(start + offset as u64, chunks[k].timestamp_us / 1000);
                assert_eq!(block[3] == 0x80, chunks[k].key);
                assert_eq!(&block[4..], &chunks[k].data[..]);
                k += 1;
            }
        }
        assert_eq!(k, 7);
    }

    #[test]
    fn a_video_must_start_with_a_key_frame() {
        let chunk = Chunk {
            data: vec![1],
            timestamp_us: 0,
            key: false,
        };
        assert!(mux(2, 2, "V_VP8", &[chunk], 1).is_err());
        assert!(mux(2, 2, "V_VP8", &[], 1).is_err());
    }
}
