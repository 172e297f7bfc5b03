//! A Python package index written by the test: real wheels (stored zip
//! archives with `METADATA`, `WHEEL`, `RECORD`) and sdists (`.tar.gz`),
//! listed on PEP 691 JSON pages with PEP 658 metadata files, for
//! [`super::http::StaticServer`] to serve.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One index under `root`: `simple/<name>/index.json` and `files/`.
pub struct PyIndex {
    pub root: PathBuf,
    /// project -> files (filename, sha256, size, has a metadata file).
    projects: BTreeMap<String, Vec<serde_json::Value>>,
}

fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl PyIndex {
    pub fn new(root: &Path) -> Self {
        std::fs::create_dir_all(root.join("files")).unwrap();
        PyIndex {
            root: root.to_path_buf(),
            projects: BTreeMap::new(),
        }
    }

    /// The core metadata of `name==version` with `requires` lines.
    pub fn metadata(name: &str, version: &str, requires: &[&str]) -> String {
        let mut m = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
        for r in requires {
            m.push_str(&format!("Requires-Dist: {r}\n"));
        }
        m
    }

    /// Adds a pure wheel `name-version-py3-none-any.whl` with a module
    /// `<name>_mod.py`; returns its filename.
    pub fn wheel(&mut self, name: &str, version: &str, requires: &[&str]) -> String {
        let dist = name.replace('-', "_");
        let module = format!("VERSION = {version:?}\n");
        self.wheel_with(
            name,
            version,
            requires,
            &[(&format!("{dist}_mod.py"), module.as_bytes())],
        )
    }

    /// Adds a pure wheel holding `files` (paths in site-packages); returns
    /// its filename.
    pub fn wheel_with(
        &mut self,
        name: &str,
        version: &str,
        requires: &[&str],
        files: &[(&str, &[u8])],
    ) -> String {
        self.wheel_tagged(name, version, requires, "py3-none-any", files)
    }

    /// Adds a wheel for the compressed tag set `tag` (PEP 425, e.g.
    /// `cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64`), holding
    /// `files`; its `WHEEL` lists every expanded tag, and a wheel that is
    /// not `py3-none-any` is platlib. Returns its filename.
    pub fn wheel_tagged(
        &mut self,
        name: &str,
        version: &str,
        requires: &[&str],
        tag: &str,
        files: &[(&str, &[u8])],
    ) -> String {
        let dist = name.replace('-', "_");
        let filename = format!("{dist}-{version}-{tag}.whl");
        let info = format!("{dist}-{version}.dist-info");
        let metadata = Self::metadata(name, version, requires);
        let mut wheel = format!(
            "Wheel-Version: 1.0\nGenerator: imagelock-tests\nRoot-Is-Purelib: {}\n",
            tag == "py3-none-any"
        );
        let mut parts = tag.splitn(3, '-');
        let (pys, abis, plats) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        for py in pys.split('.') {
            for abi in abis.split('.') {
                for plat in plats.split('.') {
                    wheel.push_str(&format!("Tag: {py}-{abi}-{plat}\n"));
                }
            }
        }
        let mut entries: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(p, d)| ((*p).to_string(), d.to_vec()))
            .collect();
        entries.extend([
            (format!("{info}/METADATA"), metadata.clone().into_bytes()),
            (format!("{info}/WHEEL"), wheel.into_bytes()),
        ]);
        let mut record = String::new();
        for (path, data) in &entries {
            use base64::Engine as _;
            let digest =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(data));
            record.push_str(&format!("{path},sha256={digest},{}\n", data.len()));
        }
        record.push_str(&format!("{info}/RECORD,,\n"));
        entries.push((format!("{info}/RECORD"), record.into_bytes()));
        let bytes = stored_zip(&entries);
        self.add_file(name, &filename, &bytes, Some(&metadata));
        filename
    }

    /// Adds an sdist `name-version.tar.gz` holding `files` (paths inside
    /// `name-version/`); returns its filename.
    pub fn sdist(&mut self, name: &str, version: &str, files: &[(&str, &[u8])]) -> String {
        self.sdist_at(name, version, files, flate2::Compression::fast())
    }

    /// [`Self::sdist`] with gzip's stored blocks (a large sdist written
    /// quickly).
    pub fn sdist_stored(&mut self, name: &str, version: &str, files: &[(&str, &[u8])]) -> String {
        self.sdist_at(name, version, files, flate2::Compression::none())
    }

    fn sdist_at(
        &mut self,
        name: &str,
        version: &str,
        files: &[(&str, &[u8])],
        level: flate2::Compression,
    ) -> String {
        let base = format!("{}-{version}", name.replace('-', "_"));
        let filename = format!("{base}.tar.gz");
        let path = self.root.join("files").join(&filename);
        let out = std::fs::File::create(&path).unwrap();
        let gz = flate2::write::GzEncoder::new(out, level);
        let mut tar = tar::Builder::new(gz);
        for (rel, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, format!("{base}/{rel}"), *data)
                .unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        self.add_written(name, &filename);
        filename
    }

    /// Adds a file already written under `files/`, streaming its hash.
    pub fn add_written(&mut self, name: &str, filename: &str) {
        let path = self.root.join("files").join(filename);
        let mut hasher = Sha256::new();
        let mut f = std::fs::File::open(&path).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = std::io::Read::read(&mut f, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        let sha = hex::encode(hasher.finalize());
        self.push(name, filename, &sha, size, None);
    }

    fn add_file(&mut self, name: &str, filename: &str, bytes: &[u8], metadata: Option<&str>) {
        std::fs::write(self.root.join("files").join(filename), bytes).unwrap();
        self.list(name, filename, bytes, metadata);
    }

    fn list(&mut self, name: &str, filename: &str, bytes: &[u8], metadata: Option<&str>) {
        let meta_hash = metadata.map(|m| {
            let p = self.root.join("files").join(format!("{filename}.metadata"));
            std::fs::write(p, m).unwrap();
            sha256_hex(m.as_bytes())
        });
        self.push(
            name,
            filename,
            &sha256_hex(bytes),
            bytes.len() as u64,
            meta_hash,
        );
    }

    fn push(&mut self, name: &str, filename: &str, sha: &str, size: u64, meta: Option<String>) {
        let mut file = serde_json::json!({
            "filename": filename,
            "url": format!("../../files/{filename}"),
            "hashes": {"sha256": sha},
            "upload-time": "2026-01-01T00:00:00Z",
            "size": size,
        });
        if let Some(h) = meta {
            // Only PEP 714's name, as PyPI serves it: the older
            // `dist-info-metadata` breaks pip 23.0 (Debian 12's).
            file["core-metadata"] = serde_json::json!({ "sha256": h });
        }
        self.projects.entry(normalize(name)).or_default().push(file);
        self.write_pages();
    }

    fn write_pages(&self) {
        let simple = self.root.join("simple");
        for (name, files) in &self.projects {
            let dir = simple.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let page = serde_json::json!({
                "meta": {"api-version": "1.1"},
                "name": name,
                "files": files,
            });
            std::fs::write(dir.join("index.json"), page.to_string()).unwrap();
        }
        let list: Vec<_> = self
            .projects
            .keys()
            .map(|n| serde_json::json!({ "name": n }))
            .collect();
        let root = serde_json::json!({"meta": {"api-version": "1.1"}, "projects": list});
        std::fs::write(simple.join("index.json"), root.to_string()).unwrap();
    }
}

