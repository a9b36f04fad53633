//! The pipeline under test: `trackiq up` as its own process (this executable), so that its
//! memory and CPU are measured apart from the load generator's, as they would be on a fleet.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running `trackiq up`.
pub struct Pipeline {
    child: Child,
    /// Kafka bootstrap address producers use.
    pub brokers: String,
    /// host:port of its metrics endpoint.
    pub metrics: String,
    /// Clock ticks per second, for CPU time from /proc.
    ticks: f64,
    last_cpu: Option<(Instant, f64)>,
}

impl Pipeline {
    /// Starts `trackiq up` over a fresh history in `dir/data` with the user's other settings,
    /// its broker on a free port (embedded), its dashboard and SQL endpoint on ports no one holds;
    /// returns it with the config it runs.
    pub fn start_fresh(config: &trackiq::config::Config, dir: &std::path::Path, name: &str) -> anyhow::Result<(Pipeline, trackiq::config::Config)> {
        let mut pipeline_config = config.clone();
        pipeline_config.data = format!("file://{}", dir.join("data").display());
        if pipeline_config.bus.embedded() {
            pipeline_config.bus.listen = format!("127.0.0.1:{}", super::free_port()?);
        }
        pipeline_config.dashboard.listen = "127.0.0.1:0".into();
        pipeline_config.sql_server.listen = "127.0.0.1:0".into();
        let config_file = dir.join(format!("{name}.toml"));
        std::fs::write(&config_file, toml::to_string(&pipeline_config)?)?;
        Ok((Pipeline::start(&config_file)?, pipeline_config))
    }

    /// Starts `trackiq up` with `config_file` and waits (at most 120 s) until every stage
    /// has its partitions.
    pub fn start(config_file: &std::path::Path) -> anyhow::Result<Pipeline> {
        let exe = std::env::current_exe().context("finding this executable to start `trackiq up`")?;
        let mut child = Command::new(exe)
            .arg("--config")
            .arg(config_file)
            .arg("up")
            // A free port for the metrics of this pipeline, whatever the user's config says.
            .env("TRACKIQ_METRICS_LISTEN", "127.0.0.1:0")
            .env_remove("TRACKIQ_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting `trackiq up`")?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads to the end even after the ready line: a pipe closed early would make the
        // pipeline's later prints fail (EPIPE) when it stops.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(l) if l.starts_with("trackiq is up") => break l,
                Ok(_) => continue,
                Err(_) => {
                    let _ = child.kill();
                    bail!("`trackiq up` did not report ready within 120 s (its log is above)");
                }
            }
        };
        // "trackiq is up: brokers HOST:PORT · data URL · metrics http://ADDR/metrics · ..."
        let field = |prefix: &str| line.split(" · ").find_map(|p| p.trim().strip_prefix(prefix).map(str::to_string));
        let brokers = line.split("brokers ").nth(1).and_then(|r| r.split(' ').next()).map(str::to_string).context("no brokers in the ready line")?;
        let metrics = field("metrics http://").and_then(|m| m.strip_suffix("/metrics").map(str::to_string)).context("no metrics address in the ready line")?;
        let ticks = clock_ticks_per_second();
        Ok(Pipeline { child, brokers, metrics, ticks, last_cpu: None })
    }

    /// Resident memory now, MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib: f64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// CPU used since the previous call, in percent of one core.
    pub fn cpu_percent(&mut self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the command (which may hold spaces) start after the last ')'.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let cpu = (f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / self.ticks;
        let now = Instant::now();
        let pct = self.last_cpu.map(|(t, c)| 100.0 * (cpu - c) / now.duration_since(t).as_secs_f64());
        self.last_cpu = Some((now, cpu));
        pct
    }

    /// Asks the pipeline to stop (SIGTERM: it flushes and commits) and waits for it.
    pub fn stop(mut self) -> anyhow::Result<()> {
        // SAFETY: signalling our own child, which has not been waited for yet (its pid is ours).
        if unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) } != 0 {
            bail!("sending SIGTERM to `trackiq up`: {}", std::io::Error::last_os_error());
        }
        let status = self.child.wait()?;
        if !status.success() {
            bail!("`trackiq up` exited with {status}");
        }
        Ok(())
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // On an early error: never leave a pipeline running behind the benchmark.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn clock_ticks_per_second() -> f64 {
    // 100 on every Linux this runs on; asked rather than assumed.
    // SAFETY: sysconf reads a constant and has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}
