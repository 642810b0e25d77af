//! The async runtime behind the cloud backends.
//!
//! dbkeep's pipeline is synchronous (plain threads, bounded buffers); the
//! cloud SDKs are async. Each backend runs its requests on this one shared
//! multi-threaded runtime and the pipeline thread waits for them with
//! [`block_on`], which is also where backpressure comes from.

use std::future::Future;
use std::sync::OnceLock;

/// The shared runtime (two I/O threads).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("dbkeep-io")
            .enable_all()
            .build()
            .expect("cannot start the I/O runtime")
    })
}

/// Runs a future to completion from synchronous code.
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}
