//! Build environments made without pip: an sdist's build requirements are
//! resolved by imagelock's own resolver for the host interpreter (wheels
//! only), downloaded through the index client (hash-checked) and unpacked
//! into a fresh `venv --without-pip` by `build_env.py`, which then runs only
//! the backend's hooks. Anything this path cannot do (a build requirement
//! that is only an sdist, a host that is not CPython on glibc Linux, a
//! `.zip` sdist) goes back to the pip path, and says why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pep440_rs::Version;
use pep508_rs::PackageName;
use pubgrub::Ranges;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{IndexClient, IndexSource, PypiError};
use crate::solve::python::{
    CoreMetadata, DirectDist, DistFile, Libc, PackageSource, PinnedSource, ResolveRequest,
    SourceError, TargetEnv,
};

/// The host interpreter that runs build backends, as probed once.
#[derive(Debug)]
pub(super) struct HostPython {
    /// The executable's real path and `sys.version`: part of every
    /// environment's key.
    pub id: String,
    /// The interpreter itself (`sys.executable`), run for every build: a
    /// version manager's shim (`python3` of pyenv or asdf, a shell script
    /// choosing the interpreter) is asked once, by the probe.
    pub executable: PathBuf,
    /// The target to resolve build requirements for, or why there is none
    /// (then the pip path is taken).
    pub target: Result<Arc<TargetEnv>, String>,
}

const PROBE: &str = r#"import json, os, platform, sys
print(json.dumps({"impl": sys.implementation.name, "version": platform.python_version(),
  "machine": platform.machine(), "libc": list(platform.libc_ver()), "os": sys.platform,
  "id": os.path.realpath(sys.executable) + "\n" + sys.version, "exe": sys.executable}))"#;

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "impl")]
    implementation: String,
    version: String,
    machine: String,
    libc: (String, String),
    os: String,
    id: String,
    exe: String,
}

/// Asks `python` what it is; `None` when it does not run.
pub(super) fn probe(python: &Path) -> Option<HostPython> {
    let out = std::process::Command::new(python)
        .args(["-I", "-c", PROBE])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let p: Probe = serde_json::from_slice(&out.stdout).ok()?;
    let target = host_target(&p);
    // An interpreter that cannot name itself is run as it was given.
    let executable = match PathBuf::from(&p.exe) {
        exe if exe.is_absolute() => exe,
        _ => python.to_path_buf(),
    };
    Some(HostPython {
        id: p.id,
        executable,
        target,
    })
}

fn host_target(p: &Probe) -> Result<Arc<TargetEnv>, String> {
    if p.implementation != "cpython" || p.os != "linux" {
        return Err(format!(
            "the host Python is {} on {}, and imagelock resolves build requirements for CPython on Linux only",
            p.implementation, p.os
        ));
    }
    if p.libc.0 != "glibc" {
        return Err("the host's C library is not glibc".into());
    }
    let platform = match p.machine.as_str() {
        "x86_64" => "linux/amd64",
        "aarch64" => "linux/arm64",
        "ppc64le" => "linux/ppc64le",
        "s390x" => "linux/s390x",
        "i686" | "i386" => "linux/386",
        "armv7l" => "linux/arm/v7",
        other => {
            return Err(format!(
                "the host machine `{other}` has no wheel platform here"
            ));
        }
    };
    let libc = Libc::glibc(&p.libc.1).map_err(|e| e.to_string())?;
    TargetEnv::cpython(Some(&p.version), platform, Some(libc))
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// `[build-system]` of an sdist's `pyproject.toml`, with PEP 517's
/// defaults when it is missing (as pip applies them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct BuildSystem {
    pub requires: Vec<String>,
    pub backend: String,
    pub backend_path: Vec<String>,
}

impl BuildSystem {
    /// From the text of `pyproject.toml` (`None`: the sdist has none).
    pub fn parse(pyproject: Option<&str>) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct File {
            #[serde(rename = "build-system")]
            build_system: Option<Table>,
        }
        #[derive(Deserialize)]
        struct Table {
            requires: Option<Vec<String>>,
            #[serde(rename = "build-backend")]
            build_backend: Option<String>,
            #[serde(rename = "backend-path")]
            backend_path: Option<Vec<String>>,
        }
        let table = match pyproject {
            Some(text) => {
                toml::from_str::<File>(text)
                    .map_err(|e| format!("its pyproject.toml does not read: {e}"))?
                    .build_system
            }
            None => None,
        };
        let table = table.unwrap_or(Table {
            requires: None,
            build_backend: None,
            backend_path: None,
        });
        Ok(BuildSystem {
            requires: table
                .requires
                .unwrap_or_else(|| vec!["setuptools>=40.8.0".into()]),
            backend: table
                .build_backend
                .unwrap_or_else(|| "setuptools.build_meta:__legacy__".into()),
            backend_path: table.backend_path.unwrap_or_default(),
        })
    }
}

