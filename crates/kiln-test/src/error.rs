use thiserror::Error;

#[derive(Debug, Error)]
pub enum TestError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start QEMU (`{cmd}`): {source}")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the guest agent did not answer within {secs}s ({accel}); last serial console lines:\n{serial_tail}"
    )]
    BootTimeout {
        secs: u64,
        accel: String,
        serial_tail: String,
    },
    #[error(
        "QEMU exited during boot ({status}); last serial console lines:\n{serial_tail}\nQEMU said:\n{stderr}"
    )]
    QemuExited {
        status: String,
        serial_tail: String,
        stderr: String,
    },
    #[error("guest agent: {0}")]
    Agent(String),
    #[error("no {0} on this machine (install the `{1}` package)")]
    Missing(String, String),
}

impl TestError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestError {
        let what = what.into();
        move |source| TestError::Io { what, source }
    }
}
