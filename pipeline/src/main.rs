//! `riskstream`: replay event files through the engine, evaluate a replay
//! against its labels, and generate the fixture world.
//!
//! Exit status: 0 on success, 2 on a usage error (clap's), 1 on any other
//! failure, including `evaluate` thresholds that are not met.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use riskstream::caep::CaepOptions;
use riskstream::evaluate::{self, EvaluateOptions};
use riskstream::fixtures;
use riskstream::replay::{self, EngineOptions, ReplayOptions};
use riskstream::run::ConfigError;
use riskstream::sweep::Sweep;
use riskstream_schemas::{ParseLimits, Timestamp};

/// Per-message allocations from librdkafka's threads and the pipeline's:
/// mimalloc spends a fraction of glibc malloc's time on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Streaming step-up authentication engine: replay, evaluation, fixtures.
#[derive(Parser)]
#[command(name = "riskstream", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay JSON Lines event files (plain or gzip) through the engine and
    /// write one risk record per accepted event.
    Replay(ReplayArgs),
    /// Protection and friction of a replay against the events' labels,
    /// beside the always, timer-15m and never baselines.
    Evaluate(EvaluateArgs),
    /// The signal weights labelled events support: a logistic regression of
    /// their sensitive actions on the signals, printed as a TOML [weights]
    /// table to study beside the policy's (docs/DETECTION.md).
    FitWeights(FitWeightsArgs),
    /// Map an identity provider's native records (one JSON document or log
    /// line a line) to contract events, one JSON line each.
    Normalize(NormalizeArgs),
    /// Generate the labelled fixture world and its GeoIP databases.
    #[command(subcommand)]
    Fixtures(FixturesCommand),
    /// The live pipeline: consume the input topics, score every event,
    /// publish risk records, dead letters and the state changelog.
    Run(RunArgs),
    /// The enforcement point: the latest risk record per session from
    /// session-risk, decisions over HTTP (POST /v1/decide) and an nginx
    /// auth_request endpoint (GET /v1/authz).
    Enforce(EnforceArgs),
    /// The whole Kafka path in one process on an embedded default: an
    /// in-process Kafka-protocol cluster, the committed fixture produced
    /// into it, the live pipeline, and a table of sessions whose decision
    /// changed.
    Demo(DemoArgs),
}

#[derive(Args)]
struct DemoArgs {
    /// Events produced per second.
    #[arg(long, value_name = "N", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,
    /// Partitions of the input topics.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(i32).range(1..=64))]
    partitions: i32,
    /// Produce only the first N events of the fixture.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
}

#[derive(Args)]
struct RunArgs {
    /// Configuration file (TOML); see docs/riskstream.toml. Without it, the
    /// defaults and RISKSTREAM_* variables apply.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Kafka bootstrap servers (kafka.brokers).
    #[arg(long, value_name = "HOST:PORT,...")]
    brokers: Option<String>,
    /// Consumer group (kafka.group_id).
    #[arg(long, value_name = "GROUP")]
    group_id: Option<String>,
    /// HTTP listen address, empty for none (http.listen).
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<String>,
    /// Do not create missing topics (topics.create = false).
    #[arg(long)]
    no_create_topics: bool,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

#[derive(Args)]
struct EnforceArgs {
    /// Configuration file (TOML); see docs/enforce.toml. Without it, the
    /// defaults and RISKSTREAM_ENFORCE_* variables apply.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Kafka bootstrap servers (kafka.brokers).
    #[arg(long, value_name = "HOST:PORT,...")]
    brokers: Option<String>,
    /// Consumer group id (kafka.group_id); it only names the client, every
    /// instance reads every partition.
    #[arg(long, value_name = "GROUP")]
    group_id: Option<String>,
    /// HTTP listen address (http.listen).
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<String>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

#[derive(Args)]
struct NormalizeArgs {
    /// The native format: okta, auth0, entra, keycloak, cloudtrail,
    /// google_workspace (or contract, to validate contract events).
    #[arg(long, value_name = "FORMAT")]
    format: riskstream_adapters::Format,
    /// Native records, plain or gzip; `-` is standard input.
    #[arg(long, value_name = "FILE", num_args = 1.., default_value = "-")]
    input: Vec<PathBuf>,
    /// Contract events, one JSON line each; `-` is standard output.
    #[arg(long, value_name = "FILE", default_value = "-")]
    output: PathBuf,
    /// Records that did not map, as JSON Lines (file, line, reason, field,
    /// detail, raw).
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Tenant to stamp on every event [default: the vendor's org or tenant].
    #[arg(long, value_name = "TENANT")]
    tenant: Option<String>,
    /// Largest record, in bytes; longer ones are rejected `too_large`.
    #[arg(long, value_name = "N", default_value_t = default_max_event_bytes(),
          value_parser = clap::value_parser!(u64).range(1..))]
    max_event_bytes: u64,
}

/// Engine configuration shared by `replay` and `evaluate`.
#[derive(Args)]
struct EngineArgs {
    /// Policy file (TOML) [default: the built-in default policy].
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// GeoIP2/GeoLite2 City database [default: the committed fixture].
    #[arg(long, value_name = "MMDB")]
    geoip_city: Option<PathBuf>,
    /// ASN database [default: the fixture when --geoip-city is not given, else none].
    #[arg(long, value_name = "MMDB")]
    geoip_asn: Option<PathBuf>,
    /// Anonymous IP database [default: the fixture when --geoip-city is not given, else none].
    #[arg(long, value_name = "MMDB")]
    geoip_anonymous: Option<PathBuf>,
    /// Cap on principals kept in state (least recently seen are evicted)
    /// [default: the engine's].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_principals: Option<u64>,
    /// Largest accepted event line, in bytes; longer lines are rejected
    /// `too_large` without being buffered.
    #[arg(long, value_name = "N", default_value_t = default_max_event_bytes(),
          value_parser = clap::value_parser!(u64).range(1..))]
    max_event_bytes: u64,
}

