//! Build progress on stderr: one line per stage start and end, and while a stage runs, its
//! elapsed time (redrawn in place on a terminal, a line every 30 s in logs).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln_build::{Progress, StageEvent};

#[derive(Debug)]
pub struct Terminal {
    tty: bool,
    quiet: bool,
    ticker: Mutex<Option<Ticker>>,
}

#[derive(Debug)]
struct Ticker {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<()>,
}

impl Terminal {
    pub fn new(quiet: bool) -> Self {
        Terminal {
            tty: std::io::stderr().is_terminal(),
            quiet,
            ticker: Mutex::new(None),
        }
    }

    fn stop_ticker(&self) {
        let t = self.ticker.lock().ok().and_then(|mut g| g.take());
        if let Some(t) = t {
            t.stop.store(true, Ordering::SeqCst);
            let _ = t.handle.join();
            if self.tty {
                eprint_flush("\r\x1b[2K");
            }
        }
    }

    fn start_ticker(&self, label: String) {
        let stop = Arc::new(AtomicBool::new(false));
        let tty = self.tty;
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let start = Instant::now();
            let mut last_line = 0;
            while !flag.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(200));
                let secs = start.elapsed().as_secs();
                if tty {
                    eprint_flush(&format!("\r\x1b[2K    {label} … {secs}s"));
                } else if secs >= last_line + 30 {
                    last_line = secs;
                    eprint_flush(&format!("    {label} … still running ({secs}s)\n"));
                }
            }
        });
        if let Ok(mut g) = self.ticker.lock() {
            *g = Some(Ticker { stop, handle });
        }
    }
}

#[allow(clippy::print_stderr)]
fn eprint_flush(s: &str) {
    eprint!("{s}");
    let _ = std::io::stderr().flush();
}

impl Progress for Terminal {
    fn event(&self, image: &str, stage: &str, event: StageEvent<'_>) {
        if self.quiet {
            return;
        }
        match event {
            StageEvent::Start(detail) => {
                self.stop_ticker();
                eprint_flush(&format!("==> {image}: {stage}: {detail}\n"));
                self.start_ticker(format!("{image}: {stage}"));
            }
            StageEvent::Cached => eprint_flush(&format!("==> {image}: {stage}: cached\n")),
            StageEvent::Done(d) => {
                self.stop_ticker();
                eprint_flush(&format!("    {stage} done in {:.1}s\n", d.as_secs_f64()));
            }
            StageEvent::Failed => {
                self.stop_ticker();
                eprint_flush(&format!("    {stage} FAILED\n"));
            }
            StageEvent::Note(n) => {
                if self.tty {
                    eprint_flush("\r\x1b[2K");
                }
                eprint_flush(&format!("    {n}\n"));
            }
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.stop_ticker();
    }
}
