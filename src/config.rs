//! trackiq's configuration. Layering, lowest first: defaults → file (`--config`, or
//! `TRACKIQ_CONFIG`) → `TRACKIQ_*` environment → command-line flags. Every field is
//! documented here; `infra/trackiq.example.toml` shows them all and a test parses it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use trackiq_infra::BusConfig;
use trackiq_processors::aggregator::AggregatorConfig;
use trackiq_processors::alerts::AlertsConfig;
use trackiq_processors::archiver::ArchiverConfig;
use trackiq_processors::compactor::CompactorConfig;
use trackiq_processors::verdict::VerdictConfig;
use trackiq_sinks::dashboard::DashboardConfig;
use trackiq_sinks::dashboard::ingest::IngestConfig;
use trackiq_sinks::sql_server::SqlServerConfig;
use trackiq_sinks::notify::NotifyConfig;
use trackiq_sinks::report::ReportConfig;
use trackiq_producers::streams::config::{OtlpConfig, ScrapeJob};
use trackiq_sinks::webhook::WebhookConfig;

/// Default data URL.
pub const DEFAULT_DATA: &str = "file://./trackiq-data";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the Parquet history and reports live: `file://dir` or `s3://bucket/prefix`.
    pub data: String,
    /// Directory of the embedded broker's SQLite log. Default: `<data>/broker` for `file://`
    /// data, `./trackiq-broker` otherwise.
    pub broker_dir: Option<PathBuf>,
    /// Kafka: embedded broker or external cluster, topics, librdkafka options.
    pub bus: BusConfig,
    /// Per-run summaries.
    pub aggregator: AggregatorConfig,
    /// Parquet history.
    pub archiver: ArchiverConfig,
    /// Merging the history's small objects (the `compactor` role, `trackiq compact`).
    pub compactor: CompactorConfig,
    /// Regression verdicts.
    pub verdict: VerdictConfig,
    /// HTML reports.
    pub report: ReportConfig,
    /// Webhook notifications: every verdict and detection as JSON, for integrations.
    pub webhook: WebhookConfig,
    /// The alert lifecycle: when a regression fires, repeats, worsens and resolves.
    pub alerts: AlertsConfig,
    /// On-call notifications of alerts: log, Slack, email, GitHub issues; routes and templates.
    pub notify: NotifyConfig,
    /// The web dashboard (`trackiq ui`).
    pub dashboard: DashboardConfig,
    /// The HTTP ingest API of `trackiq up` (`POST /api/v1/runs` on the dashboard's address).
    pub ingest: IngestConfig,
    /// The history over the PostgreSQL wire protocol (psql, Grafana, pandas), served by
    /// `trackiq up`, `trackiq ui` and `trackiq serve-sql`.
    pub sql_server: SqlServerConfig,
    /// The pipeline's own Prometheus metrics (`trackiq status` reads them).
    pub metrics: MetricsConfig,
    /// Prometheus scrape jobs (`[[scrape]]`): each target's readings, windowed into runs.
    pub scrape: Vec<ScrapeJob>,
    /// The OTLP/HTTP metrics receiver (`[otlp]`), windowed like the scrape jobs.
    pub otlp: OtlpConfig,
    /// The file this configuration was read from (not a setting): what a process started by
    /// this one (a dashboard launch) is given as `--config`.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// Where `trackiq up` serves its metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` (Prometheus/OpenMetrics text) and `GET /healthz`.
    pub enabled: bool,
    /// Address to listen on (`host:port`; port 0 picks a free one, printed at start-up).
    /// Env: TRACKIQ_METRICS_LISTEN.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true, listen: "127.0.0.1:9464".into() }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: DEFAULT_DATA.into(),
            broker_dir: None,
            bus: BusConfig::default(),
            aggregator: AggregatorConfig::default(),
            archiver: ArchiverConfig::default(),
            compactor: CompactorConfig::default(),
            verdict: VerdictConfig::default(),
            report: ReportConfig::default(),
            webhook: WebhookConfig::default(),
            alerts: AlertsConfig::default(),
            notify: NotifyConfig::default(),
            dashboard: DashboardConfig::default(),
            ingest: IngestConfig::default(),
            sql_server: SqlServerConfig::default(),
            metrics: MetricsConfig::default(),
            scrape: Vec::new(),
            otlp: OtlpConfig::default(),
            source: None,
        }
    }
}