fn default_max_event_bytes() -> u64 {
    u64::try_from(ParseLimits::default().max_bytes).unwrap_or(u64::MAX)
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl EngineArgs {
    fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            policy: self.policy.clone(),
            geoip_city: self.geoip_city.clone(),
            geoip_asn: self.geoip_asn.clone(),
            geoip_anonymous: self.geoip_anonymous.clone(),
            max_principals: self.max_principals.map(to_usize),
        }
    }

    fn limits(&self) -> ParseLimits {
        ParseLimits {
            max_bytes: to_usize(self.max_event_bytes),
        }
    }
}

#[derive(Args)]
struct ReplayArgs {
    /// Event files, JSON Lines, plain or gzip (by content), read in this
    /// order; `-` is standard input.
    #[arg(long, value_name = "FILE", required = true, num_args = 1..)]
    input: Vec<PathBuf>,
    /// Risk records, one per accepted event: Parquet when FILE ends in
    /// `.parquet`, JSON Lines otherwise; `-` is standard output.
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// Rejected lines as JSON Lines (file, line, reason, field, detail, raw).
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Also write the summary as JSON.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// Native format of the inputs: contract, okta, auth0, entra, keycloak,
    /// cloudtrail, google_workspace. Once for all inputs, or once per input
    /// in order [default: contract].
    #[arg(long, value_name = "FORMAT")]
    format: Vec<riskstream_adapters::Format>,
    /// Tenant to stamp on events mapped from native records [default: the
    /// vendor's org or tenant id].
    #[arg(long, value_name = "TENANT")]
    tenant: Option<String>,
    /// Also write CAEP 1.0 Security Event Tokens (risk-level-change,
    /// assurance-level-change, session-revoked), one per line, in record
    /// order; `-` is standard output.
    #[arg(long, value_name = "FILE", requires_all = ["caep_key", "caep_kid", "caep_issuer"])]
    caep_output: Option<PathBuf>,
    /// Private key signing the tokens, PEM: EC P-256 (ES256) or RSA (RS256).
    #[arg(long, value_name = "PEM", requires = "caep_output")]
    caep_key: Option<PathBuf>,
    /// `kid` of the signing key, in each token's header.
    #[arg(long, value_name = "KID", requires = "caep_output")]
    caep_kid: Option<String>,
    /// `iss` of the tokens: the transmitter's issuer URL.
    #[arg(long, value_name = "URL", requires = "caep_output")]
    caep_issuer: Option<String>,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Tables for people.
    Text,
    /// One stable JSON object.
    Json,
}

