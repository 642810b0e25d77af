//! Manifest parsing: any bytes read from a storage give a manifest or an
//! error, and a manifest that parses writes back to JSON that parses again.
#![no_main]

use dbkeep::catalog::manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = manifest::parse(data) {
        let json = serde_json::to_vec(&m).expect("a parsed manifest serializes");
        manifest::parse(&json).expect("a written manifest parses again");
    }
});
