//! Reading an image's catalogue against the single-core floor: an OCI
//! layout of 5 layers, about 2 GB of tar and 1.1 GB of gzip (binary-like
//! files, many small text files, site-packages dist-infos) is read by
//! imagelock (layers in
//! parallel, digests checked) and decompressed by `gzip -dc` (one core, no
//! checks) and `igzip -dc | sha256sum` (isa-l's inflate, hashed on another
//! core) in the same run; the same tars as zstd layers against `zstd -dc`;
//! peak memory (VmHWM) of a fresh process each.
//!
//! `cargo bench --bench catalogue` (`apt-get install -y zstd isal` for the
//! peers). The layouts are generated once under `target/bench-image/` and
//! `target/bench-image-zstd/` and reused.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use imagelock::image::{ImageLocation, Platform, ReadOptions, open_local, read_catalogue};
use sha2::{Digest as _, Sha256};

const LAYERS: usize = 5;
/// Uncompressed bytes of binary-like content per layer.
const BINARY_PER_LAYER: usize = 380 << 20;
const TEXT_FILES_PER_LAYER: usize = 20_000;
const DISTS_PER_LAYER: usize = 60;

/// xorshift: fast, deterministic bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A writer that hashes what goes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn hex_digest(h: Sha256) -> String {
    format!("sha256:{}", hex::encode(h.finalize()))
}

const WORDS: &[&str] = &[
    "import", "def", "return", "self", "value", "numpy", "array", "for", "in", "range", "if",
    "else", "class", "data", "result", "print", "None", "True", "config", "path", "os", "lambda",
];

/// Writes one gzip layer; returns (blob digest, size, diff_id).
fn write_layer(dir: &Path, seed: u64) -> (String, u64, String) {
    let tmp = dir.join(format!("layer-{seed}.tmp"));
    let file = std::fs::File::create(&tmp).unwrap();
    let blob = Hashing {
        inner: std::io::BufWriter::new(file),
        hasher: Sha256::new(),
        len: 0,
    };
    let gz = flate2::write::GzEncoder::new(blob, flate2::Compression::new(6));
    let tar_out = Hashing {
        inner: gz,
        hasher: Sha256::new(),
        len: 0,
    };
    let mut tar = tar::Builder::new(tar_out);
    let mut rng = Rng(seed * 7919 + 1);
    let add = |tar: &mut tar::Builder<_>, path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, path, data).unwrap();
    };
    // Binary-like files: 4 KiB blocks, half random, half repeated, so they
    // compress about as well as shared libraries do.
    let mut written = 0;
    let mut n = 0;
    while written < BINARY_PER_LAYER {
        let size = (8 << 20) + (rng.next() % (24 << 20)) as usize;
        let mut data = vec![0u8; size];
        for block in data.chunks_mut(4096) {
            let half = block.len() / 2;
            rng.fill(&mut block[..half]);
            let pattern = rng.next().to_le_bytes();
            for (i, b) in block[half..].iter_mut().enumerate() {
                *b = pattern[i % 8];
            }
        }
        add(&mut tar, &format!("usr/lib/layer{seed}/lib{n}.so"), &data);
        written += size;
        n += 1;
    }
    // Many small text files.
    for i in 0..TEXT_FILES_PER_LAYER {
        let len = 200 + (rng.next() % 4000) as usize;
        let mut text = String::with_capacity(len + 16);
        while text.len() < len {
            text.push_str(WORDS[(rng.next() % WORDS.len() as u64) as usize]);
            text.push(if rng.next().is_multiple_of(9) {
                '\n'
            } else {
                ' '
            });
        }
        add(
            &mut tar,
            &format!("usr/share/layer{seed}/pkg{}/mod{i}.py", i % 300),
            text.as_bytes(),
        );
    }
    // dist-infos.
    for d in 0..DISTS_PER_LAYER {
        let base = format!("usr/local/lib/python3.11/site-packages/pkg{seed}x{d}-1.{d}.dist-info");
        add(
            &mut tar,
            &format!("{base}/METADATA"),
            format!("Metadata-Version: 2.1\nName: pkg{seed}x{d}\nVersion: 1.{d}\n").as_bytes(),
        );
        add(&mut tar, &format!("{base}/INSTALLER"), b"pip\n");
        add(
            &mut tar,
            &format!("{base}/WHEEL"),
            b"Wheel-Version: 1.0\nTag: py3-none-any\n",
        );
        let record: String = (0..200)
            .map(|f| format!("pkg{seed}x{d}/f{f}.py,sha256=abc,10\n"))
            .collect();
        add(&mut tar, &format!("{base}/RECORD"), record.as_bytes());
    }
    let tar_out = tar.into_inner().unwrap();
    let diff_id = hex_digest(tar_out.hasher);
    let mut blob = tar_out.inner.finish().unwrap();
    blob.flush().unwrap();
    let digest = hex_digest(blob.hasher);
    let size = blob.len;
    std::fs::rename(&tmp, dir.join("blobs/sha256").join(&digest[7..])).unwrap();
    (digest, size, diff_id)
}