/// Build backends that write the `[project]` table's static fields into
/// the metadata as PEP 621 requires (setuptools only from 61, so not when
/// the build requirements cap it).
const PEP_621_BACKENDS: &[&str] = &[
    "setuptools.build_meta",
    "hatchling.build",
    "flit_core.buildapi",
    "pdm.backend",
    "scikit_build_core.build",
    "mesonpy",
    "maturin",
    "uv_build",
];

/// The core metadata an sdist's `pyproject.toml` states statically (PEP
/// 621), as uv reads it instead of running the backend: `name`,
/// `version`, `requires-python`, `dependencies` and
/// `optional-dependencies`, none of them listed in `dynamic`, for a
/// backend that honours `[project]`. `None` when any of that does not
/// hold: the metadata is built then.
pub(super) fn static_metadata(pyproject: &str) -> Option<String> {
    let doc: toml::Table = toml::from_str(pyproject).ok()?;
    let system = BuildSystem::parse(Some(pyproject)).ok()?;
    // setuptools reads `[project]` from 61 on: its requirement must leave
    // the newest free (none, or only a lower bound of 61 or more).
    let old_setuptools = system.backend.starts_with("setuptools.")
        && system.requires.iter().any(|r| {
            let r = r.trim();
            let end = r
                .find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
                .unwrap_or(r.len());
            let (name, spec) = r.split_at(end);
            let spec = spec.trim();
            let new_enough = spec.is_empty()
                || spec.strip_prefix(">=").is_some_and(|v| {
                    !v.contains([',', ';', '<', '=', '!', '~'])
                        && v.trim()
                            .split('.')
                            .next()
                            .and_then(|m| m.parse::<u32>().ok())
                            .is_some_and(|m| m >= 61)
                });
            name.eq_ignore_ascii_case("setuptools") && !new_enough
        });
    if !PEP_621_BACKENDS.contains(&system.backend.as_str()) || old_setuptools {
        return None;
    }
    let project = doc.get("project")?.as_table()?;
    let strings = |v: &toml::Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    let dynamic = project.get("dynamic").map_or(Some(Vec::new()), strings)?;
    if dynamic.iter().any(|d| {
        matches!(
            d.as_str(),
            "name" | "version" | "dependencies" | "optional-dependencies" | "requires-python"
        )
    }) {
        return None;
    }
    let mut out = format!(
        "Metadata-Version: 2.2\nName: {}\nVersion: {}\n",
        project.get("name")?.as_str()?,
        project.get("version")?.as_str()?
    );
    if let Some(v) = project.get("requires-python") {
        out.push_str(&format!("Requires-Python: {}\n", v.as_str()?));
    }
    for d in project
        .get("dependencies")
        .map_or(Some(Vec::new()), strings)?
    {
        out.push_str(&format!("Requires-Dist: {d}\n"));
    }
    if let Some(extras) = project.get("optional-dependencies") {
        for (extra, deps) in extras.as_table()? {
            // PEP 685's normalized form.
            let mut name = String::new();
            for c in extra.to_ascii_lowercase().chars() {
                if matches!(c, '-' | '_' | '.') {
                    if !name.ends_with('-') {
                        name.push('-');
                    }
                } else {
                    name.push(c);
                }
            }
            out.push_str(&format!("Provides-Extra: {name}\n"));
            for d in strings(deps)? {
                let line = match d.split_once(';') {
                    Some((req, marker)) => {
                        format!(
                            "{}; ({}) and extra == \"{name}\"",
                            req.trim(),
                            marker.trim()
                        )
                    }
                    None => format!("{}; extra == \"{name}\"", d.trim()),
                };
                out.push_str(&format!("Requires-Dist: {line}\n"));
            }
        }
    }
    if out.contains('\r') || out.lines().any(|l| l.trim().is_empty()) {
        return None;
    }
    Some(out)
}

/// The build requirements' view of the indexes: only wheels. An sdist's
/// metadata is refused (the release is passed over) and remembered, so
/// that a resolution pip might have answered with an sdist goes back to
/// pip rather than differ from it.
struct WheelsOnly {
    inner: IndexSource,
    refused: Mutex<Vec<String>>,
}

