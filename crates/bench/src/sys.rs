//! Machine facts and CPU accounting from `/proc` (Linux only; elsewhere the figures are absent).

use std::{path::Path, process::Command};

/// CPU time in clock ticks of a process (all its threads).
pub fn process_ticks(pid: u32) -> Option<u64> {
    stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// CPU time in clock ticks of this process's threads whose name is `name`.
pub fn own_threads_ticks(name: &str) -> Option<u64> {
    let mut total = 0;
    let mut found = false;
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim_end() == name
            && let Some(ticks) = std::fs::read_to_string(path.join("stat"))
                .ok()
                .and_then(|s| stat_ticks(&s))
        {
            total += ticks;
            found = true;
        }
    }
    found.then_some(total)
}

/// The pid of our child process named `comm` (the nats-server the harness started).
pub fn child_pid(comm: &str) -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
        let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        (name == comm && ppid == me).then_some(pid)
    })
}

/// utime + stime from a `/proc/<pid>/stat` line. The command name may contain spaces, so fields
/// are counted after its closing parenthesis.
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = stat.rsplit_once(") ")?.1;
    let mut fields = rest.split_whitespace();
    // After the name: state(3) ppid(4) ... utime is field 14, stime 15 → indexes 11 and 12 here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`, almost always 100).
pub fn clock_ticks_per_sec() -> f64 {
    command_output("getconf", &["CLK_TCK"])
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

pub fn command_output(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub struct MachineFacts {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub rustc: String,
    pub nats_server: String,
    pub nats_server_path: String,
    pub bin_profile: String,
    pub git_commit: String,
}

pub fn machine_facts() -> MachineFacts {
    let nats = scifer_test_support::nats_server_binary();
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let unknown = || "unknown".to_string();
    MachineFacts {
        nproc: std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model,
        kernel: command_output("uname", &["-sr"]).unwrap_or_else(unknown),
        rustc: command_output("rustc", &["--version"]).unwrap_or_else(unknown),
        nats_server: command_output(&nats, &["--version"]).unwrap_or_else(unknown),
        nats_server_path: nats.display().to_string(),
        bin_profile: std::env::var("SCIFER_BIN_PROFILE").unwrap_or_else(|_| "debug".into()),
        git_commit: git_commit(&scifer_test_support::workspace_root()).unwrap_or_else(unknown),
    }
}

/// The checked-out commit, read from `.git` without running git.
fn git_commit(root: &Path) -> Option<String> {
    let head = std::fs::read_to_string(root.join(".git/HEAD")).ok()?;
    let head = head.trim();
    let commit = match head.strip_prefix("ref: ") {
        Some(reference) => std::fs::read_to_string(root.join(".git").join(reference))
            .ok()
            .or_else(|| {
                let packed = std::fs::read_to_string(root.join(".git/packed-refs")).ok()?;
                packed
                    .lines()
                    .find(|l| l.ends_with(reference))
                    .and_then(|l| l.split_whitespace().next())
                    .map(String::from)
            })?,
        None => head.to_string(),
    };
    Some(commit.trim().chars().take(12).collect())
}

/// CPU used by one process (or thread group) over a measured window.
pub struct CpuMeter {
    start: Option<u64>,
    read: Box<dyn Fn() -> Option<u64> + Send + Sync>,
}

impl CpuMeter {
    pub fn process(pid: Option<u32>) -> Self {
        Self::new(Box::new(move || pid.and_then(process_ticks)))
    }

    pub fn threads(name: &'static str) -> Self {
        Self::new(Box::new(move || own_threads_ticks(name)))
    }

    fn new(read: Box<dyn Fn() -> Option<u64> + Send + Sync>) -> Self {
        let start = read();
        Self { start, read }
    }

    /// Microseconds of CPU per unit of work since the meter started.
    pub fn micros_per(&self, units: u64) -> Option<f64> {
        let used = (self.read)()?.checked_sub(self.start?)?;
        (units > 0).then(|| used as f64 / clock_ticks_per_sec() * 1e6 / units as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let line = "4242 (tokio runtime) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 4 0 100 0 0";
        assert_eq!(stat_ticks(line), Some(10));
    }

    #[test]
    fn this_process_has_cpu_time() {
        assert!(process_ticks(std::process::id()).is_some());
    }
}
