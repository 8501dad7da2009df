//! gzip bodies (RFC 1952) made of two texts compressed apart: an opening and a closing.
//!
//! A catalogue lookup answers `{"matched":…,` followed by the entry, and the entry is the same
//! for a lookup by code, by reason and by any of its aliases. DEFLATE (RFC 1951) is a sequence of
//! blocks; an opening compressed with a sync flush ends on a byte boundary with no final block,
//! so the closing's own stream can follow it as it is. The entry is then compressed once for all
//! its matches, and the trailer's CRC-32 of the whole is combined from the parts'.

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Text compressed into DEFLATE blocks, with what a member's trailer needs of it.
#[derive(Debug)]
struct Blocks {
    bytes: Vec<u8>,
    crc: Crc,
}

impl Blocks {
    /// `text` at zlib's default level, the one the compression layer uses.
    fn new(text: &[u8], flush: FlushCompress) -> Self {
        let mut crc = Crc::new();
        crc.update(text);
        Self { bytes: deflate(text, flush), crc }
    }
}

/// The start of a member's content: blocks that end on a byte boundary, none of them final.
#[derive(Debug)]
pub struct Opening(Blocks);

impl Opening {
    pub fn new(text: &[u8]) -> Self {
        Self(Blocks::new(text, FlushCompress::Sync))
    }
}

/// The end of a member's content: a whole DEFLATE stream, its last block final.
#[derive(Debug)]
pub struct Closing(Blocks);

impl Closing {
    pub fn new(text: &[u8]) -> Self {
        Self(Blocks::new(text, FlushCompress::Finish))
    }
}

/// magic, CM = deflate, no flags, no modification time, no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// A gzip member whose content is the opening's text followed by the closing's.
pub fn member(opening: &Opening, closing: &Closing) -> Vec<u8> {
    let (opening, closing) = (&opening.0, &closing.0);
    let mut body = Vec::with_capacity(HEADER.len() + opening.bytes.len() + closing.bytes.len() + 8);
    body.extend_from_slice(&HEADER);
    body.extend_from_slice(&opening.bytes);
    body.extend_from_slice(&closing.bytes);
    let mut crc = Crc::new();
    crc.combine(&opening.crc);
    crc.combine(&closing.crc);
    body.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the length modulo 2^32, which is what `amount` counts.
    body.extend_from_slice(&crc.amount().to_le_bytes());
    body
}

/// Raw DEFLATE of `text`, ended as `flush` says: `Finish` for a final stream, `Sync` for blocks
/// another stream can follow.
fn deflate(text: &[u8], flush: FlushCompress) -> Vec<u8> {
    let mut compress = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(text.len() / 2 + 64);
    loop {
        let read = usize::try_from(compress.total_in()).unwrap_or(text.len());
        let rest = text.get(read..).unwrap_or_default();
        // Compressing into memory fails only on a misuse of the stream, which this loop is not.
        let status = compress.compress_vec(rest, &mut out, flush).unwrap_or(Status::StreamEnd);
        let read_all = usize::try_from(compress.total_in()).is_ok_and(|read| read == text.len());
        // A flush is complete once a call leaves room in the buffer: it stopped for want of work.
        if status == Status::StreamEnd || (read_all && flush != FlushCompress::Finish && out.len() < out.capacity()) {
            return out;
        }
        out.reserve(out.capacity().max(64));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{Read, Write};

    use super::*;

    fn gunzip(body: &[u8]) -> Vec<u8> {
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(body).read_to_end(&mut text).unwrap();
        text
    }

    fn whole(text: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(text).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn a_member_decompresses_to_the_opening_then_the_closing() {
        let closing = br#""title":"Bank not responding","steps":["Wait","Wait again","Wait"]}"#.repeat(40);
        let compressed = Closing::new(&closing);
        for opening in [&b""[..], b"{", br#"{"matched":{"by":"alias","alias":{"namespace":"plaid"}},"#] {
            let body = member(&Opening::new(opening), &compressed);
            assert!(body.len() < closing.len() / 4, "the text compresses: {}", body.len());
            assert_eq!(gunzip(&body), [opening, &closing].concat());
        }
    }

    #[test]
    fn texts_bigger_than_their_first_buffer_come_out_whole() {
        // Bytes that do not compress: deflate writes more than it reads.
        let noise: Vec<u8> = (0u32..200_000).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let body = member(&Opening::new(&noise), &Closing::new(&noise));
        assert_eq!(gunzip(&body), [&noise[..], &noise].concat());
    }

    #[test]
    fn empty_texts_make_a_valid_member() {
        assert_eq!(gunzip(&member(&Opening::new(b"{}"), &Closing::new(b""))), b"{}");
        assert_eq!(gunzip(&member(&Opening::new(b""), &Closing::new(b""))), b"");
    }

    #[test]
    fn the_trailer_is_the_one_a_whole_compression_writes_and_the_size_is_close() {
        let (opening, closing) = (&b"{\"matched\":{\"by\":\"code\",\"alias\":null},"[..], &b"\"code\":102}"[..]);
        let body = member(&Opening::new(opening), &Closing::new(closing));
        let whole = whole(&[opening, closing].concat());
        assert_eq!(body[body.len() - 8..], whole[whole.len() - 8..], "CRC-32 and ISIZE");
        assert!(body.len() <= whole.len() + 16, "{} against {}", body.len(), whole.len());
    }
}
