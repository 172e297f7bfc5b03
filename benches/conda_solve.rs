#![allow(clippy::print_stdout, clippy::print_stderr)]
//! Solve conda specs like imagelock does, for scripts and benchmarks:
//!
//! ```text
//! cargo bench --bench conda_solve -- --channel URL… --platform linux-64 \
//!     --glibc 2.28 [--cuda 12.4] [--installed prefix-records.json] \
//!     [--flexible | --disabled] [--pin SPEC]… [--no-add-pip] \
//!     [--exclude-newer DATE] [--cache DIR] SPEC…
//! ```
//!
//! Prints `name version build` lines on stdout; fetch and solve times and
//! peak memory (VmHWM) on stderr.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use imagelock::config::{ChannelPriority, CondaConfig};
use imagelock::resolve::conda::{ChannelRequest, ChannelSettings, CondaIndex, Condarc};
use imagelock::solve::conda::{
    CondaRecord, CondaSolveRequest, CondaSpec, CondaTarget, parse_exclude_newer, solve,
};

struct Args {
    channels: Vec<String>,
    platform: String,
    glibc: Option<String>,
    cuda: Option<String>,
    installed: Option<PathBuf>,
    priority: ChannelPriority,
    exclude_newer: Option<String>,
    cache: Option<PathBuf>,
    pins: Vec<String>,
    add_pip: bool,
    specs: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        channels: Vec::new(),
        platform: "linux-64".into(),
        glibc: None,
        cuda: None,
        installed: None,
        priority: ChannelPriority::Strict,
        exclude_newer: None,
        cache: None,
        pins: Vec::new(),
        add_pip: true,
        specs: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--bench" => {}
            "--channel" | "-c" => args.channels.push(value()?),
            "--platform" => args.platform = value()?,
            "--glibc" => args.glibc = Some(value()?),
            "--cuda" => args.cuda = Some(value()?),
            "--installed" => args.installed = Some(PathBuf::from(value()?)),
            "--flexible" => args.priority = ChannelPriority::Flexible,
            "--disabled" => args.priority = ChannelPriority::Disabled,
            "--exclude-newer" => args.exclude_newer = Some(value()?),
            "--cache" => args.cache = Some(PathBuf::from(value()?)),
            "--pin" => args.pins.push(value()?),
            "--no-add-pip" => args.add_pip = false,
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => args.specs.push(s.to_string()),
        }
    }
    Ok(args)
}

fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let mut specs: Vec<CondaSpec> = args
        .specs
        .iter()
        .map(|s| CondaSpec::parse(s).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let settings =
        ChannelSettings::new(&CondaConfig::default(), &Condarc::default(), Path::new("."));
    let request = ChannelRequest {
        cli: args.channels.clone(),
        override_channels: true,
        ..ChannelRequest::default()
    };
    let channels = settings
        .resolve(&request, &mut specs)
        .map_err(|e| e.to_string())?;
    let installed = match &args.installed {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            CondaRecord::many_from_json(&path.display().to_string(), &text)
                .map_err(|e| e.to_string())?
        }
        None => Vec::new(),
    };
    let cache = args
        .cache
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("imagelock-bench-cache"));
    let mut target = CondaTarget::new(&args.platform).map_err(|e| e.to_string())?;
    target.glibc = args.glibc.clone();
    target.cuda = args.cuda.clone();

    let mut request = CondaSolveRequest::new(specs, target);
    request.installed = installed;
    request.channel_priority = args.priority;
    request.add_pip_as_python_dependency = args.add_pip;
    request.pinned = args
        .pins
        .iter()
        .map(|s| CondaSpec::parse(s).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    if let Some(date) = &args.exclude_newer {
        request.exclude_newer = Some(parse_exclude_newer(date).map_err(|e| e.to_string())?);
    }

    let start = Instant::now();
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let client = imagelock::resolve::http::client_builder()
        .build()
        .map_err(|e| e.to_string())?;
    // The peer's clock starts after its `Gateway` (and client) exist: so
    // does `work_s`.
    let work_start = Instant::now();
    let index = CondaIndex::new(&cache, client, false);
    let data = runtime
        .block_on(index.fetch_for(&channels, &args.platform, &request, None))
        .map_err(|e| e.to_string())?;
    let fetched = start.elapsed();

    let solve_start = Instant::now();
    let solution = match solve(&request, &data) {
        Ok(solution) => solution,
        Err(e) => {
            eprintln!("work_s={:.4}", work_start.elapsed().as_secs_f64());
            return Err(e.to_string());
        }
    };
    let solved = solve_start.elapsed();
    for p in &solution.packages {
        println!(
            "{} {} {}",
            p.record.name(),
            p.record.version(),
            p.record.build()
        );
    }
    eprintln!(
        "records={} packages={} fetch_s={:.3} solve_s={:.3} total_s={:.3} work_s={:.4} peak_rss_mib={:.1}",
        data.len(),
        solution.packages.len(),
        fetched.as_secs_f64(),
        solved.as_secs_f64(),
        start.elapsed().as_secs_f64(),
        work_start.elapsed().as_secs_f64(),
        peak_memory_kib().unwrap_or(0) as f64 / 1024.0
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
