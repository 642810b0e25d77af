//! Redis reply parser: any bytes from a server give replies or an error,
//! never a panic, an abort or a hang.
#![no_main]

use dbkeep::connector::resp::read_reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = data;
    while !r.is_empty() {
        let before = r.len();
        if read_reply(&mut r).is_err() {
            break;
        }
        assert!(r.len() < before, "a reply consumed no bytes");
    }
});