#[derive(Args)]
struct EvaluateArgs {
    /// Labelled events (JSON Lines, plain or gzip), in replay order.
    #[arg(long, value_name = "FILE", required = true, num_args = 1..)]
    events: Vec<PathBuf>,
    /// Risk records of a replay of these events [default: replay them in
    /// memory first].
    #[arg(long, value_name = "FILE")]
    records: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Fail (exit 1) when the engine's protection is below this.
    #[arg(long, value_name = "X", value_parser = unit_interval)]
    min_protection: Option<f64>,
    /// Fail (exit 1) when the engine's friction is above this.
    #[arg(long, value_name = "Y", value_parser = unit_interval)]
    max_friction: Option<f64>,
    /// Write the threshold sweep (step up iff score >= t, t = 0..101, and
    /// the engine's and baselines' points) as CSV.
    #[arg(long, value_name = "FILE")]
    sweep_csv: Option<PathBuf>,
    /// Draw the threshold sweep (protection against friction) as a PNG.
    #[arg(long, value_name = "FILE")]
    sweep_png: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Args)]
struct FitWeightsArgs {
    /// Labelled events (JSON Lines, plain or gzip), in replay order.
    #[arg(long, value_name = "FILE", required = true, num_args = 1..)]
    events: Vec<PathBuf>,
    /// Precision of the Gaussian prior around the policy's weights, per
    /// weight (1: a standard deviation of 0.7 nats).
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    l2: f64,
    #[command(flatten)]
    engine: EngineArgs,
}

fn unit_interval(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|e| format!("{s:?} is not a number: {e}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 1"))
    }
}

#[derive(Subcommand)]
enum FixturesCommand {
    /// Generate a labelled world of events (gzip when FILE ends in .gz).
    Generate(GenerateArgs),
    /// Build the fixture GeoIP databases (City, ASN, Anonymous IP) from the
    /// world CSV.
    Geoip(GeoipArgs),
}

#[derive(Args)]
struct GenerateArgs {
    /// Random seed: the same seed, sizes and start give the same bytes
    /// [default: the generator's].
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Number of principals (humans, workloads and agents) [default: the
    /// generator's].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    principals: Option<u64>,
    /// Number of days [default: the generator's].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    days: Option<u32>,
    /// First instant of the world, RFC 3339 [default: the generator's].
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    start: Option<Timestamp>,
    /// Output file (gzip when it ends in .gz); `-` is standard output.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(s).map_err(|e| e.to_string())
}

#[derive(Args)]
struct GeoipArgs {
    /// The world CSV [default: the committed fixtures/geo/world.csv].
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Directory for the three .mmdb files.
    #[arg(long, value_name = "DIR")]
    out_dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // A closed pipe (`riskstream evaluate | head`) is the reader's
        // choice, not a failure; stop quietly, as ripgrep does.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("riskstream: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Replay(args) => run_replay(args),
        Command::Evaluate(args) => run_evaluate(args),
        Command::FitWeights(args) => run_fit_weights(args),
        Command::Normalize(args) => run_normalize(args),
        Command::Fixtures(FixturesCommand::Generate(args)) => run_generate(args),
        Command::Fixtures(FixturesCommand::Geoip(args)) => run_geoip(args),
        Command::Run(args) => run_pipeline(args),
        Command::Enforce(args) => run_enforce(args),
        Command::Demo(args) => run_demo(args),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RISKSTREAM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

fn run_demo(args: DemoArgs) -> Result<ExitCode> {
    // Only warnings: the table is the output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RISKSTREAM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,librdkafka=off")),
        )
        .with_writer(io::stderr)
        .try_init();
    let opts = riskstream::demo::DemoOptions {
        rate: args.rate,
        partitions: args.partitions,
        limit: args.limit,
    };
    let started = std::time::Instant::now();
    let mut out = io::stdout().lock();
    let s = riskstream::demo::demo(&opts, &mut out)?;
    writeln!(
        out,
        "\n{} events produced, {} scored through Kafka in {:.1} s; {} sessions, {} decision changes",
        s.produced,
        s.scored,
        started.elapsed().as_secs_f64(),
        s.sessions,
        s.changes
    )?;
    Ok(ExitCode::SUCCESS)
}

fn run_pipeline(args: RunArgs) -> Result<ExitCode> {
    use riskstream::run::{Overrides, RawRunConfig};
    let overrides = Overrides {
        brokers: args.brokers,
        group_id: args.group_id,
        http_listen: args.http_listen,
        no_create_topics: args.no_create_topics,
    };
    let raw = RawRunConfig::load(args.config.as_deref(), &overrides)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.worker_threads(2);
    serve(
        raw,
        args.print_config,
        RawRunConfig::build,
        runtime,
        |config| riskstream::run::run(config, shutdown_signal()),
    )
}

/// What `run` and `enforce` do with their loaded configuration `raw`: with
/// `--print-config`, print it as TOML and stop; otherwise check it with
/// `build`, start logging, and serve on `runtime` until SIGINT or SIGTERM.
fn serve<R, C, E, F>(
    raw: R,
    print_config: bool,
    build: impl FnOnce(R) -> Result<C, ConfigError>,
    mut runtime: tokio::runtime::Builder,
    service: impl FnOnce(C) -> F,
) -> Result<ExitCode>
where
    R: serde::Serialize,
    F: Future<Output = Result<(), E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    if print_config {
        print!(
            "{}",
            toml::to_string_pretty(&raw).context("printing the configuration")?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let config = build(raw)?;
    init_tracing();
    let runtime = runtime
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(service(config))?;
    Ok(ExitCode::SUCCESS)
}

fn run_enforce(args: EnforceArgs) -> Result<ExitCode> {
    use riskstream::enforce::{Overrides, RawEnforceConfig};
    let overrides = Overrides {
        brokers: args.brokers,
        group_id: args.group_id,
        http_listen: args.http_listen,
    };
    let raw = RawEnforceConfig::load(args.config.as_deref(), &overrides)?;
    // A single-threaded runtime: it serves HTTP (with `http.threads - 1`
    // more of its kind) and waits for the consumer, which has a thread of
    // its own. A work-stealing runtime woke a second worker for most
    // requests (BENCHMARKS.md, "Enforcement point").
    let runtime = tokio::runtime::Builder::new_current_thread();
    serve(
        raw,
        args.print_config,
        RawEnforceConfig::build,
        runtime,
        |config| riskstream::enforce::enforce(config, shutdown_signal()),
    )
}

fn open_output(path: &Path) -> Result<Box<dyn Write>> {
    Ok(if path == Path::new("-") {
        Box::new(BufWriter::new(io::stdout().lock()))
    } else {
        Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
        ))
    })
}

