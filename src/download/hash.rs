//! One hasher for every algorithm an `iso_checksum` can name.
//!
//! sha2 picks the SHA-NI code path at run time when the CPU has it, which is what makes
//! re-verifying a cached ISO faster than `sha256sum`.

use std::io::{self, Read};
use std::path::Path;

use sha2::Digest;

use crate::types::HashAlgo;

/// Read size when hashing files.
const READ_BUF: usize = 1 << 20;

/// A running hash of one of the [`HashAlgo`]s.
#[derive(Clone)]
pub enum Hasher {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algo: HashAlgo) -> Self {
        match algo {
            HashAlgo::Md5 => Hasher::Md5(md5::Md5::new()),
            HashAlgo::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            HashAlgo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgo::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest as lowercase hex.
    pub fn finalize_hex(self) -> String {
        match self {
            Hasher::Md5(h) => hex(&h.finalize()),
            Hasher::Sha1(h) => hex(&h.finalize()),
            Hasher::Sha256(h) => hex(&h.finalize()),
            Hasher::Sha512(h) => hex(&h.finalize()),
        }
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Feeds everything `reader` yields into `hasher` (1 MiB reads); returns the byte count.
pub fn hash_reader(reader: &mut impl Read, hasher: &mut Hasher) -> io::Result<u64> {
    let mut buf = vec![0u8; READ_BUF];
    let mut total = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Buffers in flight between the reading and the hashing thread of [`hash_file`].
const READ_AHEAD: usize = 4;

/// The hex digest of the file at `path` (blocking). A helper thread reads ahead while this one
/// hashes, so the hash runs at the hasher's speed rather than hasher plus reads.
pub fn hash_file(path: &Path, algo: HashAlgo) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let (full_tx, full_rx) =
        std::sync::mpsc::sync_channel::<io::Result<(Vec<u8>, usize)>>(READ_AHEAD);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    for _ in 0..READ_AHEAD {
        let _ = empty_tx.send(vec![0u8; READ_BUF]);
    }
    let reader = std::thread::spawn(move || {
        while let Ok(mut buf) = empty_rx.recv() {
            let n = loop {
                match file.read(&mut buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other,
                }
            };
            let done = !matches!(n, Ok(n) if n > 0);
            if full_tx.send(n.map(|n| (buf, n))).is_err() || done {
                return;
            }
        }
    });
    let mut hasher = Hasher::new(algo);
    let result = loop {
        match full_rx.recv() {
            Ok(Ok((buf, n))) if n > 0 => {
                hasher.update(&buf[..n]);
                // The reader may have stopped already; then the buffer is simply dropped.
                let _ = empty_tx.send(buf);
            }
            Ok(Ok(_)) => break Ok(()),
            Ok(Err(e)) => break Err(e),
            Err(_) => break Err(io::Error::other("the reading thread stopped")),
        }
    };
    drop(empty_tx);
    drop(full_rx);
    let _ = reader.join();
    result.map(|()| hasher.finalize_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_of_abc() {
        let table = [
            (HashAlgo::Md5, "900150983cd24fb0d6963f7d28e17f72"),
            (HashAlgo::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                HashAlgo::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
        ];
        for (algo, want) in table {
            let mut h = Hasher::new(algo);
            h.update(b"a");
            h.update(b"bc");
            assert_eq!(h.finalize_hex(), want, "{algo}");
        }
        let mut h = Hasher::new(HashAlgo::Sha512);
        h.update(b"abc");
        assert!(h.finalize_hex().starts_with("ddaf35a193617aba"), "sha512");
    }

    #[test]
    fn hash_file_matches_hashing_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 1, READ_BUF, 3 * READ_BUF + 17] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &data).unwrap();
            let mut h = Hasher::new(HashAlgo::Sha256);
            h.update(&data);
            assert_eq!(
                hash_file(&path, HashAlgo::Sha256).unwrap(),
                h.finalize_hex(),
                "{len} bytes"
            );
        }
        assert!(hash_file(&dir.path().join("missing"), HashAlgo::Md5).is_err());
    }
}
