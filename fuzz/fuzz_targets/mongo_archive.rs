//! mongodump archive check: any bytes, in any chunk split, must give a
//! verdict without panicking, and the same verdict as one whole chunk.
#![no_main]

use dbkeep::connector::mongo_archive::ArchiveCheck;
use dbkeep::connector::DumpCheck;
use libfuzzer_sys::fuzz_target;

mod split;

fuzz_target!(|data: &[u8]| {
    let (sizes, stream) = split::split(data);
    let mut check = ArchiveCheck::new();
    for chunk in split::chunks(&sizes, stream) {
        check.update(chunk);
    }
    let split_verdict = check.finish();
    let mut whole = ArchiveCheck::new();
    whole.update(stream);
    assert_eq!(
        split_verdict,
        whole.finish(),
        "the verdict depends on the split"
    );
});