fn write_json_blob(dir: &Path, bytes: &[u8]) -> (String, usize) {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
    std::fs::write(dir.join("blobs/sha256").join(&digest[7..]), bytes).unwrap();
    (digest, bytes.len())
}

fn generate(dir: &Path) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    eprintln!("generating {LAYERS} gzip layers under {} …", dir.display());
    let started = Instant::now();
    let layers: Vec<(String, u64, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..LAYERS)
            .map(|i| s.spawn(move || write_layer(dir, i as u64 + 1)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.2).collect::<Vec<_>>()},
    });
    let (config_digest, config_size) = write_json_blob(dir, &serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l.0, "size": l.1,
        })).collect::<Vec<_>>(),
    });
    let (m_digest, m_size) = write_json_blob(dir, &serde_json::to_vec(&manifest).unwrap());
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m_digest, "size": m_size}
        ]}))
        .unwrap(),
    )
    .unwrap();
    eprintln!("generated in {:.1} s", started.elapsed().as_secs_f64());
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// In a fresh process: read the catalogue, print seconds and VmHWM.
fn child(dir: &str, threads: usize) {
    let image: ImageLocation = format!("oci:{dir}").parse().unwrap();
    let source = open_local(&image).unwrap();
    let opts = ReadOptions {
        threads,
        ..ReadOptions::default()
    };
    let started = Instant::now();
    let c = read_catalogue(source.as_ref(), &Platform::linux_amd64(), &opts).unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(c.python_dists.len(), LAYERS * DISTS_PER_LAYER);
    println!("{secs} {}", vm_hwm_kib());
}

/// The same image with zstd layers (level 3, as `buildah --compression-format
/// zstd` writes them) beside the gzip one: same tars, same diff_ids.
fn generate_zstd(gzip_dir: &Path, dir: &Path, manifest: &serde_json::Value) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    eprintln!(
        "recompressing the layers with zstd under {} …",
        dir.display()
    );
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config = std::fs::read(gzip_dir.join("blobs/sha256").join(&config_digest[7..])).unwrap();
    write_json_blob(dir, &config);
    let mut layers = Vec::new();
    for l in manifest["layers"].as_array().unwrap() {
        let from = gzip_dir
            .join("blobs/sha256")
            .join(&l["digest"].as_str().unwrap()[7..]);
        let tmp = dir.join("layer.tmp");
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "gzip -dc '{}' | zstd -q -3 -c > '{}'",
                from.display(),
                tmp.display()
            ))
            .status()
            .unwrap()
            .success();
        assert!(ok, "zstd is needed: apt-get install -y zstd");
        let mut hasher = Sha256::new();
        let mut file = std::fs::File::open(&tmp).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = std::io::Read::read(&mut file, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        let digest = hex_digest(hasher);
        std::fs::rename(&tmp, dir.join("blobs/sha256").join(&digest[7..])).unwrap();
        layers.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": digest, "size": size,
        }));
    }
    let mut manifest = manifest.clone();
    manifest["layers"] = serde_json::Value::Array(layers);
    let (m_digest, m_size) = write_json_blob(dir, &serde_json::to_vec(&manifest).unwrap());
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m_digest, "size": m_size}
        ]}))
        .unwrap(),
    )
    .unwrap();
}

/// The layer blobs of the layout in `dir`.
fn layer_blobs(dir: &Path) -> (serde_json::Value, Vec<PathBuf>) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let d = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(&d[7..])).unwrap())
            .unwrap();
    let blobs = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            dir.join("blobs/sha256")
                .join(&l["digest"].as_str().unwrap()[7..])
        })
        .collect();
    (manifest, blobs)
}

/// Runs `command` (with `{}` for the blob) over every blob, one after the
/// other; seconds.
fn sequential(blobs: &[PathBuf], command: &str) -> f64 {
    let started = Instant::now();
    for b in blobs {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(command.replace("{}", &format!("'{}'", b.display())))
            .status()
            .unwrap()
            .success();
        assert!(ok, "{command}");
    }
    started.elapsed().as_secs_f64()
}

/// Like [`sequential`], and the CPU seconds (user + system) the commands
/// used, as `wait4` accounts them.
fn sequential_cpu(blobs: &[PathBuf], command: &str) -> (f64, f64) {
    let started = Instant::now();
    let mut cpu = 0.0;
    for b in blobs {
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%U %S", "sh", "-c"])
            .arg(command.replace("{}", &format!("'{}'", b.display())))
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}");
        cpu += String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or_default()
            .split_whitespace()
            .map(|v| v.parse::<f64>().unwrap_or(0.0))
            .sum::<f64>();
    }
    (started.elapsed().as_secs_f64(), cpu)
}

