//! Chunk splits chosen by the fuzzer: the input's first byte says how many
//! of the next bytes are chunk sizes (0 to 7); the rest is the stream, fed in
//! chunks of those sizes (1 to 256 bytes), cycling, with one chunk for all of
//! it when there are none. A seed file is the stream behind one 0 byte.

/// The chunk sizes and the stream.
pub fn split(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let n = usize::from(head % 8).min(rest.len());
    let (sizes, stream) = rest.split_at(n);
    (sizes.iter().map(|&s| usize::from(s) + 1).collect(), stream)
}

/// `stream` in chunks of `sizes`, cycling; whole when `sizes` is empty.
pub fn chunks<'a>(sizes: &[usize], stream: &'a [u8]) -> Vec<&'a [u8]> {
    if sizes.is_empty() {
        return vec![stream];
    }
    let mut out = Vec::new();
    let mut rest = stream;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        out.push(chunk);
        rest = tail;
    }
    out
}
