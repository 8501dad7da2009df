//! `cargo +nightly fuzz run parse` from the feedwatch root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use feedwatch::ofx::{ParseOptions, parse, parse_request, write_response};

fuzz_target!(|data: &[u8]| {
    let options = ParseOptions {
        max_bytes: 1 << 20,
        max_depth: 64,
    };
    if let Ok(document) = parse(data, &options) {
        // Writing back whatever was read must not panic either.
        let written = write_response(&document);
        let _ = parse(written.as_bytes(), &options);
    }
    let _ = parse_request(data, &options);
});
