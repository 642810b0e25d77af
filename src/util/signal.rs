//! SIGINT/SIGTERM handling: a process-wide cancel flag and the children to stop.
//!
//! The first signal sets the flag and sends SIGTERM to every registered child
//! (pg_dump, pg_restore, ...). Their pipes then close, the pipeline notices the
//! flag, aborts the partial object and returns [`Interrupted`]; `main` exits 130.
//! A second signal kills every registered process group (SIGKILL) and exits at
//! once, with the code `main` passed to [`install`] (130, from the same
//! mapping). No secret file is left behind: passwords reach the tools
//! through the environment or unnamed pipes, never through files.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

static CANCELLED: AtomicBool = AtomicBool::new(false);
/// `schedule run`: the first signal asks to stop, it does not cancel.
static GRACEFUL: AtomicBool = AtomicBool::new(false);
static STOPPING: AtomicBool = AtomicBool::new(false);

fn children() -> &'static Mutex<BTreeSet<u32>> {
    static CHILDREN: OnceLock<Mutex<BTreeSet<u32>>> = OnceLock::new();
    CHILDREN.get_or_init(|| Mutex::new(BTreeSet::new()))
}

/// The error returned by work that stopped because of a signal.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by a signal")]
pub struct Interrupted;

/// Whether `err` is [`Interrupted`].
pub fn is_interrupt(err: &(dyn std::error::Error + 'static)) -> bool {
    err.downcast_ref::<Interrupted>().is_some()
}

/// Whether a SIGINT or SIGTERM has arrived, or this thread's run was
/// cancelled (see [`Run`]).
pub fn cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst) || run_cancelled()
}

/// Fails with [`Interrupted`] once a signal has arrived.
pub fn check() -> Result<(), Interrupted> {
    if cancelled() {
        Err(Interrupted)
    } else {
        Ok(())
    }
}

/// Makes the first SIGINT/SIGTERM a request to stop ([`stopping`]) that
/// leaves running work alone; a second one, or [`cancel`], cancels it.
pub fn graceful() {
    GRACEFUL.store(true, Ordering::SeqCst);
}

/// Whether a stop was requested in [`graceful`] mode.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst) || cancelled()
}

/// Cancels running work as a signal would: sets the flag and stops every child.
pub fn cancel() {
    CANCELLED.store(true, Ordering::SeqCst);
    terminate_all();
}

fn terminate_all() {
    let pids: Vec<u32> = children()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .copied()
        .collect();
    for pid in pids {
        terminate(pid);
    }
}

/// The second signal: no more waiting for anything.
fn abandon(code: u8) -> ! {
    let pids: Vec<u32> = children()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .copied()
        .collect();
    for pid in pids {
        kill_group(pid, libc::SIGKILL);
    }
    // A direct exit: the user asked to stop now, and the work may stay blocked
    // for a long time (an upload, a network read, a lock wait) before it
    // returns a result for `main` to map. The code is the one `main` took from
    // that mapping for an interruption.
    std::process::exit(i32::from(code));
}

/// Records a child process so that a signal stops it.
pub fn track(pid: u32) {
    children()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(pid);
    run_track(pid);
    if cancelled() {
        terminate(pid);
    }
}

/// Forgets a child that has been waited for.
pub fn untrack(pid: u32) {
    children()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&pid);
    run_untrack(pid);
}

fn terminate(pid: u32) {
    kill_group(pid, libc::SIGTERM);
}

/// Sends `sig` to the process group led by `pid` (every child runs in its own
/// group, so helpers a tool started are stopped with it).
pub fn kill_group(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(-pid, sig);
        }
    }
}

/// Installs the handler thread. Call once, early in `main`; a second signal
/// exits with `interrupted`, the exit code of an interruption.
pub fn install(interrupted: u8) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if GRACEFUL.load(Ordering::SeqCst) && !STOPPING.swap(true, Ordering::SeqCst) {
                    tracing::warn!(
                        signal,
                        "signal received: no new runs; running jobs may finish"
                    );
                    continue;
                }
                if CANCELLED.swap(true, Ordering::SeqCst) {
                    tracing::warn!(signal, "second signal: killing the tools and exiting");
                    abandon(interrupted);
                }
                tracing::warn!(signal, "signal received, stopping");
                terminate_all();
            }
        })?;
    Ok(())
}

// ---------------------------------------------------------------- one run

/// Cancels one run without touching the others that share the process (the
/// jobs `schedule run` runs in threads). While a thread has entered a `Run`,
/// [`cancelled`] on that thread also reports the run's cancellation, and the
/// children it [`track`]s are registered with the run, so [`Run::cancel`]
/// (from any thread) stops them.
#[derive(Debug, Default)]
pub struct Run {
    cancelled: AtomicBool,
    children: Mutex<BTreeSet<u32>>,
}

thread_local! {
    static CURRENT: std::cell::RefCell<Option<std::sync::Arc<Run>>> =
        const { std::cell::RefCell::new(None) };
}

impl Run {
    /// A run not cancelled yet.
    pub fn new() -> std::sync::Arc<Run> {
        std::sync::Arc::new(Run::default())
    }

    /// Cancels the run: sets its flag and stops the children started under it.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let pids: Vec<u32> = self
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        for pid in pids {
            terminate(pid);
        }
    }

    /// Whether [`Run::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Makes `run` this thread's run until the returned guard drops.
    pub fn enter(run: &std::sync::Arc<Run>) -> Entered {
        let previous = CURRENT.with(|c| c.replace(Some(run.clone())));
        Entered { previous }
    }
}

/// This thread's run, for as long as it lives (see [`Run::enter`]).
#[must_use = "the run is left when this drops"]
pub struct Entered {
    previous: Option<std::sync::Arc<Run>>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|c| c.replace(previous));
    }
}

fn with_run<T>(f: impl FnOnce(&Run) -> T) -> Option<T> {
    CURRENT
        .try_with(|c| c.borrow().as_deref().map(f))
        .ok()
        .flatten()
}

/// This thread's run, if it entered one.
pub fn current_run() -> Option<std::sync::Arc<Run>> {
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

fn run_cancelled() -> bool {
    with_run(Run::is_cancelled).unwrap_or(false)
}

fn run_track(pid: u32) {
    with_run(|run| {
        run.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid);
    });
}

fn run_untrack(pid: u32) {
    with_run(|run| {
        run.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_cancelled_on_its_own_thread_only() {
        let run = Run::new();
        let other = std::thread::spawn({
            let run = run.clone();
            move || {
                let _in = Run::enter(&Run::new());
                while !run.is_cancelled() {
                    std::thread::yield_now();
                }
                cancelled()
            }
        });
        let entered = Run::enter(&run);
        assert!(!cancelled());
        run.cancel();
        assert!(cancelled(), "the run's own thread sees it");
        assert!(!other.join().unwrap(), "another run does not");
        drop(entered);
        assert!(!cancelled(), "nor does this thread once it left the run");
        assert!(!CANCELLED.load(Ordering::SeqCst));
    }
}
