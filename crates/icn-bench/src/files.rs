//! `icn-bench files [MB]`: keeping a folder of mixed files in a member's
//! space (the `files put` operation, as icnd runs it: chunking, sealing,
//! the blob store, one signed version a file), beside a ceiling loop over
//! the same bytes that only reads, hashes (BLAKE3) and encrypts
//! (XChaCha20-Poly1305) them; then the same folder again after 1% of its
//! bytes changed: what was written against what changed. Resident memory
//! is the process's peak.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Instant,
};

use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce, aead::Aead};
use icn_runtime::{
    Requester,
    operation::{Body, Services},
};
use icn_testkit::{did_of, member};

/// Deterministic bytes that neither compress nor repeat.
struct Noise(u64);

impl Noise {
    fn fill(&mut self, buffer: &mut [u8]) {
        for chunk in buffer.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let bytes = self.0.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// A folder of about `megabytes` MB: many small files, some large ones,
/// and a tenth of the bytes in copies of other files.
fn corpus(dir: &Path, megabytes: u64) -> Vec<PathBuf> {
    let mut noise = Noise(0x2545_f491_4f6c_dd1d);
    let mut files = Vec::new();
    let target = megabytes * 1024 * 1024;
    let mut written = 0u64;
    let sizes = [4 << 10, 64 << 10, 300 << 10, 2 << 20, 9 << 20, 24 << 20];
    let mut buffer = vec![0u8; 24 << 20];
    while written < target {
        let n = files.len();
        let size = sizes[n % sizes.len()]
            .min((target - written) as usize)
            .max(1);
        let path = dir.join(format!("file-{n:05}.bin"));
        if n % 10 == 9 {
            // A copy of an earlier file (a download kept twice).
            std::fs::copy(&files[n / 2], &path).expect("copies");
            written += std::fs::metadata(&path).expect("exists").len();
        } else {
            noise.fill(&mut buffer[..size]);
            std::fs::write(&path, &buffer[..size]).expect("writes");
            written += size as u64;
        }
        files.push(path);
    }
    files
}

/// The ceiling: read each file, BLAKE3 it and encrypt it in 1 MiB pieces,
/// on `threads` threads (each takes every `threads`-th file); MB/s.
fn ceiling(files: &[PathBuf], threads: usize) -> f64 {
    let start = Instant::now();
    let total: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|first| {
                scope.spawn(move || {
                    let cipher =
                        XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&[7; 32]));
                    let mut buffer = vec![0u8; 1 << 20];
                    let mut total = 0u64;
                    for path in files.iter().skip(first).step_by(threads) {
                        let mut file = std::fs::File::open(path).expect("opens");
                        let mut hasher = blake3::Hasher::new();
                        loop {
                            let read = file.read(&mut buffer).expect("reads");
                            if read == 0 {
                                break;
                            }
                            hasher.update(&buffer[..read]);
                            let sealed = cipher
                                .encrypt(XNonce::from_slice(&[0; 24]), &buffer[..read])
                                .expect("encrypts");
                            std::hint::black_box(sealed);
                            total += read as u64;
                        }
                        std::hint::black_box(hasher.finalize());
                    }
                    total
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a worker"))
            .sum()
    });
    total as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// Puts every file through the `files put` operation; returns MB/s and
/// the sealed bytes newly written.
fn put_all(
    services: &Services,
    put: &icn_runtime::operation::TaskFn,
    files: &[PathBuf],
) -> (f64, u64) {
    let mut total = 0u64;
    let mut new_bytes = 0u64;
    let start = Instant::now();
    for path in files {
        let request = icn_api::files::Put {
            source: path.display().to_string(),
            path: path
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned(),
            shared: false,
        };
        let answer = put(
            services,
            &Requester::ThisNode,
            &serde_json::to_vec(&request).expect("encodes"),
        )
        .expect("stores");
        let stored: icn_api::files::Stored = serde_json::from_slice(&answer).expect("decodes");
        total += stored.size;
        new_bytes += stored.new_bytes;
    }
    (
        total as f64 / 1e6 / start.elapsed().as_secs_f64(),
        new_bytes,
    )
}

/// Changes about 1% of the folder's bytes: a run of bytes in the middle of
/// every tenth file, a tenth of its length.
fn change_one_percent(files: &[PathBuf]) -> u64 {
    let mut noise = Noise(0x9e37_79b9);
    let mut changed = 0u64;
    for path in files.iter().step_by(10) {
        let mut bytes = std::fs::read(path).expect("reads");
        let run = bytes.len() / 10;
        let at = bytes.len() / 2 - run / 2;
        noise.fill(&mut bytes[at..at + run]);
        changed += run as u64;
        let mut file = std::fs::File::create(path).expect("writes");
        file.write_all(&bytes).expect("writes");
    }
    changed
}

fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

pub fn run(megabytes: u64) {
    let work = tempfile::tempdir().expect("temp dir");
    let folder = work.path().join("folder");
    std::fs::create_dir(&folder).expect("creates");
    let files = corpus(&folder, megabytes);
    let bytes: u64 = files
        .iter()
        .map(|path| std::fs::metadata(path).expect("exists").len())
        .sum();
    println!(
        "icn-bench files: {} files, {:.0} MB (a tenth of them copies of others), on this machine's disk",
        files.len(),
        bytes as f64 / 1e6
    );
    let peak_before = peak_mb();

    let key = member(1);
    let data = work.path().join("node");
    std::fs::create_dir(&data).expect("creates");
    let mut node = crate::member_node(&data, key);
    node.create_coop(
        "Bench",
        &[did_of(&member(2))],
        &Default::default(),
        icn_testkit::at(0),
    )
    .expect("founds");
    let readers = node.readers();
    let services = Services {
        node: Arc::new(Mutex::new(node)),
        readers,
    };
    let operations = icn_node::modules().operations();
    let put = operations
        .iter()
        .find_map(|operation| match (&operation.body, operation.id) {
            (Body::Task(run), "filesPut") => Some(run.clone()),
            _ => None,
        })
        .expect("the files module offers filesPut");

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let one_thread = ceiling(&files, 1);
    let ceiling = ceiling(&files, threads).max(one_thread);
    let (first, first_new) = put_all(&services, &put, &files);
    println!(
        "  ceiling: read + BLAKE3 + XChaCha20-Poly1305, 1 MiB pieces: {ceiling:>7.0} MB/s on {threads} threads ({one_thread:.0} MB/s on one)"
    );
    println!(
        "  first put of the folder:                           {first:>7.0} MB/s  ratio {:.2}  (sealed bytes written: {:.0} MB, {:.0}% of the folder: copies deduplicated)",
        first / ceiling,
        first_new as f64 / 1e6,
        100.0 * first_new as f64 / bytes as f64
    );
    let changed = change_one_percent(&files);
    let (second, second_new) = put_all(&services, &put, &files);
    println!(
        "  after {:.2} MB changed ({:.1}% of the bytes):       {second:>7.0} MB/s; sealed bytes written {:.1} MB = {:.1}× the bytes changed (whole chunks around each change, plus manifests)",
        changed as f64 / 1e6,
        100.0 * changed as f64 / bytes as f64,
        second_new as f64 / 1e6,
        second_new as f64 / changed as f64
    );
    println!(
        "  peak resident memory: {:.0} MB (before the node opened: {peak_before:.0} MB, the corpus writer's buffer included)",
        peak_mb()
    );
}
