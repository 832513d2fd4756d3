//! Box-packing benchmark, driven by `scripts/bench/box.sh` (which also times the baselines).
//!
//! `cargo bench --bench box -- DISK OUTDIR` packs DISK (a qcow2) into `OUTDIR/kiln.box` with the
//! vagrant post-processor's defaults, then as a zstd box (`compression = "zstd"`), then
//! compresses the same disk with kiln's gzip on one thread, and prints one `key=value` line per
//! measurement.

#![allow(clippy::print_stdout)]

use std::io::{BufWriter, Read};
use std::path::PathBuf;
use std::time::Instant;

use kiln::archive::{ParGzWriter, threads};
use kiln::postprocessor::vagrant::{self, DiskInput};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench` first; the rest are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [disk, outdir] = args.as_slice() else {
        return Err("usage: cargo bench --bench box -- DISK OUTDIR".into());
    };
    let (disk, outdir) = (PathBuf::from(disk), PathBuf::from(outdir));
    let len = std::fs::metadata(&disk)?.len();

    let pack = |config: &vagrant::Config, out: &std::path::Path| {
        let t0 = Instant::now();
        let info = vagrant::write_box(
            config,
            &DiskInput {
                path: &disk,
                virtual_size: len,
                format: "qcow2",
                accelerator_is_kvm: true,
            },
            "amd64",
            out,
            &mut |_| {},
            &tokio_util::sync::CancellationToken::new(),
        )?;
        Ok::<_, vagrant::Error>((t0.elapsed().as_secs_f64(), info.size))
    };
    let (secs, size) = pack(&vagrant::Config::default(), &outdir.join("kiln.box"))?;
    println!(
        "kiln_box_seconds={secs:.3} kiln_box_bytes={size} threads={}",
        threads()
    );
    // The same box with `compression = "zstd"` at its default level (issue 19).
    let zst = outdir.join("kiln-zstd.box");
    let zstd = vagrant::Config {
        compression: vagrant::Compression::Zstd,
        compression_level: vagrant::ZSTD_DEFAULT_LEVEL,
        ..vagrant::Config::default()
    };
    let (secs, size) = pack(&zstd, &zst)?;
    println!("kiln_zstd_box_seconds={secs:.3} kiln_zstd_box_bytes={size}");
    std::fs::remove_file(&zst)?;

    // The same compression on one thread: how the box time scales with cores.
    let one = outdir.join("kiln-1thread.gz");
    let t0 = Instant::now();
    let mut w = ParGzWriter::new(BufWriter::new(std::fs::File::create(&one)?), 6, 1)?;
    std::io::copy(&mut std::fs::File::open(&disk)?.take(len), &mut w)?;
    w.finish()?;
    println!(
        "kiln_gzip_1thread_seconds={:.3} kiln_gzip_1thread_bytes={}",
        t0.elapsed().as_secs_f64(),
        std::fs::metadata(&one)?.len()
    );
    std::fs::remove_file(&one)?;
    Ok(())
}