/// CPU seconds (user + system) the calling thread has used, from
/// `/proc/thread-self/stat` (clock ticks of 10 ms): on a machine shared with
/// other work, wall time would count the waits for a core too.
fn thread_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    // utime and stime, fields 14 and 15 of stat(5), after the state (3).
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

/// CPU seconds one core takes for SHA-256 (the `sha2` crate, as imagelock
/// uses it) of each zstd blob and of its decompressed tar, each already in
/// memory; and the bytes of each.
fn sha256_alone(blobs: &[PathBuf]) -> (f64, u64, f64, u64) {
    let (mut blob_secs, mut blob_bytes, mut tar_secs, mut tar_bytes) = (0.0, 0, 0.0, 0);
    for b in blobs {
        let blob = std::fs::read(b).unwrap();
        let started = thread_cpu();
        std::hint::black_box(Sha256::digest(&blob));
        blob_secs += thread_cpu() - started;
        blob_bytes += blob.len() as u64;
        let tar = zstd::stream::decode_all(&blob[..]).unwrap();
        drop(blob);
        let started = thread_cpu();
        std::hint::black_box(Sha256::digest(&tar));
        tar_secs += thread_cpu() - started;
        tar_bytes += tar.len() as u64;
    }
    (blob_secs, blob_bytes, tar_secs, tar_bytes)
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null"))
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child-read") {
        child(&args[i + 1], args[i + 2].parse().unwrap());
        return;
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let dir = target.join("bench-image");
    if !dir.join("index.json").is_file() {
        let _ = std::fs::remove_dir_all(&dir);
        generate(&dir);
    }
    let (manifest, blobs) = layer_blobs(&dir);
    let zstd_dir = target.join("bench-image-zstd");
    if have("zstd") && !zstd_dir.join("index.json").is_file() {
        let _ = std::fs::remove_dir_all(&zstd_dir);
        generate_zstd(&dir, &zstd_dir, &manifest);
    }
    let compressed: u64 = blobs
        .iter()
        .map(|b| std::fs::metadata(b).unwrap().len())
        .sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "image: {} gzip layers, {:.2} GB compressed; {cores} cores",
        blobs.len(),
        compressed as f64 / 1e9
    );

    let run_child = |dir: &Path, threads: usize| -> (f64, u64) {
        let out = Command::new(&args[0])
            .args(["--child-read", dir.to_str().unwrap(), &threads.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut parts = text.split_whitespace();
        (
            parts.next().unwrap().parse().unwrap(),
            parts.next().unwrap().parse().unwrap(),
        )
    };
    let row = |what: &str, (secs, kib): (f64, u64), floor: f64, peer: &str| {
        println!(
            "| {what} | {secs:.2} s | {:.2}x {peer} | {} MiB |",
            secs / floor,
            kib / 1024
        );
    };
    // Warm the page cache so every side reads from memory.
    let _ = sequential(&blobs, "gzip -dc {} > /dev/null");
    let gzip = sequential(&blobs, "gzip -dc {} > /dev/null");
    let igzip = have("igzip").then(|| sequential(&blobs, "igzip -dc {} | sha256sum > /dev/null"));
    let parallel = run_child(&dir, 0);
    let single = run_child(&dir, 1);
    let verify = run_verify(&dir);
    let gzip = gzip.min(sequential(&blobs, "gzip -dc {} > /dev/null"));
    println!("\n| reader (gzip layers) | wall | vs peer | peak memory |");
    println!("|---|---:|---:|---:|");
    println!("| `gzip -dc`, one layer after another | {gzip:.2} s | | |");
    if let Some(igzip) = igzip {
        println!("| `igzip -dc | sha256sum`, one layer after another | {igzip:.2} s | | |");
        row(
            "imagelock catalogue, one layer at a time",
            single,
            igzip,
            "`igzip -dc | sha256sum`",
        );
        row(
            &format!("imagelock catalogue, {cores} layers at once"),
            parallel,
            igzip,
            "`igzip -dc | sha256sum`",
        );
        row(
            "imagelock verify --image oci:, end to end",
            verify,
            igzip,
            "`igzip -dc | sha256sum`",
        );
    }
    row(
        "imagelock catalogue, one layer at a time",
        single,
        gzip,
        "`gzip -dc`",
    );
    row(
        &format!("imagelock catalogue, {cores} layers at once"),
        parallel,
        gzip,
        "`gzip -dc`",
    );
    row(
        "imagelock verify --image oci:, end to end",
        verify,
        gzip,
        "`gzip -dc`",
    );

    if zstd_dir.join("index.json").is_file() {
        let (_, zblobs) = layer_blobs(&zstd_dir);
        let dc = "zstd -q -dc {} > /dev/null";
        let _ = sequential(&zblobs, dc);
        let (zstd, zstd_cpu) = sequential_cpu(&zblobs, dc);
        let piped = sequential(&zblobs, "zstd -q -dc {} | sha256sum > /dev/null");
        let piped_openssl = have("openssl")
            .then(|| sequential(&zblobs, "zstd -q -dc {} | openssl sha256 > /dev/null"));
        let parallel = run_child(&zstd_dir, 0);
        let single = run_child(&zstd_dir, 1);
        let (verify, verify_cpu) = run_verify_cpu(&zstd_dir);
        let (again, again_cpu) = sequential_cpu(&zblobs, dc);
        let (zstd, zstd_cpu) = if again < zstd {
            (again, again_cpu)
        } else {
            (zstd, zstd_cpu)
        };
        let (blob_sha, blob_bytes, tar_sha, tar_bytes) = sha256_alone(&zblobs);
        let floor = (zstd_cpu + blob_sha + tar_sha) / cores as f64;
        println!("\n| reader (zstd layers) | wall | vs peer | peak memory |");
        println!("|---|---:|---:|---:|");
        println!("| `zstd -dc`, one layer after another | {zstd:.2} s | | |");
        println!(
            "| `zstd -dc | sha256sum`, one layer after another | {piped:.2} s | {:.2}x `zstd -dc` | |",
            piped / zstd
        );
        if let Some(p) = piped_openssl {
            println!(
                "| `zstd -dc | openssl sha256`, one layer after another | {p:.2} s | {:.2}x `zstd -dc` | |",
                p / zstd
            );
        }
        row(
            "imagelock catalogue, one layer at a time",
            single,
            zstd,
            "`zstd -dc`",
        );
        row(
            &format!("imagelock catalogue, {cores} layers at once"),
            parallel,
            zstd,
            "`zstd -dc`",
        );
        row(
            "imagelock verify --image oci:, end to end",
            verify,
            zstd,
            "`zstd -dc`",
        );
        println!("\n| the floor on {cores} cores (zstd layers) | CPU seconds | rate |");
        println!("|---|---:|---:|");
        println!(
            "| `zstd -dc` (user + system) | {zstd_cpu:.2} s | {:.2} GB/s of tar |",
            tar_bytes as f64 / 1e9 / zstd_cpu
        );
        println!(
            "| SHA-256 of the blobs ({:.2} GB, `sha2`, in memory) | {blob_sha:.2} s | {:.2} GB/s |",
            blob_bytes as f64 / 1e9,
            blob_bytes as f64 / 1e9 / blob_sha
        );
        println!(
            "| SHA-256 of the tars ({:.2} GB, `sha2`, in memory) | {tar_sha:.2} s | {:.2} GB/s |",
            tar_bytes as f64 / 1e9,
            tar_bytes as f64 / 1e9 / tar_sha
        );
        println!(
            "| imagelock verify (user + system) | {verify_cpu:.2} s | {:.2}x the sum above |",
            verify_cpu / (zstd_cpu + blob_sha + tar_sha)
        );
        println!(
            "| floor: (`zstd -dc` + both SHA-256) / {cores} cores | {floor:.2} s wall | {:.2}x `zstd -dc` |",
            floor / zstd
        );
    }
}

/// `imagelock verify --image oci:DIR` against a minimal lock (a `FROM
/// scratch` image, nothing locked): the whole command, process start to
/// report, with its peak memory from `wait4` as `/usr/bin/time` reports it.
fn run_verify(image: &Path) -> (f64, u64) {
    run_verify_cpu(image).0
}

/// [`run_verify`], and the CPU seconds (user + system) it used.
fn run_verify_cpu(image: &Path) -> ((f64, u64), f64) {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("app")).unwrap();
    std::fs::write(work.path().join("app/Dockerfile"), "FROM scratch\n").unwrap();
    let lock = r#"version = 1

[image]
name = "app"
definition = "app/Dockerfile"
input-hash = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
platforms = ["linux/amd64"]

[[stages]]
index = 0
base = "scratch"
"#;
    std::fs::create_dir_all(work.path().join("lockfiles")).unwrap();
    std::fs::write(work.path().join("lockfiles/app.lock"), lock).unwrap();
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M %U %S"])
        .arg(env!("CARGO_BIN_EXE_imagelock"))
        .args(["verify", "--format", "json", "--image"])
        .arg(format!("oci:{}", image.display()))
        .arg("app/Dockerfile")
        .current_dir(work.path())
        .output()
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut last = stderr.lines().last().unwrap_or_default().split_whitespace();
    let kib = last.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let cpu = last.filter_map(|v| v.parse::<f64>().ok()).sum();
    ((secs, kib), cpu)
}