/// Flags that override the configuration (the global flags of every subcommand).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub data: Option<String>,
    pub brokers: Option<String>,
    pub listen: Option<String>,
    pub topic_prefix: Option<String>,
    pub webhooks: Vec<String>,
    /// librdkafka `key=value` options.
    pub kafka_options: Vec<String>,
}

impl Config {
    /// Parses a TOML configuration file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        // The parser's own message quotes the offending line, which may be a secret written
        // where a `{ env = ... }` belongs: only its message and position are shown.
        toml::from_str(&text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |s| {
                let before = &text[..s.start.min(text.len())];
                (before.matches('\n').count() + 1, before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1)
            });
            anyhow::anyhow!("invalid config file {} (line {line}, column {column}): {}", path.display(), e.message().trim())
        })
    }

    /// Defaults, then the file, then `TRACKIQ_*` variables from `env`, then flags.
    pub fn load(flags: &Overrides, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let file = flags.config.clone().or_else(|| env("TRACKIQ_CONFIG").map(PathBuf::from));
        let mut c = match &file {
            Some(p) => Self::from_file(p)?,
            None => Config::default(),
        };
        c.source = file.map(|p| std::path::absolute(&p).unwrap_or(p));
        if let Some(v) = env("TRACKIQ_DATA") {
            c.data = v;
        }
        if let Some(v) = env("TRACKIQ_BROKERS") {
            c.bus.brokers = v;
        }
        if let Some(v) = env("TRACKIQ_LISTEN") {
            c.bus.listen = v;
        }
        if let Some(v) = env("TRACKIQ_TOPIC_PREFIX") {
            c.bus.topic_prefix = v;
        }
        if let Some(v) = env("TRACKIQ_PARTITIONS") {
            c.bus.partitions = v.parse().with_context(|| format!("TRACKIQ_PARTITIONS={v} is not a number"))?;
        }
        if let Some(v) = env("TRACKIQ_METRICS_LISTEN") {
            c.metrics.listen = v;
        }
        if let Some(v) = env("TRACKIQ_WEBHOOK_URLS") {
            c.webhook.urls = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        }
        if let Some(v) = &flags.data {
            c.data = v.clone();
        }
        if let Some(v) = &flags.brokers {
            c.bus.brokers = v.clone();
        }
        if let Some(v) = &flags.listen {
            c.bus.listen = v.clone();
        }
        if let Some(v) = &flags.topic_prefix {
            c.bus.topic_prefix = v.clone();
        }
        if !flags.webhooks.is_empty() {
            c.webhook.urls = flags.webhooks.clone();
        }
        for o in &flags.kafka_options {
            // The error never repeats `o`: its value may be the credential refused below.
            let (k, v) = o.split_once('=').with_context(|| "a --kafka-option is not key=value".to_string())?;
            if trackiq_infra::kafka_security::SECRET_OPTIONS.contains(&k.trim()) {
                anyhow::bail!("--kafka-option {} holds a credential, which a command line shows to every user of the machine: set it in [bus.security] as {{ env = \"VAR\" }} or {{ file = \"/path\" }} (its value is not repeated here)", k.trim());
            }
            c.bus.options.insert(k.trim().to_string(), v.trim().to_string());
        }
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.bus.partitions < 1 {
            bail!("bus.partitions must be at least 1, got {}", self.bus.partitions);
        }
        if self.verdict.window < 1 || self.verdict.min_baseline < 1 {
            bail!("verdict.window and verdict.min_baseline must be at least 1");
        }
        if self.verdict.block_pct < self.verdict.warn_pct {
            bail!("verdict.block_pct ({}) must not be below verdict.warn_pct ({})", self.verdict.block_pct, self.verdict.warn_pct);
        }
        for job in &self.scrape {
            job.validate()?;
        }
        if self.scrape.iter().enumerate().any(|(i, j)| self.scrape[..i].iter().any(|k| k.job == j.job)) {
            bail!("two [[scrape]] jobs have the same `job` name: each names its runs' workload");
        }
        if !matches!(self.webhook.min_severity, trackiq_schemas::Severity::Warn | trackiq_schemas::Severity::Block) {
            bail!("webhook.min_severity must be `warn` or `block`, got `{}`", self.webhook.min_severity.as_str());
        }
        Ok(())
    }

    /// Directory of the embedded broker's database.
    pub fn broker_dir(&self) -> PathBuf {
        if let Some(d) = &self.broker_dir {
            return d.clone();
        }
        match self.data.strip_prefix("file://") {
            Some(p) => Path::new(p).join("broker"),
            None if !self.data.contains("://") => Path::new(&self.data).join("broker"),
            None => PathBuf::from("trackiq-broker"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_equals_the_defaults_it_documents() {
        let text = include_str!("../infra/trackiq.example.toml");
        let parsed: Config = toml::from_str(text).expect("example config parses");
        let mut expected = Config::default();
        expected.webhook.urls = vec!["http://127.0.0.1:8080/hooks/trackiq".into()];
        // The notifier has no channels by default; the example shows one of each kind.
        use trackiq_sinks::notify::{ChannelConfig, SecretSource, SmtpSecurity};
        let kinds: Vec<&str> = parsed.notify.channels.iter().map(|c| c.kind().as_str()).collect();
        assert_eq!(kinds, ["log", "slack", "email", "github"]);
        assert!(matches!(&parsed.notify.channels[2], ChannelConfig::Email { security: SmtpSecurity::Starttls, password: Some(SecretSource::File(_)), .. }));
        assert_eq!(parsed.notify.routes.len(), 2);
        assert!(parsed.notify.routes[0].continue_matching && parsed.notify.routes[1].labels["team"] == "inference");
        expected.notify.channels = parsed.notify.channels.clone();
        expected.notify.routes = parsed.notify.routes.clone();
        expected.notify.templates_dir = Some("/etc/trackiq/templates".into());
        expected.notify.dashboard_url = Some("http://trackiq.internal:8080".into());
        expected.notify.reports_url = Some("https://reports.internal/trackiq".into());
        // No launch by default; the example shows one, which checks out.
        assert_eq!(parsed.dashboard.launch.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["sleep-latency"]);
        parsed.dashboard.launch[0].validate().expect("the example launch is valid");
        expected.dashboard.launch = parsed.dashboard.launch.clone();
        assert_eq!(parsed, expected);
        // The ingest token, commented out: the API is off unless one is set.
        let token = text.lines().skip_while(|l| !l.starts_with("[ingest]")).find_map(|l| l.strip_prefix("# token = ")).expect("[ingest] shows its token");
        let ingest: Config = toml::from_str(&format!("[ingest]\ntoken = {}\n", token.split("   #").next().unwrap())).expect("the ingest token parses");
        assert_eq!(ingest.ingest.token, Some(SecretSource::Env("TRACKIQ_INGEST_TOKEN".into())));
        let err = toml::from_str::<Config>("[[notify.channels]]\nkind = \"slack\"\nname = \"s\"\nwebhook_url = \"https://hooks.slack.com/x\"\n").unwrap_err().to_string();
        assert!(err.contains("never written in the config") && !err.contains("hooks.slack.com"), "a secret written in the config is refused, not repeated: {err}");
    }

    #[test]
    fn the_example_scrape_job_parses_with_the_values_it_shows() {
        let text = include_str!("../infra/trackiq.example.toml");
        let job: String = text.lines().skip_while(|l| *l != "# [[scrape]]").take_while(|l| l.starts_with("# ")).map(|l| format!("{}\n", &l[2..])).collect();
        let c: Config = toml::from_str(&job).expect("the commented [[scrape]] job parses");
        let j = &c.scrape[0];
        assert_eq!((j.job.as_str(), j.targets.len(), j.labels["team"].as_str()), ("llm-serving", 2, "inference"));
        let defaults = ScrapeJob { job: j.job.clone(), targets: j.targets.clone(), labels: j.labels.clone(), ..ScrapeJob::default() };
        assert_eq!(*j, defaults, "the example shows the defaults");
        j.validate().unwrap();
        let bad = toml::from_str::<Config>("[[scrape]]\njob = \"x\"\ntargets = [\"h:1\"]\nwindow_secs = 1.0\n").unwrap();
        assert!(bad.validate().unwrap_err().to_string().contains("shorter than `interval_secs`"));
        let bad = toml::from_str::<Config>("[[scrape]]\njob = \"x\"\ntargets = [\"ftp://h/m\"]\n").unwrap();
        assert!(bad.validate().unwrap_err().to_string().contains("only http and https"));
    }

    #[test]
    fn declared_metrics_decide_direction_kind_and_gating() {
        // The two declarations the example config shows, commented out.
        let text = include_str!("../infra/trackiq.example.toml");
        let declared: String = text.lines().filter_map(|l| l.strip_prefix("# ").filter(|l| l.contains("direction = "))).map(|l| format!("{l}\n")).collect();
        let c: Config = toml::from_str(&format!("[verdict.metrics]\n{declared}")).expect("declarations parse");
        let q = c.verdict.info("queue_depth");
        assert_eq!((q.kind, q.gates, q.guessed, q.unit.as_deref()), (trackiq_schemas::catalog::MetricKind::Kpi, true, false, Some("requests")));
        assert!(c.verdict.info("gpu_temperature_celsius").gates, "telemetry made to gate");
        assert!(!Config::default().verdict.info("gpu_temperature_celsius").gates);
        assert!(Config::default().verdict.info("queue_depth").guessed);
        let err = toml::from_str::<Config>("[verdict.metrics]\nq = { direction = \"up\" }\n").unwrap_err().to_string();
        assert!(err.contains("up") && err.contains("lower_is_better"), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name() {
        let err = toml::from_str::<Config>("[verdict]\nwarn_percent = 3\n").unwrap_err().to_string();
        assert!(err.contains("warn_percent"), "{err}");
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = std::env::temp_dir().join(format!("trackiq-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "data = \"file:///from-file\"\n[bus]\nbrokers = \"file:9092\"\npartitions = 3\n").unwrap();
        let env = |k: &str| match k {
            "TRACKIQ_CONFIG" => Some(file.display().to_string()),
            "TRACKIQ_BROKERS" => Some("env:9092".to_string()),
            _ => None,
        };
        let c = Config::load(&Overrides::default(), env).unwrap();
        assert_eq!((c.data.as_str(), c.bus.brokers.as_str(), c.bus.partitions), ("file:///from-file", "env:9092", 3));
        let flags = Overrides { brokers: Some("flag:9092".into()), kafka_options: vec!["security.protocol=SSL".into()], ..Default::default() };
        let c = Config::load(&flags, env).unwrap();
        assert_eq!(c.bus.brokers, "flag:9092");
        assert_eq!(c.bus.options.get("security.protocol").map(String::as_str), Some("SSL"));
        let bad = Overrides { kafka_options: vec!["nokey".into()], ..Default::default() };
        assert!(Config::load(&bad, |_| None).unwrap_err().to_string().contains("is not key=value"));
        let secret = Overrides { kafka_options: vec!["sasl.password=hunter2-flag".into()], ..Default::default() };
        let e = Config::load(&secret, |_| None).unwrap_err().to_string();
        assert!(e.contains("sasl.password holds a credential") && e.contains("[bus.security]") && !e.contains("hunter2"), "{e}");
        let bad = |k: &str| (k == "TRACKIQ_PARTITIONS").then(|| "six".to_string());
        assert!(Config::load(&Overrides::default(), bad).unwrap_err().to_string().contains("TRACKIQ_PARTITIONS=six"));
    }

    #[test]
    fn a_secret_written_in_the_config_is_refused_without_being_repeated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "[bus.security]\nprotocol = \"sasl_ssl\"\nmechanism = \"PLAIN\"\nusername = \"u\"\npassword = \"hunter2-kafka\"\n").unwrap();
        let e = format!("{:#}", Config::from_file(&path).unwrap_err());
        assert!(e.contains("line 5") && e.contains("never written in the config"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}
