//! How the engine's process shuts itself in before it opens a stranger's file, in this
//! order: it dies with its parent; resource limits; no capabilities (even when the
//! server runs as root); Landlock rules on the files it may read and the directories it
//! may write, no TCP and no signals out; `no_new_privs` and the seccomp allowlist of
//! [`super::syscalls`]. Landlock is best effort (kernels before 5.13, or without it,
//! get the rest); everything else must hold or the engine does not run.

use std::io;
use std::path::Path;

use landlock::{ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules};

use super::protocol::Confinement;

/// Places every process may read: the system's libraries (FFmpeg's codecs may load
/// parts of themselves lazily) and the CPU topology that thread pools size themselves
/// by. Nothing here is the server's.
const SYSTEM_READS: &[&str] = &["/usr/lib", "/usr/share/zoneinfo", "/lib", "/lib64", "/etc/ld.so.cache", "/sys/devices/system/cpu", "/dev/null", "/dev/urandom"];

#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("setting the {what} limit: {source}")]
    Limit { what: &'static str, source: io::Error },
    #[error("dropping capabilities: {0}")]
    Capabilities(io::Error),
    #[error("tying the engine to its parent: {0}")]
    Parent(io::Error),
    #[error("Landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    #[error("seccomp: {0}")]
    Seccomp(#[from] seccompiler::Error),
    #[error("seccomp filter: {0}")]
    Filter(#[from] seccompiler::BackendError),
}

/// Make the server's own process non-dumpable: no core file with its keys in it, and no
/// process of the same user (an engine on a kernel without Landlock, say) may read its
/// memory or environment through `/proc` or trace it.
pub fn keep_server_private() {
    // SAFETY: a plain prctl on this process.
    let done = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    if done != 0 {
        tracing::warn!(err = %io::Error::last_os_error(), "the server could not make itself non-dumpable");
    }
}

/// Close every descriptor above standard error that the parent left open.
pub fn close_inherited() {
    // SAFETY: close_range only closes descriptors; nothing in this process uses any
    // beyond 0-2 yet (the runtime has not started).
    let closed = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if closed != 0 {
        // Kernels before 5.9: one at a time.
        for fd in 3..4096 {
            // SAFETY: as above.
            unsafe { libc::close(fd) };
        }
    }
}

/// Confine this process as `rules` says. Returns how far Landlock went
/// (`full`, `partial` or `none`).
pub fn apply(rules: &Confinement) -> Result<String, ConfineError> {
    die_with_parent()?;
    limits(rules)?;
    drop_capabilities()?;
    let landlock = landlock(rules)?;
    let filters = super::syscalls::filters()?;
    for filter in &filters {
        seccompiler::apply_filter(filter)?;
    }
    Ok(landlock.to_string())
}

fn die_with_parent() -> Result<(), ConfineError> {
    // SAFETY: plain prctl calls on this process.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) != 0 {
            return Err(ConfineError::Parent(io::Error::last_os_error()));
        }
        // Not dumpable: no core file with a frame of someone's video in it, and no other
        // process of this user may read this one's memory.
        libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong);
        // The parent died before the death signal was armed.
        if libc::getppid() == 1 {
            std::process::exit(3);
        }
    }
    Ok(())
}

fn limits(rules: &Confinement) -> Result<(), ConfineError> {
    let set = |what: &'static str, resource, soft: u64, hard: u64| {
        let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(ConfineError::Limit { what, source: io::Error::last_os_error() });
        }
        Ok(())
    };
    set("memory", libc::RLIMIT_DATA, rules.data_bytes, rules.data_bytes)?;
    // SIGXCPU at the soft limit (reported as the limit), SIGKILL a moment later.
    set("CPU time", libc::RLIMIT_CPU, rules.cpu_secs, rules.cpu_secs.saturating_add(2))?;
    set("file size", libc::RLIMIT_FSIZE, rules.file_bytes, rules.file_bytes)?;
    set("open files", libc::RLIMIT_NOFILE, rules.open_files, rules.open_files)?;
    set("core file", libc::RLIMIT_CORE, 0, 0)?;
    Ok(())
}

/// Give up every capability, so that a server running as root gives its engine none of
/// root's powers (reading any file, tracing other processes, raising limits).
fn drop_capabilities() -> Result<(), ConfineError> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    // The bounding set first (that needs CAP_SETPCAP, which the next step removes).
    for cap in 0..64 as libc::c_ulong {
        // SAFETY: prctl on this process; EINVAL past the last capability is expected.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    }
    let header = Header { version: VERSION_3, pid: 0 };
    let data = [Data::default(); 2];
    // SAFETY: capset reads a version-3 header and two data structs, as given. The libc
    // crate has no wrapper for it.
    if unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) } != 0 {
        return Err(ConfineError::Capabilities(io::Error::last_os_error()));
    }
    Ok(())
}

fn landlock(rules: &Confinement) -> Result<&'static str, ConfineError> {
    let abi = ABI::V6;
    let read = AccessFs::from_read(abi);
    // Write as files and directories only: no symbolic or hard links to elsewhere, no
    // devices, sockets or pipes, no executing.
    let write = read | AccessFs::WriteFile | AccessFs::RemoveFile | AccessFs::RemoveDir | AccessFs::MakeDir | AccessFs::MakeReg | AccessFs::Truncate;
    let existing = |paths: &[&Path]| paths.iter().filter(|p| p.exists()).map(|p| p.to_path_buf()).collect::<Vec<_>>();
    let system: Vec<&Path> = SYSTEM_READS.iter().map(Path::new).collect();
    let reads: Vec<&Path> = rules.reads.iter().map(|p| p.as_path()).collect();
    let writes: Vec<&Path> = rules.writes.iter().map(|p| p.as_path()).collect();
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))?
        .handle_access(AccessNet::from_all(abi))?
        .scope(Scope::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules(existing(&system), read))?
        .add_rules(path_beneath_rules(existing(&reads), read))?
        .add_rules(path_beneath_rules(existing(&writes), write))?
        .restrict_self()?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => "full",
        RulesetStatus::PartiallyEnforced => "partial",
        RulesetStatus::NotEnforced => "none",
    })
}