impl PackageSource for WheelsOnly {
    fn files(&self, name: &PackageName) -> Result<Arc<Vec<DistFile>>, SourceError> {
        self.inner.files(name)
    }

    fn metadata(
        &self,
        name: &PackageName,
        file: &DistFile,
    ) -> Result<Arc<CoreMetadata>, SourceError> {
        if !file.filename.ends_with(".whl") {
            let why = format!("`{}` is only an sdist", file.filename);
            self.refused
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(why.clone());
            return Err(SourceError::Failed(why));
        }
        self.inner.metadata(name, file)
    }

    fn direct(&self, _name: &PackageName, url: &str) -> Result<DirectDist, SourceError> {
        let why = format!("`{}` is a direct URL", super::redact(url));
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(why.clone());
        Err(SourceError::Failed(why))
    }

    fn prefetch(
        &self,
        name: &PackageName,
        extras: &[pep508_rs::ExtraName],
        range: &Ranges<Version>,
    ) {
        self.inner.prefetch(name, extras, range);
    }
}

/// Why the pip-free path was not taken: said with `-v`, then pip builds.
#[derive(Debug)]
pub(super) struct Fallback(pub String);

/// A build environment: its directory (under the directory of all of them)
/// and, when it is not made yet, the directory of the wheels to unpack.
pub(super) struct PlannedEnv {
    pub dir: PathBuf,
    pub wheels: Option<tempfile::TempDir>,
}

/// Requirements (as written, sorted) -> environment directory name, for
/// one client's life: the indexes do not change within a run.
pub(super) type EnvMemo = Mutex<BTreeMap<Vec<String>, String>>;

impl IndexClient {
    /// The environment holding `requires` resolved for `host`: found by
    /// its key (the pinned files' hashes and the interpreter), or planned
    /// with its wheels downloaded.
    pub(super) async fn planned_env(
        self: &Arc<Self>,
        host: &HostPython,
        target: &Arc<TargetEnv>,
        requires: &[String],
        envs: &Path,
    ) -> Result<Result<PlannedEnv, Fallback>, PypiError> {
        let mut asked = requires.to_vec();
        asked.sort();
        let remembered = self
            .build_memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&asked)
            .cloned();
        if let Some(name) = remembered {
            let dir = envs.join(name);
            if dir.join(".complete").exists() {
                return Ok(Ok(PlannedEnv { dir, wheels: None }));
            }
        }
        let source = WheelsOnly {
            inner: IndexSource::new(
                self.clone(),
                tokio::runtime::Handle::current(),
                target.clone(),
                Default::default(),
            )
            .wheels_only(),
            refused: Mutex::default(),
        };
        let request = ResolveRequest {
            requirements: asked.clone(),
            ..ResolveRequest::default()
        };
        let solve_target = target.clone();
        let (solved, source) = tokio::task::spawn_blocking(move || {
            let solved = crate::solve::python::resolve(&source, &solve_target, &request);
            (solved, source)
        })
        .await
        .map_err(|e| PypiError::Io(e.to_string()))?;
        let refused = source
            .refused
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(first) = refused.first() {
            return Ok(Err(Fallback(format!(
                "a build requirement in reach, {first}"
            ))));
        }
        let pins = match solved {
            Ok(pins) => pins,
            Err(e) => {
                return Ok(Err(Fallback(format!(
                    "imagelock's resolver did not resolve the build requirements: {e}"
                ))));
            }
        };
        let mut files = Vec::new();
        let mut key = vec![host.id.clone()];
        for pin in &pins {
            let PinnedSource::Index(file) = &pin.source else {
                return Ok(Err(Fallback(format!(
                    "the build requirement `{}` is not a file of the index",
                    pin.name
                ))));
            };
            let version = pin.version.as_ref().map(ToString::to_string);
            key.push(format!(
                "{}=={} {}",
                pin.name,
                version.unwrap_or_default(),
                file.sha256.as_deref().unwrap_or(&file.url)
            ));
            files.push(file.clone());
        }
        let name = format!(
            "env-{}",
            &hex::encode(Sha256::digest(key.join("\n").as_bytes()))[..32]
        );
        self.build_memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(asked, name.clone());
        let dir = envs.join(&name);
        if dir.join(".complete").exists() {
            return Ok(Ok(PlannedEnv { dir, wheels: None }));
        }
        let wheels = tempfile::Builder::new()
            .prefix("imagelock-wheels-")
            .tempdir()
            .map_err(|e| PypiError::Io(e.to_string()))?;
        let downloads = files.iter().map(|f| self.download_wheel(f, wheels.path()));
        futures_util::future::try_join_all(downloads).await?;
        Ok(Ok(PlannedEnv {
            dir,
            wheels: Some(wheels),
        }))
    }

    /// `file` (a wheel) into `dir` under its own name, its sha256 checked
    /// against the index's.
    async fn download_wheel(&self, file: &DistFile, dir: &Path) -> Result<(), PypiError> {
        let mut body = self.download_archive(&file.url).await?;
        if let Some(expected) = &file.sha256
            && !body.sha256.eq_ignore_ascii_case(expected)
        {
            return Err(PypiError::HashMismatch {
                file: file.filename.clone(),
                expected: expected.clone(),
                actual: body.sha256,
            });
        }
        // The filename comes from the index: only its last component.
        let name = Path::new(&file.filename)
            .file_name()
            .ok_or_else(|| PypiError::Io(format!("`{}` is no file name", file.filename)))?;
        let mut to =
            fs_err::File::create(dir.join(name)).map_err(|e| PypiError::Io(e.to_string()))?;
        std::io::copy(&mut body.file, &mut to).map_err(|e| PypiError::Io(e.to_string()))?;
        Ok(())
    }
}

