//! What a confined engine can no longer do, tried from inside one: the operator's
//! `copra engine-check` and the tests run it to see the confinement hold on this kernel.

use std::ffi::CString;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One thing tried, and whether the confinement refused it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub what: String,
    pub refused: bool,
    /// The error it met, or what it did.
    pub detail: String,
}

/// Try what an exploited decoder would try. `outside` is a file it may not read,
/// `writable` a directory it may write in.
pub(super) fn run(outside: &Path, writable: &Path) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut check = |what: &str, result: Result<String, std::io::Error>| {
        let (refused, detail) = match result {
            Ok(done) => (false, done),
            Err(err) => (true, err.to_string()),
        };
        checks.push(Check { what: what.into(), refused, detail });
    };
    check("read a file outside its input and work directory", std::fs::read(outside).map(|b| format!("read {} bytes", b.len())));
    check("read the server's environment", std::fs::read(format!("/proc/{}/environ", parent())).map(|b| format!("read {} bytes", b.len())));
    check("write outside its work directory", std::fs::write(outside.with_extension("written"), b"x").map(|()| "wrote".into()));
    check(
        "make a symbolic link in its work directory",
        std::os::unix::fs::symlink(outside, writable.join("link")).map(|()| "linked".into()),
    );
    check("open a TCP socket", sys(|| unsafe_socket(libc::AF_INET)));
    check("open a Unix socket", sys(|| unsafe_socket(libc::AF_UNIX)));
    check("start a process", sys(unsafe_fork));
    check("run a program", sys(unsafe_exec));
    check("signal the server", sys(|| {
        // SAFETY: kill with signal 0 only asks whether the process could be signalled.
        unsafe { libc::kill(parent(), 0) as i64 }
    }));
    check("trace the server", sys(|| {
        // SAFETY: a failing ptrace changes nothing; a succeeding one is detached below.
        let attached = unsafe { libc::ptrace(libc::PTRACE_ATTACH, parent(), 0, 0) };
        if attached == 0 {
            // SAFETY: as above.
            unsafe { libc::ptrace(libc::PTRACE_DETACH, parent(), 0, 0) };
        }
        attached
    }));
    check("raise its memory limit", sys(|| {
        let limit = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
        // SAFETY: setrlimit reads the struct it is given.
        unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) as i64 }
    }));
    checks
}

fn parent() -> libc::pid_t {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() }
}

/// A system call's result: -1 is its error, anything else success.
fn sys(call: impl FnOnce() -> i64) -> Result<String, std::io::Error> {
    match call() {
        -1 => Err(std::io::Error::last_os_error()),
        result => Ok(format!("succeeded ({result})")),
    }
}

fn unsafe_socket(domain: libc::c_int) -> i64 {
    // SAFETY: socket creates a descriptor or fails; one created is closed at once.
    unsafe {
        let fd = libc::socket(domain, libc::SOCK_STREAM, 0);
        if fd >= 0 {
            libc::close(fd);
        }
        fd as i64
    }
}

fn unsafe_fork() -> i64 {
    // SAFETY: a child made by a fork that should not succeed exits at once.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            libc::_exit(0);
        }
        pid as i64
    }
}

fn unsafe_exec() -> i64 {
    let program = CString::new("/bin/true").unwrap_or_default();
    let argv = [program.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: execve either replaces this process with /bin/true (the check then reads
    // as not refused: the parent sees no answer) or fails and returns.
    unsafe { libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr()) as i64 }
}
