//! One QEMU virtual machine, owned by a guard.
//!
//! The VM boots a qcow2 overlay over the image (the image stays bit-identical), with its own OVMF
//! variable store, agent socket, serial log and pidfile in a private temporary directory. Dropping
//! the [`Vm`] kills QEMU and removes the directory, on every exit path; QEMU also gets SIGKILL if
//! the process that started it dies, so not even a killed Kiln leaves a VM running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::accel::Accel;
use crate::error::TestError;
use crate::qga::Agent;

const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootFirmware {
    /// OVMF.
    Uefi,
    /// SeaBIOS.
    Bios,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Raw,
    Qcow2,
    /// VHD (qemu calls it vpc).
    Vpc,
    Vmdk,
}

impl DiskFormat {
    fn qemu_name(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Vpc => "vpc",
            DiskFormat::Vmdk => "vmdk",
        }
    }
}

#[derive(Debug, Clone)]
pub struct VmConfig {
    pub disk: PathBuf,
    pub format: DiskFormat,
    pub firmware: BootFirmware,
    pub memory_mib: u32,
    pub cpus: u32,
    /// How long to wait for the guest agent. Under TCG a boot takes 20–40 s; allow ≥ 120 s.
    pub boot_timeout: Duration,
    /// Keep a copy of the serial console log here after the VM is gone.
    pub keep_serial_log: Option<PathBuf>,
    /// Where the VM's private directory is created (default: the system temp dir).
    pub work_dir: Option<PathBuf>,
}

impl VmConfig {
    pub fn new(disk: impl Into<PathBuf>, format: DiskFormat, firmware: BootFirmware) -> Self {
        VmConfig {
            disk: disk.into(),
            format,
            firmware,
            memory_mib: 1024,
            cpus: 2,
            boot_timeout: Duration::from_secs(180),
            keep_serial_log: None,
            work_dir: None,
        }
    }
}

#[derive(Debug)]
pub struct Vm {
    child: Child,
    dir: tempfile::TempDir,
    accel: Accel,
    started: Instant,
    cfg: VmConfig,
}

impl Vm {
    pub fn start(cfg: &VmConfig) -> Result<Vm, TestError> {
        let disk = std::fs::canonicalize(&cfg.disk)
            .map_err(TestError::io(format!("opening {}", cfg.disk.display())))?;
        let dir = tempfile::Builder::new()
            .prefix("kiln-vm-")
            .tempdir_in(cfg.work_dir.clone().unwrap_or_else(std::env::temp_dir))
            .map_err(TestError::io("creating the VM directory"))?;
        let overlay = dir.path().join("overlay.qcow2");
        let out = Command::new("qemu-img")
            .args([
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                cfg.format.qemu_name(),
                "-b",
            ])
            .arg(&disk)
            .arg(&overlay)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| TestError::Spawn {
                cmd: "qemu-img create".into(),
                source: e,
            })?;
        if !out.status.success() {
            return Err(TestError::Agent(format!(
                "qemu-img could not create an overlay over {}: {}",
                disk.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let accel = Accel::detect();
        let sock = dir.path().join("qga.sock");
        let mut args: Vec<String> = vec![
            "-machine".into(),
            "q35".into(),
            "-smp".into(),
            cfg.cpus.to_string(),
            "-m".into(),
            cfg.memory_mib.to_string(),
            "-nodefaults".into(),
            "-display".into(),
            "none".into(),
            // A guest that panics and reboots ends the VM instead of looping.
            "-no-reboot".into(),
        ];
        args.extend(accel.qemu_args());
        if cfg.firmware == BootFirmware::Uefi {
            if !Path::new(OVMF_CODE).exists() {
                return Err(TestError::Missing("OVMF firmware".into(), "ovmf".into()));
            }
            let vars = dir.path().join("vars.fd");
            std::fs::copy(OVMF_VARS, &vars)
                .map_err(TestError::io("copying the OVMF variable store"))?;
            args.push("-drive".into());
            args.push(format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"));
            args.push("-drive".into());
            args.push(format!("if=pflash,format=raw,file={}", vars.display()));
        }
        args.extend([
            "-drive".into(),
            format!(
                "file={},if=virtio,format=qcow2,discard=unmap",
                overlay.display()
            ),
            "-device".into(),
            "virtio-serial".into(),
            "-chardev".into(),
            format!("socket,path={},server=on,wait=off,id=qga0", sock.display()),
            "-device".into(),
            "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0".into(),
            "-serial".into(),
            format!("file:{}", dir.path().join("serial.log").display()),
            "-pidfile".into(),
            dir.path().join("qemu.pid").display().to_string(),
        ]);
        let stderr = std::fs::File::create(dir.path().join("qemu.stderr"))
            .map_err(TestError::io("creating the QEMU log"))?;
        tracing::info!(accel = %accel, disk = %disk.display(), "starting QEMU");
        tracing::debug!(args = %args.join(" "), "qemu-system-x86_64");
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        die_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                TestError::Missing("qemu-system-x86_64".into(), "qemu-system-x86".into())
            }
            _ => TestError::Spawn {
                cmd: "qemu-system-x86_64".into(),
                source: e,
            },
        })?;
        Ok(Vm {
            child,
            dir,
            accel,
            started: Instant::now(),
            cfg: cfg.clone(),
        })
    }

    pub fn accel(&self) -> Accel {
        self.accel
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn agent_socket(&self) -> PathBuf {
        self.dir.path().join("qga.sock")
    }

    /// The last `n` lines the guest printed on its serial console.
    pub fn serial_tail(&self, n: usize) -> String {
        let text = std::fs::read(self.dir.path().join("serial.log")).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Waits until the guest agent answers, or the boot timeout passes, or QEMU exits.
    pub fn wait_for_agent(&mut self) -> Result<Agent, TestError> {
        let deadline = self.started + self.cfg.boot_timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                let stderr = std::fs::read_to_string(self.dir.path().join("qemu.stderr"))
                    .unwrap_or_default();
                return Err(TestError::QemuExited {
                    status: st.to_string(),
                    serial_tail: self.serial_tail(30),
                    stderr: stderr.trim().to_string(),
                });
            }
            if Instant::now() >= deadline {
                return Err(TestError::BootTimeout {
                    secs: self.cfg.boot_timeout.as_secs(),
                    accel: self.accel.to_string(),
                    serial_tail: self.serial_tail(30),
                });
            }
            if let Some(a) = Agent::try_connect(&self.agent_socket(), Duration::from_secs(3))? {
                tracing::info!(secs = self.elapsed().as_secs_f64(), "guest agent answered");
                return Ok(a);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(keep) = &self.cfg.keep_serial_log {
            let _ = std::fs::copy(self.dir.path().join("serial.log"), keep);
        }
    }
}

/// QEMU receives SIGKILL when the thread that spawned it exits (a killed Kiln included).
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls prctl(PR_SET_PDEATHSIG),
    // which is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
}