/// What `build_env.py` answered.
pub(super) enum HookOutcome {
    Metadata(String),
    /// The backend asked for more build requirements.
    Requires(Vec<String>),
}

/// Runs `build_env.py` with the host `python` on the unpacked sdist
/// `source`; `work` holds the script and its output.
pub(super) async fn run_hooks(
    python: &Path,
    (source, work): (&Path, &Path),
    env: &PlannedEnv,
    system: &BuildSystem,
    mode: &'static str,
) -> Result<HookOutcome, String> {
    let dir = work.to_path_buf();
    let script = dir.join("build_env.py");
    fs_err::write(&script, BUILD_ENV_SCRIPT).map_err(|e| e.to_string())?;
    let out = dir.join(format!("out-{mode}"));
    let _ = fs_err::remove_dir_all(&out);
    let empty = dir.join("no-wheels");
    fs_err::create_dir_all(&empty).map_err(|e| e.to_string())?;
    let wheels = env
        .wheels
        .as_ref()
        .map_or(empty, |w| w.path().to_path_buf());
    let mut cmd = std::process::Command::new(python);
    cmd.arg(&script)
        .arg(source)
        .arg(&out)
        .arg(&env.dir)
        .arg(&wheels)
        .arg(&system.backend)
        .arg(serde_json::to_string(&system.backend_path).unwrap_or_else(|_| "[]".into()))
        .arg(mode)
        .current_dir(&dir)
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env_remove("PYTHONPATH");
    let shown = python.display().to_string();
    let result = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("could not run `{shown}`: {e}"))?;
    match result.status.code() {
        Some(0) => fs_err::read_to_string(out.join("METADATA"))
            .map(HookOutcome::Metadata)
            .map_err(|e| e.to_string()),
        Some(3) if mode == "auto" => {
            let text =
                fs_err::read_to_string(out.join("requires.json")).map_err(|e| e.to_string())?;
            serde_json::from_str(&text)
                .map(HookOutcome::Requires)
                .map_err(|e| format!("get_requires_for_build_wheel: {e}"))
        }
        _ => {
            // The backend's own error is the last thing on stderr.
            let stderr = String::from_utf8_lossy(&result.stderr);
            let last: Vec<&str> = stderr.lines().rev().take(5).collect();
            Err(last.into_iter().rev().collect::<Vec<_>>().join("\n"))
        }
    }
}

