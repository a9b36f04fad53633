//! Host telemetry from procfs and sysfs.
//!
//! `process_rss_mib` is the resident memory of the trackiq process (the harness), not of the
//! program being benchmarked. `host_other_cpu_percent` is the CPU that processes other than
//! trackiq and its descendants used: how noisy the machine was while the benchmark ran.

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

/// CPU clock ticks a process used, its own (utime + stime) and its reaped children's
/// (cutime + cstime), from the text of `/proc/<pid>/stat`: fields 14 to 17, in the same
/// unit (USER_HZ) as /proc/stat.
fn stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: count from the last `)`,
    // after which field 3 (the state) comes first.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: i64 = fields.get(11..15)?.iter().map(|f| f.parse::<i64>().ok()).sum::<Option<i64>>()?;
    Some(ticks.max(0) as u64)
}

/// Live children of a process: the union of its threads' `children` lists (a child belongs
/// to the thread that forked it). Empty where the kernel lacks CONFIG_PROC_CHILDREN.
fn children(pid: &str) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// CPU ticks of a process tree: the process, the children it reaped and, recursively, its
/// live descendants. cutime and cstime grow only when a child is reaped, so without the live
/// ones a child running across several intervals would count as another process until its
/// end, then vanish from them all at once.
fn tree_ticks(pid: &str) -> Option<u64> {
    let own = stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    Some(own + children(pid).iter().filter_map(|c| tree_ticks(c)).sum::<u64>())
}

/// Ticks of the whole machine and of this process tree at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CpuTicks {
    busy: u64,
    total: u64,
    ours: u64,
}

fn cpu_ticks() -> Option<CpuTicks> {
    let (busy, total) = cpu_jiffies(&std::fs::read_to_string("/proc/stat").ok()?)?;
    Some(CpuTicks { busy, total, ours: tree_ticks("self")? })
}

/// Share of the whole machine (every core: 100 %) that other processes kept busy between two
/// readings, clamped to [0, 100] (the two sources are read a moment apart).
fn other_cpu_percent(before: CpuTicks, now: CpuTicks) -> Option<f64> {
    let total = now.total.checked_sub(before.total).filter(|t| *t > 0)? as f64;
    let busy = now.busy as f64 - before.busy as f64;
    let ours = now.ours as f64 - before.ours as f64;
    Some(((busy - ours) / total * 100.0).clamp(0.0, 100.0))
}

/// A kB field of /proc/meminfo or /proc/self/status, in MiB.
pub(crate) fn kb_field(text: &str, key: &str) -> Option<f64> {
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

/// Fewest clock ticks (all CPUs together, USER_HZ = 100 per second each) a utilisation is
/// computed over: with fewer, one tick more or less moves it by tens of percent (a run's first
/// reading, taken as it starts, read 0 %, 50 % or 100 %). 20 ticks: 100 ms of one core.
const MIN_RATE_TICKS: u64 = 20;

/// Host sampler; utilisation and power are rates over the last interval.
pub struct Host {
    last_cpu: Option<CpuTicks>,
    last_rapl: Option<(u64, std::time::Instant)>,
}

impl Default for Host {
    fn default() -> Self {
        Self::new()
    }
}

impl Host {
    pub fn new() -> Self {
        Host { last_cpu: cpu_ticks(), last_rapl: rapl().map(|(e, _)| (e, std::time::Instant::now())) }
    }

    pub fn read(&mut self) -> Vec<Reading> {
        let mut out = Vec::new();
        let r = |metric, value, unit| Reading { metric, value, unit, gpu: None };
        if let Some(now) = cpu_ticks() {
            match self.last_cpu {
                Some(before) if now.total >= before.total + MIN_RATE_TICKS => {
                    out.push(r("cpu_utilization_percent", now.busy.saturating_sub(before.busy) as f64 / (now.total - before.total) as f64 * 100.0, "%"));
                    if let Some(other) = other_cpu_percent(before, now) {
                        out.push(r("host_other_cpu_percent", other, "%"));
                    }
                    self.last_cpu = Some(now);
                }
                // Too few ticks for a rate (the first reading of a run comes right after
                // the start): keep the earlier reading and measure over a longer interval.
                Some(_) => {}
                None => self.last_cpu = Some(now),
            }
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
    fn parses_proc_self_stat_and_the_others_share() {
        // A command name with spaces and parentheses; utime 700, stime 200, cutime 90, cstime 10.
        let stat = "4242 (a b) (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 700 200 90 10 20 0 9 0 12345 1000 200";
        assert_eq!(stat_ticks(stat), Some(1000));
        assert_eq!(stat_ticks("4242 (short) S 1"), None);
        let before = CpuTicks { busy: 150, total: 1000, ours: 10 };
        // 200 busy ticks of 400, 100 of them ours: others kept 25 % of the machine busy.
        assert_eq!(other_cpu_percent(before, CpuTicks { busy: 350, total: 1400, ours: 110 }), Some(25.0));
        // Ours read a moment after /proc/stat may exceed the busy ticks: clamped, not negative.
        assert_eq!(other_cpu_percent(before, CpuTicks { busy: 160, total: 1400, ours: 30 }), Some(0.0));
        assert_eq!(other_cpu_percent(before, before), None, "no time passed");
    }

    #[test]
    fn a_live_child_counts_as_ours_before_it_is_reaped() {
        use std::io::{BufRead, Write};
        use std::process::{Command, Stdio};
        // Busy for a while, then says so and blocks on its stdin, alive and not reaped.
        let mut child = Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo done; read x"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "done");
        let childs = stat_ticks(&std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap()).unwrap();
        let own_before = stat_ticks(&std::fs::read_to_string("/proc/self/stat").unwrap()).unwrap();
        let tree = tree_ticks("self").unwrap();
        child.stdin.take().unwrap().write_all(b"\n").unwrap();
        child.wait().unwrap();
        assert!(childs > 0, "the busy loop used CPU");
        assert!(tree.saturating_sub(own_before) >= childs, "tree {tree}, own {own_before}, child {childs}");
    }

    #[test]
    fn reads_this_machine() {
        let mut h = Host::new();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let r = h.read();
        let names: Vec<_> = r.iter().map(|x| x.metric).collect();
        assert!(names.contains(&"memory_used_mib") && names.contains(&"process_rss_mib"), "{names:?}");
        assert!(r.iter().all(|x| x.value.is_finite() && x.value >= 0.0));
        if let Some(other) = r.iter().find(|x| x.metric == "host_other_cpu_percent") {
            assert!((0.0..=100.0).contains(&other.value), "{other:?}");
        }
    }
}
