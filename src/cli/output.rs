//! Printing: data to stdout, messages to stderr, colour when wanted.

use std::io::{self, IsTerminal, Write};

use crate::cli::args::{ColorChoice, GlobalOpts};

/// Where everything a command prints goes.
#[derive(Debug)]
pub struct Printer {
    color: bool,
    quiet: bool,
    verbose: u8,
}

impl Printer {
    pub fn new(opts: &GlobalOpts) -> Self {
        let color = match opts.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => auto_color(
                std::env::var_os("NO_COLOR"),
                std::env::var_os("FORCE_COLOR"),
                io::stderr().is_terminal(),
            ),
        };
        Self {
            color,
            quiet: opts.quiet,
            verbose: opts.verbose,
        }
    }

    /// Whether stderr messages use colour.
    pub fn color(&self) -> bool {
        self.color
    }

    pub fn quiet(&self) -> bool {
        self.quiet
    }

    pub fn verbose(&self) -> u8 {
        self.verbose
    }

    /// Writes a report or other text to stdout, its control characters
    /// escaped as in messages (names from images, indexes and definition
    /// files reach reports too); a `\r\n` line end is kept.
    pub fn data(&self, text: &str) -> io::Result<()> {
        let escaped: Vec<std::borrow::Cow<'_, str>> = text
            .split("\r\n")
            .map(crate::diagnostic::escape_control)
            .collect();
        self.data_bytes(escaped.join("\r\n").as_bytes())
    }

    pub fn data_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        let mut out = io::stdout().lock();
        match out.write_all(bytes).and_then(|()| out.flush()) {
            // A closed pipe (`| head`) is not an error of ours.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }

    /// A status line on stderr, unless `--quiet`.
    pub fn status(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// Text already rendered for stderr (a diagnostic with source context).
    pub fn raw_error(&self, text: &str) {
        eprint!("{text}");
    }

    /// A warning on stderr (shown even with `--quiet`).
    pub fn warn(&self, text: &str) {
        let label = self.paint("warning", "33");
        let text = crate::config::redact::redact_text(text);
        let text = crate::diagnostic::escape_control(&text);
        eprintln!("{label}: {text}");
    }

    /// Renders an error and its causes; a line starting `hint:` is shown as a
    /// hint. An error about a place in a file is shown with that line.
    pub fn error(&self, err: &anyhow::Error) {
        if let Some(d) = crate::cli::diagnostic::located(err) {
            self.raw_error(&crate::cli::diagnostic::render_located(d, self.color));
            return;
        }
        let label = self.paint("error", "31");
        let mut text = err.to_string();
        if let Some(hint) = located_hint(err) {
            text.push_str("\nhint: ");
            text.push_str(&hint);
        }
        for cause in err.chain().skip(1) {
            // Errors that already say their cause need not repeat it.
            let cause = cause.to_string();
            if !text.contains(&cause) {
                text.push_str("\n  caused by: ");
                text.push_str(&cause);
            }
        }
        // Names in errors come from images, registries and indexes; URLs
        // may come from the configuration with secrets in them.
        let text = crate::config::redact::redact_text(&text);
        let text = crate::diagnostic::escape_control(&text);
        let mut lines = text.lines();
        if let Some(first) = lines.next() {
            eprintln!("{label}: {first}");
        }
        for line in lines {
            if let Some(hint) = line.strip_prefix("hint: ") {
                eprintln!("{}: {hint}", self.paint("hint", "36"));
            } else {
                eprintln!("{line}");
            }
        }
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[1;{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Colour with `--color auto`: never when `NO_COLOR` is set and not
/// empty (no-color.org); always when `FORCE_COLOR` is (force-color.org);
/// else when stderr is a terminal. `--color always` and `never` win over
/// both.
fn auto_color(
    no_color: Option<std::ffi::OsString>,
    force_color: Option<std::ffi::OsString>,
    terminal: bool,
) -> bool {
    let set = |v: &Option<std::ffi::OsString>| v.as_ref().is_some_and(|v| !v.is_empty());
    if set(&no_color) {
        return false;
    }
    set(&force_color) || terminal
}

/// The hint of a located error from the library, which its `Display` leaves out.
fn located_hint(err: &anyhow::Error) -> Option<String> {
    use crate::config::ConfigError;
    use crate::lock::LockError;
    let diagnostic = err
        .downcast_ref::<ConfigError>()
        .and_then(ConfigError::diagnostic)
        .or_else(|| {
            err.downcast_ref::<LockError>()
                .and_then(LockError::diagnostic)
        })?;
    diagnostic.hint.clone()
}

/// A unified diff of a file's text, with `a/` and `b/` headers.
pub fn unified_diff(path: &std::path::Path, before: &str, after: &str) -> String {
    let name = display_path(path);
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

/// A path for messages: relative to the current directory when under it.
pub fn display_path(path: &std::path::Path) -> String {
    let rel = std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            path.strip_prefix(cwd)
                .ok()
                .map(std::path::Path::to_path_buf)
        })
        .unwrap_or_else(|| path.to_path_buf());
    rel.to_string_lossy()
        .trim_start_matches("./")
        .replace('\\', "/")
}

#[cfg(test)]
mod color_tests {
    use super::auto_color;

    #[test]
    fn no_color_then_force_color_then_the_terminal() {
        let on = Some("1".into());
        let empty = Some("".into());
        assert!(!auto_color(on.clone(), on.clone(), true));
        assert!(auto_color(None, on.clone(), false));
        assert!(auto_color(empty.clone(), on, false));
        assert!(!auto_color(None, empty, false));
        assert!(auto_color(None, None, true));
        assert!(!auto_color(None, None, false));
    }
}
