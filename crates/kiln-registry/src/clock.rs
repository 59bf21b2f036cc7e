//! Time as the registry stores it: RFC 3339 UTC with milliseconds, fixed width, so text order is
//! time order in any SQL engine. The clock is injectable so scheduled revocations can be tested.

use std::sync::Arc;

pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    })
}

pub use kiln_spec::time::{format_millis, parse_millis};
