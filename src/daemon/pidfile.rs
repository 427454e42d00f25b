// SPDX-License-Identifier: GPL-2.0-or-later
//! The pid file, with ldirectord's name and validity rule: the file is
//! `/var/run/ldirectord.<config basename>.pid`, and the pid it names only
//! counts when `/proc/PID/cmdline` mentions "ldirectord" (a recycled pid of
//! another program must not be signalled).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Where the pid file of the instance running `config` lives.
pub fn path_for(run_dir: &Path, config: &Path) -> PathBuf {
    let base = config
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ldirectord.cf".to_owned());
    run_dir.join(format!("ldirectord.{base}.pid"))
}

/// What a pid file says about the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidState {
    /// No pid file.
    Absent,
    /// The pid file names a live ldirectord process.
    Running(i32),
    /// The pid file exists but its process is gone or is something else.
    Stale,
}

pub fn read_state(path: &Path) -> PidState {
    let Ok(text) = fs::read_to_string(path) else {
        return PidState::Absent;
    };
    match text.trim().parse::<i32>() {
        Ok(pid) if pid > 0 && is_ldirectord(pid) => PidState::Running(pid),
        _ => PidState::Stale,
    }
}

fn is_ldirectord(pid: i32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.windows(10).any(|w| w == b"ldirectord"))
        .unwrap_or(false)
}

/// Writes our pid atomically (temp file + rename), so a reader never sees
/// a half-written number.
pub fn write(path: &Path, pid: u32) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("pid.tmp");
    let mut f = fs::File::create(&tmp)?;
    writeln!(f, "{pid}")?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

/// Removes the pid file if it still names `pid` (a newer instance may have
/// replaced it).
pub fn remove_if_ours(path: &Path, pid: u32) {
    if let Ok(text) = fs::read_to_string(path) {
        if text.trim() == pid.to_string() {
            let _ = fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_follows_config_basename() {
        let p = path_for(Path::new("/var/run"), Path::new("/etc/ha.d/web.cf"));
        assert_eq!(p, PathBuf::from("/var/run/ldirectord.web.cf.pid"));
    }

    #[test]
    fn states() {
        let dir = std::env::temp_dir().join(format!("ldir-pid-{}", std::process::id()));
        let p = dir.join("x.pid");
        assert_eq!(read_state(&p), PidState::Absent);
        // pid 1 is never ldirectord in a test environment.
        write(&p, 1).unwrap();
        assert_eq!(read_state(&p), PidState::Stale);
        fs::write(&p, "garbage").unwrap();
        assert_eq!(read_state(&p), PidState::Stale);
        remove_if_ours(&p, 2);
        assert!(p.exists(), "a pid file naming someone else stays");
        write(&p, 2).unwrap();
        remove_if_ours(&p, 2);
        assert!(!p.exists());
        let _ = fs::remove_dir_all(&dir);
    }
}