/// A zip archive of `entries`, stored (not compressed).
fn stored_zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let crc = crc.sum();
        let offset = out.len() as u32;
        let mut local = Vec::new();
        local.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        local.extend_from_slice(&20u16.to_le_bytes()); // version needed
        local.extend_from_slice(&0u16.to_le_bytes()); // flags
        local.extend_from_slice(&0u16.to_le_bytes()); // stored
        local.extend_from_slice(&0u16.to_le_bytes()); // time
        local.extend_from_slice(&0x21u16.to_le_bytes()); // date 1980-01-01
        local.extend_from_slice(&crc.to_le_bytes());
        local.extend_from_slice(&(data.len() as u32).to_le_bytes());
        local.extend_from_slice(&(data.len() as u32).to_le_bytes());
        local.extend_from_slice(&(name.len() as u16).to_le_bytes());
        local.extend_from_slice(&0u16.to_le_bytes());
        local.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&local);
        out.extend_from_slice(data);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // made by
        central.extend_from_slice(&20u16.to_le_bytes()); // needed
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0x21u16.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes()); // extra
        central.extend_from_slice(&0u16.to_le_bytes()); // comment
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attrs
        central.extend_from_slice(&(0o100644u32 << 16).to_le_bytes()); // external
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    let _ = out.flush();
    out
}
