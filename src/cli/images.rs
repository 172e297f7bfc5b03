//! Which images a command works on: the configuration's, or the definition
//! files named on the command line (directories are searched).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cli::{GlobalOpts, load_config};
use crate::config::{Config, ImageConfig};
pub use crate::oci::same_image;
use crate::source::load::kind_from_name;

/// The configuration (if any) and the images to work on, with `overrides`
/// applied to their build args.
pub fn select(
    global: &GlobalOpts,
    paths: &[PathBuf],
    overrides: &BTreeMap<String, String>,
) -> anyhow::Result<(Option<Config>, Vec<ImageConfig>)> {
    let config = if global.config.is_some() || paths.is_empty() {
        Some(load_config(global, paths)?)
    } else {
        // Files named inside a configured repository keep their settings
        // (build args, platforms, lock name).
        std::env::current_dir()
            .ok()
            .and_then(|d| Config::discover(&d))
            .map(|p| Config::load(&p))
            .transpose()?
    };
    let mut images = if paths.is_empty() {
        config
            .as_ref()
            .map(|c| c.images.clone())
            .unwrap_or_default()
    } else {
        let mut images = Vec::new();
        // A configured image may be named instead of its file.
        let (named, paths): (Vec<&PathBuf>, Vec<&PathBuf>) = paths.iter().partition(|p| {
            !p.exists()
                && config
                    .as_ref()
                    .is_some_and(|c| c.images.iter().any(|i| p.as_os_str() == i.name.as_str()))
        });
        for name in named {
            if let Some(image) = config.as_ref().and_then(|c| {
                c.images
                    .iter()
                    .find(|i| name.as_os_str() == i.name.as_str())
            }) {
                images.push(image.clone());
            }
        }
        let paths: Vec<PathBuf> = paths.into_iter().cloned().collect();
        for file in definition_files(&paths)? {
            // Every image configured from the file: one definition built
            // with different build args is several images.
            let configured = config
                .as_ref()
                .map(|c| images_of_file(c, &file))
                .unwrap_or_default();
            if configured.is_empty() {
                let mut zero = Config::zero(std::slice::from_ref(&file)).images;
                images.push(zero.remove(0));
            }
            for image in configured {
                if !images.iter().any(|i: &ImageConfig| i.name == image.name) {
                    images.push(image);
                }
            }
        }
        images
    };
    if images.is_empty() {
        anyhow::bail!(
            "no definition files found\nhint: name a Dockerfile or a directory holding one"
        );
    }
    for image in &mut images {
        image.build_args.extend(overrides.clone());
    }
    Ok((config, images))
}

/// An image's parsed definition and the inputs its lock is made from.
pub fn load_image(
    image: &ImageConfig,
) -> anyhow::Result<(crate::source::Definition, crate::source::inputs::Inputs)> {
    let (definition, text) =
        crate::source::load::read_definition_with(&image.file, &image.build_args, &image.wrappers)?;
    let inputs =
        crate::source::inputs::load_inputs(&definition, &text, &image.context, &image.build_args)?;
    Ok((definition, inputs))
}

/// `--build-arg NAME=VALUE` options as a map.
pub fn parse_build_args(args: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            anyhow::bail!("`--build-arg {a}` has no value\nhint: write `--build-arg NAME=VALUE`");
        };
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// The configured images whose definition file is `file`.
pub fn images_of_file(config: &Config, file: &Path) -> Vec<ImageConfig> {
    let Ok(want) = file.canonicalize() else {
        return Vec::new();
    };
    config
        .images
        .iter()
        .filter(|i| i.file.canonicalize().ok().as_ref() == Some(&want))
        .cloned()
        .collect()
}

/// Files given, and definition files found in directories given (hidden
/// directories are skipped), in a stable order.
fn definition_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
        if name.starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else if kind_from_name(&name).is_some() {
            out.push(path);
        }
    }
    Ok(())
}

/// `images` and, transitively, the configured images of the repository
/// they build `FROM` (matched by `ref`), so an image is always locked on
/// its parents' locks and never on the registry's copy of them.
pub fn with_parents(config: &Config, images: Vec<ImageConfig>) -> Vec<ImageConfig> {
    let mut out = images;
    let mut i = 0;
    while i < out.len() {
        let image = out[i].clone();
        i += 1;
        let definition = crate::source::load::read_definition_with(
            &image.file,
            &image.build_args,
            &image.wrappers,
        )
        .map(|(d, _)| d);
        // An unreadable definition is reported where it is frozen.
        let Ok(definition) = definition else {
            continue;
        };
        for pulled in crate::source::graph::pulled_references(&definition) {
            for parent in &config.images {
                if parent.name != image.name
                    && parent
                        .reference
                        .as_deref()
                        .is_some_and(|r| same_image(pulled, r))
                    && !out.iter().any(|o| o.name == parent.name)
                {
                    out.push(parent.clone());
                }
            }
        }
    }
    out
}
