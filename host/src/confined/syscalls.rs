//! The system calls the engine's process may make: what demuxing, decoding, filtering,
//! encoding and muxing files need (reading and writing descriptors, opening files under
//! Landlock's rules, memory, threads, time) and nothing else. No sockets, no process
//! creation (`clone` only with `CLONE_THREAD`), no exec, no ptrace, no mounts, no links,
//! no signals to other processes. A call outside the list fails with `EPERM`.
//!
//! The list was read off `strace -f -c` of the engine's processes over the test suite's
//! media jobs (every container, codec, packager, picture and chunk path), and is kept
//! under test by the e2e suite, which runs every one of those jobs through it.

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch};

/// Allowed whatever their arguments.
const PLAIN: &[i64] = &[
    // Descriptors.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_lseek,
    libc::SYS_close,
    libc::SYS_fcntl,
    libc::SYS_dup,
    libc::SYS_dup3,
    libc::SYS_fstat,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_ftruncate,
    libc::SYS_fallocate,
    libc::SYS_fadvise64,
    libc::SYS_ppoll,
    // Files, by name (Landlock decides which).
    libc::SYS_openat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_readlinkat,
    libc::SYS_getdents64,
    libc::SYS_getcwd,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_unlinkat,
    libc::SYS_mkdirat,
    // Memory.
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    // Threads and their synchronisation (`clone3` is answered by the first filter).
    libc::SYS_clone3,
    libc::SYS_futex,
    libc::SYS_set_robust_list,
    libc::SYS_set_tid_address,
    libc::SYS_rseq,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_sched_getscheduler,
    libc::SYS_sched_getparam,
    libc::SYS_get_mempolicy,
    libc::SYS_membarrier,
    libc::SYS_exit,
    libc::SYS_exit_group,
    // Signals to itself (a panic's abort) and their handlers.
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    libc::SYS_restart_syscall,
    // Time, identity and randomness.
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_gettimeofday,
    libc::SYS_getpid,
    libc::SYS_getppid,
    libc::SYS_gettid,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_getrandom,
    libc::SYS_uname,
    libc::SYS_sysinfo,
    // Its own limits (raising one past what the parent set is refused by the kernel).
    libc::SYS_prlimit64,
    libc::SYS_getrlimit,
    // Older spellings that glibc and the codecs' own code still use on x86-64.
    #[cfg(target_arch = "x86_64")]
    libc::SYS_open,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_stat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_lstat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_access,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_readlink,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_rename,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_unlink,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_mkdir,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_rmdir,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_dup2,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_time,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_poll,
];

/// The filters to install, in order: one that answers `clone3` with `ENOSYS`, so that
/// the C library falls back to `clone`, whose flags a filter can see (`clone3` passes
/// them in memory); then the allowlist, which lets `clone3` through to the first one's
/// answer (of stacked filters, the most restrictive answer wins). The allowlist goes
/// last because installing a filter takes calls (`prctl`, `seccomp`) it refuses.
pub fn filters() -> Result<Vec<BpfProgram>, seccompiler::BackendError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = PLAIN.iter().map(|&call| (call, Vec::new())).collect();
    let when = |arg: u8, op: SeccompCmpOp, value: u64| SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value);
    let one = |conditions: Vec<SeccompCondition>| SeccompRule::new(conditions).map(|rule| vec![rule]);
    // New threads only: a clone without CLONE_THREAD would be a new process.
    let thread = libc::CLONE_THREAD as u64;
    rules.insert(libc::SYS_clone, one(vec![when(0, SeccompCmpOp::MaskedEq(thread), thread)?])?);
    // Signals to its own threads only (abort, and the runtime's own).
    let pid = std::process::id() as u64;
    rules.insert(libc::SYS_tgkill, one(vec![when(0, SeccompCmpOp::Eq, pid)?])?);
    // Scheduling and CPU affinity of the calling thread only (0), never of another
    // process (the server runs as the same user).
    for call in [libc::SYS_sched_setaffinity, libc::SYS_sched_setscheduler, libc::SYS_sched_setparam] {
        rules.insert(call, one(vec![when(0, SeccompCmpOp::Eq, 0)?])?);
    }
    // Thread names, and nothing else of prctl's many switches.
    rules.insert(
        libc::SYS_prctl,
        vec![
            SeccompRule::new(vec![when(0, SeccompCmpOp::Eq, libc::PR_SET_NAME as u64)?])?,
            SeccompRule::new(vec![when(0, SeccompCmpOp::Eq, libc::PR_GET_NAME as u64)?])?,
        ],
    );
    // Whether a descriptor is a terminal (isatty), and no other ioctl.
    rules.insert(libc::SYS_ioctl, one(vec![when(1, SeccompCmpOp::Eq, libc::TCGETS)?])?);
    let allowlist = SeccompFilter::new(rules, SeccompAction::Errno(libc::EPERM as u32), SeccompAction::Allow, arch)?;
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;
    Ok(vec![clone3.try_into()?, allowlist.try_into()?])
}
