//! Content-defined chunks (FastCDC 2020) of a file, and the sealed
//! manifest that lists them.

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::crypto::ChunkRef;

/// Chunk sizes: at least, on average, at most.
pub const CHUNK_MIN: u32 = 256 * 1024;
pub const CHUNK_AVG: u32 = 1024 * 1024;
pub const CHUNK_MAX: u32 = 4 * 1024 * 1024;

/// What a version is made of (sealed under the namespace key before it is
/// stored as a blob).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub path: String,
    pub size: u64,
    pub chunks: Vec<ChunkRef>,
}

/// Calls `each` with every chunk of `source`, in order.
pub fn for_each_chunk(
    source: impl Read,
    mut each: impl FnMut(Vec<u8>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let chunker = fastcdc::v2020::StreamCDC::new(source, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX);
    for chunk in chunker {
        let chunk = chunk.map_err(|error| match error {
            fastcdc::v2020::Error::IoError(error) => error,
            other => std::io::Error::other(other.to_string()),
        })?;
        each(chunk.data)?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Pseudo-random bytes (a fixed xorshift), so chunk boundaries fall by
    /// content.
    pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    fn chunks(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for_each_chunk(bytes, |chunk| {
            out.push(chunk);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn chunks_cover_the_file_and_an_insert_moves_few_of_them() {
        let original = noise(8 * 1024 * 1024, 7);
        let before = chunks(&original);
        assert_eq!(before.concat(), original);
        assert!(before.len() >= 3, "{} chunks", before.len());
        assert!(before.iter().all(|chunk| chunk.len() <= CHUNK_MAX as usize));
        // A few bytes inserted near the start: most chunks are unchanged.
        let mut edited = original.clone();
        edited.splice(1000..1000, b"an insertion".iter().copied());
        let after = chunks(&edited);
        assert_eq!(after.concat(), edited);
        let unchanged = after.iter().filter(|chunk| before.contains(chunk)).count();
        assert!(
            unchanged + 2 >= before.len(),
            "{unchanged} of {} chunks unchanged",
            before.len()
        );
        assert!(chunks(&[]).is_empty());
    }
}