const BUILD_ENV_SCRIPT: &str = include_str!("build_env.py");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_system_defaults_follow_pep_517() {
        let none = BuildSystem::parse(None).unwrap();
        assert_eq!(none.requires, ["setuptools>=40.8.0"]);
        assert_eq!(none.backend, "setuptools.build_meta:__legacy__");
        let no_table = BuildSystem::parse(Some("[tool.black]\nline-length = 80\n")).unwrap();
        assert_eq!(no_table, none);
        let hatch = BuildSystem::parse(Some(
            "[build-system]\nrequires = [\"hatchling\", \"hatch-vcs\"]\nbuild-backend = \"hatchling.build\"\n",
        ))
        .unwrap();
        assert_eq!(hatch.requires, ["hatchling", "hatch-vcs"]);
        assert_eq!(hatch.backend, "hatchling.build");
        assert!(hatch.backend_path.is_empty());
        let err = BuildSystem::parse(Some("[build-system\n")).unwrap_err();
        assert!(err.starts_with("its pyproject.toml does not read"), "{err}");
    }

    #[test]
    fn static_project_tables_give_metadata_only_when_nothing_needed_is_dynamic() {
        let project = |backend: &str, requires: &str, extra: &str| {
            format!(
                "[build-system]\nrequires = [{requires}]\nbuild-backend = \"{backend}\"\n\n\
                 [project]\nname = \"p\"\nversion = \"1.0\"\nrequires-python = \">=3.9\"\n{extra}\
                 dependencies = [\"six>=1.16\", \"numpy; python_version >= '3.10'\"]\n\n\
                 [project.optional-dependencies]\nNet_Tools = [\"idna; os_name == 'posix'\", \"rich\"]\n"
            )
        };
        assert_eq!(
            static_metadata(&project("hatchling.build", "\"hatchling\"", "")).unwrap(),
            "Metadata-Version: 2.2\nName: p\nVersion: 1.0\nRequires-Python: >=3.9\n\
             Requires-Dist: six>=1.16\nRequires-Dist: numpy; python_version >= '3.10'\n\
             Provides-Extra: net-tools\n\
             Requires-Dist: idna; (os_name == 'posix') and extra == \"net-tools\"\n\
             Requires-Dist: rich; extra == \"net-tools\"\n"
        );
        // Dependencies, extras, version or Python marked dynamic; a backend
        // that may ignore `[project]`; setuptools capped below 61.
        for extra in [
            "dynamic = [\"dependencies\"]\n",
            "dynamic = [\"optional-dependencies\"]\n",
            "dynamic = [\"version\"]\n",
            "dynamic = [\"requires-python\"]\n",
        ] {
            assert_eq!(
                static_metadata(&project("hatchling.build", "\"hatchling\"", extra)),
                None,
                "{extra}"
            );
        }
        assert!(
            static_metadata(&project(
                "hatchling.build",
                "\"hatchling\"",
                "dynamic = [\"readme\"]\n"
            ))
            .is_some()
        );
        assert_eq!(
            static_metadata(&project("poetry.core.masonry.api", "\"poetry-core\"", "")),
            None
        );
        assert_eq!(
            static_metadata(&project("setuptools.build_meta", "\"setuptools<60\"", "")),
            None
        );
        assert!(
            static_metadata(&project("setuptools.build_meta", "\"setuptools>=61\"", "")).is_some()
        );
        for pinned in [
            "setuptools==58.0",
            "setuptools>=40,<70",
            "setuptools>=40.8",
            "setuptools~=65.0",
        ] {
            let text = project("setuptools.build_meta", &format!("\"{pinned}\""), "");
            assert_eq!(static_metadata(&text), None, "{pinned}");
        }
        let scm = project(
            "setuptools.build_meta",
            "\"setuptools\", \"setuptools_scm<8\"",
            "",
        );
        assert!(static_metadata(&scm).is_some());
        assert_eq!(static_metadata("[build-system]\nrequires = []\n"), None);
    }

    fn probe(implementation: &str, machine: &str, libc: (&str, &str)) -> Probe {
        Probe {
            implementation: implementation.into(),
            version: "3.11.2".into(),
            machine: machine.into(),
            libc: (libc.0.into(), libc.1.into()),
            os: "linux".into(),
            id: String::new(),
            exe: "/usr/bin/python3.11".into(),
        }
    }

    #[test]
    fn the_host_target_is_cpython_on_glibc_linux_only() {
        let t = host_target(&probe("cpython", "x86_64", ("glibc", "2.36"))).unwrap();
        assert_eq!(t.describe(), "Python 3.11 on manylinux_2_36_x86_64");
        let err = host_target(&probe("pypy", "x86_64", ("glibc", "2.36"))).unwrap_err();
        assert!(err.contains("pypy"), "{err}");
        let err = host_target(&probe("cpython", "x86_64", ("", ""))).unwrap_err();
        assert!(err.contains("not glibc"), "{err}");
        let err = host_target(&probe("cpython", "riscv64", ("glibc", "2.36"))).unwrap_err();
        assert!(err.contains("riscv64"), "{err}");
    }
}