fn run_normalize(args: NormalizeArgs) -> Result<ExitCode> {
    use riskstream::normalize::{NormalizeOptions, NormalizeSummary, normalize_stream};
    let opts = NormalizeOptions {
        format: args.format,
        tenant: args.tenant,
        limits: ParseLimits {
            max_bytes: to_usize(args.max_event_bytes),
        },
        inputs: args.input,
    };
    let mut out = open_output(&args.output)?;
    let mut rejects = args.rejects.as_deref().map(open_output).transpose()?;
    let mut summary = NormalizeSummary::default();
    for path in &opts.inputs {
        let input = replay::open_input(path, None)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let name = path.display().to_string();
        normalize_stream(
            &opts,
            input,
            &name,
            &mut out,
            rejects.as_mut().map(|w| w as &mut dyn Write),
            &mut summary,
        )
        .with_context(|| format!("normalize {name}"))?;
    }
    out.flush().context("cannot write the events")?;
    if let Some(w) = rejects.as_mut() {
        w.flush().context("cannot write the rejects")?;
    }
    eprintln!("{summary}");
    anyhow::ensure!(
        summary.is_balanced(),
        "records and outcomes do not add up: {summary}"
    );
    Ok(ExitCode::SUCCESS)
}

fn run_replay(args: ReplayArgs) -> Result<ExitCode> {
    let opts = ReplayOptions {
        inputs: args.input,
        output: args.output,
        rejects: args.rejects,
        summary_json: args.summary_json,
        engine: args.engine.engine_options(),
        limits: args.engine.limits(),
        progress: io::stderr().is_terminal(),
        formats: args.format,
        tenant: args.tenant,
        caep: match (
            args.caep_output,
            args.caep_key,
            args.caep_kid,
            args.caep_issuer,
        ) {
            (Some(output), Some(key), Some(kid), Some(issuer)) => Some(CaepOptions {
                output,
                key,
                kid,
                issuer,
            }),
            _ => None,
        },
    };
    let summary = replay::replay(&opts).context("replay failed")?;
    eprintln!("{summary}");
    if summary.rejected > 0 && opts.rejects.is_none() {
        eprintln!(
            "riskstream: {} lines rejected; pass --rejects FILE to see them",
            summary.rejected
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_fit_weights(args: FitWeightsArgs) -> Result<ExitCode> {
    use riskstream::fit::WeightFit;
    use riskstream::replay::{Replayer, open_input};
    anyhow::ensure!(
        args.l2.is_finite() && args.l2 >= 0.0,
        "--l2 {} must be a number >= 0",
        args.l2
    );
    let loaded = args
        .engine
        .engine_options()
        .load()
        .context("engine configuration")?;
    let mut fit = WeightFit::new(&loaded.config.policy);
    let mut replayer = Replayer::new(loaded.engine(), args.engine.limits());
    for path in &args.events {
        let input =
            open_input(path, None).with_context(|| format!("reading {}", path.display()))?;
        replayer
            .run(input, &path.display().to_string(), &mut fit, None)
            .with_context(|| format!("replaying {}", path.display()))?;
    }
    let mut stdout = io::stdout().lock();
    stdout.write_all(fit.fit(args.l2).to_toml().as_bytes())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn run_evaluate(args: EvaluateArgs) -> Result<ExitCode> {
    if args.records.is_some() && args.engine.policy.is_some() {
        eprintln!(
            "riskstream: note: --policy is not used with --records; sensitivity and decisions come from the records"
        );
    }
    let opts = EvaluateOptions {
        events: args.events,
        records: args.records,
        engine: args.engine.engine_options(),
        limits: args.engine.limits(),
    };
    let (report, scores) = evaluate::evaluate_with_scores(&opts).context("evaluation failed")?;
    if args.sweep_csv.is_some() || args.sweep_png.is_some() {
        let sweep = Sweep::new(&scores, &report.systems);
        if let Some(path) = &args.sweep_csv {
            sweep.write_csv(path)?;
        }
        if let Some(path) = &args.sweep_png {
            sweep.write_png(path)?;
        }
    }
    let mut stdout = io::stdout().lock();
    match args.format {
        Format::Text => stdout.write_all(report.to_text().as_bytes())?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut stdout, &report)?;
            stdout.write_all(b"\n")?;
        }
    }
    stdout.flush()?;
    let failures = report.check(args.min_protection, args.max_friction);
    for failure in &failures {
        eprintln!("riskstream: threshold not met: {failure}");
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn create(path: &Path) -> Result<Box<dyn Write>> {
    if path == Path::new("-") {
        return Ok(Box::new(io::stdout().lock()));
    }
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Box::new(file))
}

fn run_generate(args: GenerateArgs) -> Result<ExitCode> {
    let mut opts = fixtures::GenerateOptions::default();
    if let Some(seed) = args.seed {
        opts.seed = seed;
    }
    if let Some(n) = args.principals {
        opts.principals = to_usize(n);
    }
    if let Some(days) = args.days {
        opts.days = days;
    }
    if let Some(start) = args.start {
        opts.start = start;
    }
    let gzip = args.out.extension().is_some_and(|e| e == "gz");
    let out = BufWriter::with_capacity(256 * 1024, create(&args.out)?);
    let summary = if gzip {
        let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        let summary = fixtures::generate(&opts, &mut encoder)?;
        encoder
            .finish()
            .and_then(|mut w| w.flush())
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        summary
    } else {
        let mut out = out;
        let summary = fixtures::generate(&opts, &mut out)?;
        out.flush()
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        summary
    };
    eprintln!("{summary}");
    eprintln!("riskstream: wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn run_geoip(args: GeoipArgs) -> Result<ExitCode> {
    let owned;
    let csv: &str = match &args.csv {
        Some(path) => {
            owned = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            &owned
        }
        None => fixtures::WORLD_CSV,
    };
    let databases = fixtures::build_geoip(csv).context("cannot build the GeoIP databases")?;
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    fixtures::write_geoip(&databases, &args.out_dir)
        .with_context(|| format!("cannot write to {}", args.out_dir.display()))?;
    eprintln!(
        "riskstream: wrote the City, ASN and Anonymous IP databases to {}",
        args.out_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
