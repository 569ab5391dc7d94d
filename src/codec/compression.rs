//! Pure-Rust codecs for record batches, plugged into kafka-protocol's
//! custom-compression hooks. Decompression is capped so a small hostile
//! batch cannot expand without bound.

use std::io::{Read, Write};

use super::CodecError;

/// Record batch compression, as named by `compression.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// gzip (flate2 on miniz_oxide).
    Gzip,
    /// Snappy, in the xerial framing the Java client writes.
    Snappy,
    /// LZ4 frame format (lz4_flex).
    Lz4,
    /// Zstandard (ruzstd).
    Zstd,
}

impl Compression {
    /// All codecs, for tests and benches.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The `compression.type` name.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Parses a `compression.type` value.
    pub fn parse(name: &str) -> Option<Compression> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name.trim()))
    }

    pub(crate) fn to_wire(self) -> kafka_protocol::records::Compression {
        use kafka_protocol::records::Compression as W;
        match self {
            Compression::None => W::None,
            Compression::Gzip => W::Gzip,
            Compression::Snappy => W::Snappy,
            Compression::Lz4 => W::Lz4,
            Compression::Zstd => W::Zstd,
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
// Header as written by snappy-java's SnappyOutputStream: magic, version 1, compatible 1.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
const XERIAL_BLOCK: usize = 32 * 1024;

fn err(codec: Compression, reason: impl std::fmt::Display) -> CodecError {
    CodecError::Compression {
        codec: codec.name(),
        reason: reason.to_string(),
    }
}

/// Compresses `data` with `codec`.
#[cfg_attr(not(feature = "unstable-internals"), allow(dead_code))] // tests, benches
pub fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    compress_into(codec, &[data], &mut out)?;
    Ok(out)
}

/// Compresses the concatenation of `parts` with `codec`, appending to `out`
/// (so a batch kept in pieces is never copied whole first).
pub fn compress_into<W: Write>(
    codec: Compression,
    parts: &[&[u8]],
    mut out: W,
) -> Result<(), CodecError> {
    let e = |x: std::io::Error| err(codec, x);
    match codec {
        Compression::None => parts.iter().try_for_each(|p| out.write_all(p)).map_err(e),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
            parts.iter().try_for_each(|p| enc.write_all(p)).map_err(e)?;
            enc.finish().map(drop).map_err(e)
        }
        Compression::Snappy => {
            // Xerial blocks are independent, so a part's blocks never span parts.
            out.write_all(XERIAL_HEADER).map_err(e)?;
            let mut enc = snap::raw::Encoder::new();
            let mut scratch = Vec::new();
            for block in parts.iter().flat_map(|p| p.chunks(XERIAL_BLOCK)) {
                scratch.resize(snap::raw::max_compress_len(block.len()), 0);
                let n = enc
                    .compress(block, &mut scratch)
                    .map_err(|x| err(codec, x))?;
                out.write_all(&(n as u32).to_be_bytes()).map_err(e)?;
                out.write_all(&scratch[..n]).map_err(e)?;
            }
            Ok(())
        }
        Compression::Lz4 => {
            let mut enc = lz4_flex::frame::FrameEncoder::new(out);
            parts.iter().try_for_each(|p| enc.write_all(p)).map_err(e)?;
            enc.finish().map(drop).map_err(|x| err(codec, x))
        }
        Compression::Zstd => {
            let source = parts
                .iter()
                .fold(Box::new(std::io::empty()) as Box<dyn Read + '_>, |r, p| {
                    Box::new(r.chain(*p))
                });
            ruzstd::encoding::compress(source, out, ruzstd::encoding::CompressionLevel::Fastest);
            Ok(())
        }
    }
}

/// Decompresses `data`, refusing to produce more than `limit` bytes.
pub fn decompress(codec: Compression, data: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    match codec {
        Compression::None => {
            if data.len() > limit {
                return Err(too_big(codec, limit));
            }
            Ok(data.to_vec())
        }
        Compression::Gzip => read_capped(codec, flate2::read::MultiGzDecoder::new(data), limit),
        Compression::Snappy => snappy_decompress(data, limit),
        Compression::Lz4 => read_capped(codec, lz4_flex::frame::FrameDecoder::new(data), limit),
        Compression::Zstd => {
            let mut out = Vec::new();
            let mut rest = data;
            // A stream may hold several frames back to back.
            while !rest.is_empty() {
                let mut dec = ruzstd::decoding::StreamingDecoder::new(&mut rest)
                    .map_err(|e| err(codec, e))?;
                let budget = limit.saturating_sub(out.len());
                let chunk = read_capped(codec, &mut dec, budget)?;
                out.extend_from_slice(&chunk);
            }
            Ok(out)
        }
    }
}

fn too_big(codec: Compression, limit: usize) -> CodecError {
    err(
        codec,
        format!("decompressed size exceeds the limit of {limit} bytes"),
    )
}

fn read_capped(codec: Compression, reader: impl Read, limit: usize) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| err(codec, e))?;
    if out.len() > limit {
        return Err(too_big(codec, limit));
    }
    Ok(out)
}

fn snappy_decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    let codec = Compression::Snappy;
    let mut dec = snap::raw::Decoder::new();
    let mut one = |block: &[u8], out: &mut Vec<u8>| -> Result<(), CodecError> {
        let n = snap::raw::decompress_len(block).map_err(|e| err(codec, e))?;
        if out.len() + n > limit {
            return Err(too_big(codec, limit));
        }
        let start = out.len();
        out.resize(start + n, 0);
        dec.decompress(block, &mut out[start..])
            .map_err(|e| err(codec, e))?;
        Ok(())
    };
    let mut out = Vec::new();
    if !data.starts_with(XERIAL_MAGIC) {
        // librdkafka and old clients may write raw snappy.
        one(data, &mut out)?;
        return Ok(out);
    }
    let mut rest = data
        .get(XERIAL_HEADER.len()..)
        .ok_or_else(|| err(codec, "truncated xerial header"))?;
    while !rest.is_empty() {
        let len_bytes: [u8; 4] = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| err(codec, "truncated xerial block length"))?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let block = rest
            .get(4..4 + len)
            .ok_or_else(|| err(codec, "truncated xerial block"))?;
        one(block, &mut out)?;
        rest = &rest[4 + len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in Compression::ALL {
            let z = compress(c, &data).unwrap();
            assert_eq!(decompress(c, &z, data.len()).unwrap(), data, "{c}");
        }
    }

    #[test]
    fn parts_compress_as_their_concatenation() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 97) as u8).collect();
        // Uneven cuts, one across a snappy block boundary, one empty part.
        let parts = [
            &data[..5],
            &data[5..40_000],
            &data[40_000..40_000],
            &data[40_000..],
        ];
        for c in Compression::ALL {
            let mut z = Vec::new();
            compress_into(c, &parts, &mut z).unwrap();
            assert_eq!(decompress(c, &z, data.len()).unwrap(), data, "{c}");
        }
    }

    #[test]
    fn decompression_is_capped() {
        let data = vec![0u8; 1 << 20];
        for c in Compression::ALL {
            let z = compress(c, &data).unwrap();
            let e = decompress(c, &z, 1000).unwrap_err();
            assert!(e.to_string().contains("exceeds the limit"), "{c}: {e}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert!(
                decompress(c, b"\x82SNAPPY\x00garbage-garbage-garbage", 1 << 20).is_err(),
                "{c}"
            );
        }
    }

    #[test]
    fn names_parse() {
        assert_eq!(Compression::parse("ZSTD"), Some(Compression::Zstd));
        assert_eq!(Compression::parse("brotli"), None);
    }
}
