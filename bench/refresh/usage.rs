//! What each party of a run spent, from `/proc`: this process's memory, and the CPU seconds of
//! this process, the bank, PostgreSQL and the whole machine.

use serde_json::json;

use super::round;

/// (VmHWM, VmRSS) in kB.
pub(super) fn memory_of(status_path: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(status_path).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

pub(super) fn own_memory() -> (u64, u64) {
    memory_of("/proc/self/status").unwrap_or((0, 0))
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces), so field
/// N of proc(5) is at index N - 3.
pub(super) fn stat_fields(pid: &str) -> Vec<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    rest.split_whitespace().map(|field| field.parse().unwrap_or(0)).collect()
}

/// Clock ticks per second of `/proc` CPU times (USER_HZ, 100 on Linux).
pub(super) const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system) of one process so far; with `children`, also of its children
/// that have exited and been waited for.
pub(super) fn cpu_seconds(pid: &str, children: bool) -> f64 {
    let fields = stat_fields(pid);
    let field = |index: usize| fields.get(index).copied().unwrap_or(0);
    let ticks = field(11) + field(12) + if children { field(13) + field(14) } else { 0 };
    ticks as f64 / TICKS_PER_SECOND
}

/// The postmaster and every live backend: what PostgreSQL has spent so far.
pub(super) fn postgres_cpu_seconds(postmaster: u32) -> f64 {
    let backends: f64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| stat_fields(pid).get(1).copied() == Some(u64::from(postmaster)))
        .map(|pid| cpu_seconds(&pid, false))
        .sum();
    cpu_seconds(&postmaster.to_string(), true) + backends
}

/// Busy and total CPU seconds of the whole machine, from the `cpu` line of `/proc/stat`.
pub(super) fn machine_cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal; guest time is already inside user.
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    ((total - idle) as f64 / TICKS_PER_SECOND, total as f64 / TICKS_PER_SECOND)
}

/// CPU seconds spent so far by each party of a run.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CpuSample {
    refresher: f64,
    bank: f64,
    postgres: f64,
    machine_busy: f64,
    machine_total: f64,
}

impl CpuSample {
    pub(super) fn take(bank_pid: Option<u32>, postmaster: u32) -> Self {
        let (machine_busy, machine_total) = machine_cpu_seconds();
        Self {
            refresher: cpu_seconds("self", false),
            bank: bank_pid.map_or(0.0, |pid| cpu_seconds(&pid.to_string(), false)),
            postgres: postgres_cpu_seconds(postmaster),
            machine_busy,
            machine_total,
        }
    }

    /// CPU seconds per party between `self` and `later`, and per refresh in milliseconds.
    pub(super) fn report(&self, later: &Self, refreshes: u64, in_process_bank: bool) -> serde_json::Value {
        let spent = |from: f64, to: f64| to - from;
        let refresher = spent(self.refresher, later.refresher);
        let bank = spent(self.bank, later.bank);
        let postgres = spent(self.postgres, later.postgres);
        let busy = spent(self.machine_busy, later.machine_busy);
        let total = spent(self.machine_total, later.machine_total);
        let others = (busy - refresher - bank - postgres).max(0.0);
        let per_refresh = |seconds: f64| round(seconds * 1000.0 / refreshes.max(1) as f64, 2);
        json!({
            "seconds": {
                "refresher": round(refresher, 2),
                "bank": if in_process_bank { json!("inside refresher") } else { json!(round(bank, 2)) },
                "postgres": round(postgres, 2),
                "rest_of_machine": round(others, 2),
                "machine_busy": round(busy, 2),
                "machine_capacity": round(total, 2),
            },
            "ms_per_refresh": {
                "refresher": per_refresh(refresher),
                "bank": per_refresh(bank),
                "postgres": per_refresh(postgres),
            },
            "machine_busy_share": round(if total > 0.0 { busy / total } else { 0.0 }, 3),
        })
    }
}
