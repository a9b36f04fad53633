//! Host telemetry from procfs and sysfs.

use super::Reading;

/// CPU jiffies (busy, total) from the first line of /proc/stat.
fn cpu_jiffies(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    if v.len() < 4 {
        return None;
    }
    // idle + iowait are not busy.
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    let total: u64 = v.iter().take(8).sum();
    Some((total - idle, total))
}

/// A kB field of /proc/meminfo or /proc/self/status, in MiB.
fn kb_field(text: &str, key: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(key)?.trim().strip_suffix("kB").and_then(|n| n.trim().parse::<f64>().ok())).map(|kb| kb / 1024.0)
}

/// Mean current CPU frequency in MHz: cpufreq where present, else /proc/cpuinfo.
fn cpu_mhz() -> Option<f64> {
    let mut freqs: Vec<f64> = std::fs::read_dir("/sys/devices/system/cpu")
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("cpufreq/scaling_cur_freq")).ok())
        .filter_map(|s| s.trim().parse::<f64>().ok().map(|khz| khz / 1000.0))
        .collect();
    if freqs.is_empty() {
        let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
        freqs = info.lines().filter_map(|l| l.strip_prefix("cpu MHz")?.split(':').nth(1)?.trim().parse().ok()).collect();
    }
    (!freqs.is_empty()).then(|| freqs.iter().sum::<f64>() / freqs.len() as f64)
}

/// RAPL package energy counter (µJ) and its wrap range, when readable.
fn rapl() -> Option<(u64, u64)> {
    let base = std::path::Path::new("/sys/class/powercap/intel-rapl:0");
    let e = std::fs::read_to_string(base.join("energy_uj")).ok()?.trim().parse().ok()?;
    let max = std::fs::read_to_string(base.join("max_energy_range_uj")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(u64::MAX);
    Some((e, max))
}

/// Host sampler; utilisation and power are rates over the last interval.
pub struct Host {
    last_cpu: Option<(u64, u64)>,
    last_rapl: Option<(u64, std::time::Instant)>,
}

impl Default for Host {
    fn default() -> Self {
        Self::new()
    }
}

impl Host {
    pub fn new() -> Self {
        let last_cpu = std::fs::read_to_string("/proc/stat").ok().and_then(|s| cpu_jiffies(&s));
        Host { last_cpu, last_rapl: rapl().map(|(e, _)| (e, std::time::Instant::now())) }
    }

    pub fn read(&mut self) -> Vec<Reading> {
        let mut out = Vec::new();
        let r = |metric, value, unit| Reading { metric, value, unit, gpu: None };
        if let Some(now) = std::fs::read_to_string("/proc/stat").ok().and_then(|s| cpu_jiffies(&s)) {
            if let Some((busy0, total0)) = self.last_cpu
                && now.1 > total0
            {
                out.push(r("cpu_utilization_percent", (now.0 - busy0) as f64 / (now.1 - total0) as f64 * 100.0, "%"));
            }
            self.last_cpu = Some(now);
        }
        if let Ok(mem) = std::fs::read_to_string("/proc/meminfo")
            && let (Some(total), Some(avail)) = (kb_field(&mem, "MemTotal:"), kb_field(&mem, "MemAvailable:"))
        {
            out.push(r("memory_used_mib", total - avail, "MiB"));
            out.push(r("memory_utilization_percent", (total - avail) / total * 100.0, "%"));
        }
        if let Some(rss) = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| kb_field(&s, "VmRSS:")) {
            out.push(r("process_rss_mib", rss, "MiB"));
        }
        if let Some(mhz) = cpu_mhz() {
            out.push(r("cpu_frequency_mhz", mhz, "MHz"));
        }
        if let Some((e, max)) = rapl() {
            let now = std::time::Instant::now();
            if let Some((e0, t0)) = self.last_rapl {
                let delta_uj = if e >= e0 { e - e0 } else { max - e0 + e };
                let secs = now.duration_since(t0).as_secs_f64();
                out.push(r("cpu_package_energy_joules", delta_uj as f64 / 1e6, "J"));
                if secs > 0.0 {
                    out.push(r("cpu_package_power_watts", delta_uj as f64 / 1e6 / secs, "W"));
                }
            }
            self.last_rapl = Some((e, now));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_and_meminfo() {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n";
        assert_eq!(cpu_jiffies(stat), Some((150, 1000)));
        let mem = "MemTotal:       2048 kB\nMemFree:  10 kB\nMemAvailable:   1024 kB\n";
        assert_eq!((kb_field(mem, "MemTotal:"), kb_field(mem, "MemAvailable:")), (Some(2.0), Some(1.0)));
    }

    #[test]
    fn reads_this_machine() {
        let mut h = Host::new();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let r = h.read();
        let names: Vec<_> = r.iter().map(|x| x.metric).collect();
        assert!(names.contains(&"memory_used_mib") && names.contains(&"process_rss_mib"), "{names:?}");
        assert!(r.iter().all(|x| x.value.is_finite() && x.value >= 0.0));
    }
}
