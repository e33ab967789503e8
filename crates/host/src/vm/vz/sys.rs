//! The Objective-C half of the macOS back-end: turns a [`Plan`] into a
//! `VZVirtualMachineConfiguration`, runs the VM on a serial dispatch queue of its own, and
//! reaches guest ports through its `VZVirtioSocketDevice`.
//!
//! Threading: a `VZVirtualMachine` must only be used on the queue it was made with; its
//! completion handlers and delegate calls come on that queue too. Every call below is made
//! inside `queue.exec_*`, and results go back to async code through channels. [`OnQueue`]
//! marks the objects that only that queue touches.

use std::future::Future;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_vsock::{BoxIo, Connector};
use block2::RcBlock;
use dispatch2::{DispatchQueue, DispatchRetained};
use futures::future::BoxFuture;
use objc2::rc::Retained;
use objc2::runtime::ProtocolObject;
use objc2::{define_class, msg_send, AnyThread, DefinedClass};
use objc2_foundation::{NSArray, NSError, NSObject, NSObjectProtocol, NSString, NSURL};
use objc2_virtualization::{
    VZBootLoader, VZDirectoryShare, VZDirectorySharingDeviceConfiguration,
    VZDiskImageStorageDeviceAttachment, VZEntropyDeviceConfiguration, VZFileSerialPortAttachment,
    VZLinuxBootLoader, VZLinuxRosettaAvailability, VZLinuxRosettaDirectoryShare,
    VZMemoryBalloonDeviceConfiguration, VZNATNetworkDeviceAttachment, VZNetworkDeviceAttachment,
    VZNetworkDeviceConfiguration, VZSerialPortAttachment, VZSerialPortConfiguration,
    VZSharedDirectory, VZSingleDirectoryShare, VZSocketDeviceConfiguration,
    VZStorageDeviceAttachment, VZStorageDeviceConfiguration, VZVirtioBlockDeviceConfiguration,
    VZVirtioConsoleDeviceSerialPortConfiguration, VZVirtioEntropyDeviceConfiguration,
    VZVirtioFileSystemDeviceConfiguration, VZVirtioNetworkDeviceConfiguration,
    VZVirtioSocketConnection, VZVirtioSocketDevice, VZVirtioSocketDeviceConfiguration,
    VZVirtioTraditionalMemoryBalloonDeviceConfiguration, VZVirtualMachine,
    VZVirtualMachineConfiguration, VZVirtualMachineDelegate,
};
use tokio::sync::{oneshot, watch};

use super::{Limits, Plan, Rosetta, ROSETTA_TAG};
use crate::error::{HostError, Result};
use crate::vm::{Hypervisor, Shares, VmHandle, VmSpec};

/// How long a guest port may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a forced stop may take to be reported.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// An Objective-C object that only the VM's serial queue uses (see the module doc).
struct OnQueue<T>(T);
// SAFETY: the wrapped object is only dereferenced inside closures run on the VM's serial
// queue, one at a time; moving the pointer between threads does not touch the object.
unsafe impl<T> Send for OnQueue<T> {}
// SAFETY: as above, shared references are only used on that queue.
unsafe impl<T> Sync for OnQueue<T> {}

/// Why the VM stopped, once it has.
type Stopped = watch::Sender<Option<String>>;

fn vz_error(what: &str, e: &NSError) -> HostError {
    HostError::Command {
        what: what.into(),
        detail: e.localizedDescription().to_string(),
    }
}

fn file_url(p: &Path) -> Result<Retained<NSURL>> {
    NSURL::from_file_path(p).ok_or_else(|| HostError::Command {
        what: "Virtualization.framework".into(),
        detail: format!("{} is not a usable file path", p.display()),
    })
}

fn dir_url(p: &Path) -> Result<Retained<NSURL>> {
    NSURL::from_directory_path(p).ok_or_else(|| HostError::Command {
        what: "Virtualization.framework".into(),
        detail: format!("{} is not a usable folder path", p.display()),
    })
}

/// What this Mac allows a VM.
fn limits() -> Limits {
    // SAFETY: class methods without arguments, callable from any thread.
    unsafe {
        Limits {
            cpus: (
                u32::try_from(VZVirtualMachineConfiguration::minimumAllowedCPUCount()).unwrap_or(1),
                u32::try_from(VZVirtualMachineConfiguration::maximumAllowedCPUCount())
                    .unwrap_or(u32::MAX),
            ),
            memory_bytes: (
                VZVirtualMachineConfiguration::minimumAllowedMemorySize(),
                VZVirtualMachineConfiguration::maximumAllowedMemorySize(),
            ),
        }
    }
}

/// Whether Rosetta can be shared with the guest (Apple silicon, macOS 13+, installed).
fn rosetta() -> Rosetta {
    if cfg!(not(target_arch = "aarch64"))
        || objc2::runtime::AnyClass::get(c"VZLinuxRosettaDirectoryShare").is_none()
    {
        return Rosetta::Unsupported;
    }
    // SAFETY: the class exists (checked above); a class method without arguments.
    match unsafe { VZLinuxRosettaDirectoryShare::availability() } {
        VZLinuxRosettaAvailability::Installed => Rosetta::Installed,
        VZLinuxRosettaAvailability::NotInstalled => Rosetta::NotInstalled,
        _ => Rosetta::Unsupported,
    }
}

/// The VZ configuration for `plan`, validated.
fn configuration(plan: &Plan) -> Result<Retained<VZVirtualMachineConfiguration>> {
    // SAFETY: plain object construction and setters on objects this function owns; the
    // framework copies the configuration when the VM is made.
    unsafe {
        let boot = VZLinuxBootLoader::initWithKernelURL(
            VZLinuxBootLoader::alloc(),
            &*file_url(&plan.kernel)?,
        );
        boot.setInitialRamdiskURL(Some(&*file_url(&plan.initrd)?));
        boot.setCommandLine(&NSString::from_str(&plan.cmdline));

        let config = VZVirtualMachineConfiguration::new();
        let boot: &VZBootLoader = &boot;
        config.setBootLoader(Some(boot));
        config.setCPUCount(plan.cpus as usize);
        config.setMemorySize(plan.memory_bytes);

        let mut disks: Vec<Retained<VZStorageDeviceConfiguration>> = Vec::new();
        for d in &plan.disks {
            let attachment = VZDiskImageStorageDeviceAttachment::initWithURL_readOnly_error(
                VZDiskImageStorageDeviceAttachment::alloc(),
                &*file_url(&d.path)?,
                d.read_only,
            )
            .map_err(|e| vz_error(&format!("opening the disk {}", d.path.display()), &e))?;
            let attachment: &VZStorageDeviceAttachment = &attachment;
            let dev = VZVirtioBlockDeviceConfiguration::initWithAttachment(
                VZVirtioBlockDeviceConfiguration::alloc(),
                attachment,
            );
            dev.setBlockDeviceIdentifier(&NSString::from_str(d.id));
            disks.push(Retained::into_super(dev));
        }
        config.setStorageDevices(&NSArray::from_retained_slice(&disks));

        let net = VZVirtioNetworkDeviceConfiguration::new();
        let nat = VZNATNetworkDeviceAttachment::new();
        let nat: &VZNetworkDeviceAttachment = &nat;
        net.setAttachment(Some(nat));
        let nets: [Retained<VZNetworkDeviceConfiguration>; 1] = [Retained::into_super(net)];
        config.setNetworkDevices(&NSArray::from_retained_slice(&nets));

        let entropy: [Retained<VZEntropyDeviceConfiguration>; 1] = [Retained::into_super(
            VZVirtioEntropyDeviceConfiguration::new(),
        )];
        config.setEntropyDevices(&NSArray::from_retained_slice(&entropy));

        if plan.balloon {
            let balloon: [Retained<VZMemoryBalloonDeviceConfiguration>; 1] =
                [Retained::into_super(
                    VZVirtioTraditionalMemoryBalloonDeviceConfiguration::new(),
                )];
            config.setMemoryBalloonDevices(&NSArray::from_retained_slice(&balloon));
        }

        let sockets: [Retained<VZSocketDeviceConfiguration>; 1] = [Retained::into_super(
            VZVirtioSocketDeviceConfiguration::new(),
        )];
        config.setSocketDevices(&NSArray::from_retained_slice(&sockets));

        // The console (hvc0) goes to the console log, as QEMU's serial does.
        let log = VZFileSerialPortAttachment::initWithURL_append_error(
            VZFileSerialPortAttachment::alloc(),
            &*file_url(&plan.console_log)?,
            false,
        )
        .map_err(|e| vz_error("opening the console log", &e))?;
        let serial = VZVirtioConsoleDeviceSerialPortConfiguration::new();
        let log: &VZSerialPortAttachment = &log;
        serial.setAttachment(Some(log));
        let serials: [Retained<VZSerialPortConfiguration>; 1] = [Retained::into_super(serial)];
        config.setSerialPorts(&NSArray::from_retained_slice(&serials));

        let mut shares: Vec<Retained<VZDirectorySharingDeviceConfiguration>> = Vec::new();
        for s in &plan.shares {
            let dir = VZSharedDirectory::initWithURL_readOnly(
                VZSharedDirectory::alloc(),
                &*dir_url(&s.dir)?,
                s.read_only,
            );
            let share =
                VZSingleDirectoryShare::initWithDirectory(VZSingleDirectoryShare::alloc(), &dir);
            let share: &VZDirectoryShare = &share;
            shares.push(virtiofs(&s.tag, share));
        }
        if plan.rosetta {
            match VZLinuxRosettaDirectoryShare::initWithError(VZLinuxRosettaDirectoryShare::alloc())
            {
                Ok(r) => {
                    let r: &VZDirectoryShare = &r;
                    shares.push(virtiofs(ROSETTA_TAG, r));
                }
                Err(e) => tracing::warn!(
                    error = %e.localizedDescription(),
                    "Rosetta is not shared with the VM"
                ),
            }
        }
        config.setDirectorySharingDevices(&NSArray::from_retained_slice(&shares));

        config
            .validateWithError()
            .map_err(|e| vz_error("checking the VM configuration", &e))?;
        Ok(config)
    }
}

/// A virtiofs device with `tag` serving `share`.
fn virtiofs(
    tag: &str,
    share: &VZDirectoryShare,
) -> Retained<VZDirectorySharingDeviceConfiguration> {
    // SAFETY: construction and a setter on an object this function owns.
    unsafe {
        let dev = VZVirtioFileSystemDeviceConfiguration::initWithTag(
            VZVirtioFileSystemDeviceConfiguration::alloc(),
            &NSString::from_str(tag),
        );
        dev.setShare(Some(share));
        Retained::into_super(dev)
    }
}

/// Ivars of [`Delegate`].
struct DelegateIvars {
    stopped: Arc<Stopped>,
}

define_class!(
    // SAFETY: NSObject has no subclassing requirements; Delegate does not implement Drop.
    #[unsafe(super(NSObject))]
    #[name = "BerthVmDelegate"]
    #[ivars = DelegateIvars]
    struct Delegate;

    unsafe impl NSObjectProtocol for Delegate {}

    unsafe impl VZVirtualMachineDelegate for Delegate {
        #[unsafe(method(guestDidStopVirtualMachine:))]
        fn guest_did_stop(&self, _vm: &VZVirtualMachine) {
            self.ivars()
                .stopped
                .send_replace(Some("the guest powered off".into()));
        }

        #[unsafe(method(virtualMachine:didStopWithError:))]
        fn did_stop_with_error(&self, _vm: &VZVirtualMachine, error: &NSError) {
            self.ivars().stopped.send_replace(Some(format!(
                "the VM stopped with an error: {}",
                error.localizedDescription()
            )));
        }
    }
);

impl Delegate {
    fn new(stopped: Arc<Stopped>) -> Retained<Self> {
        let this = Self::alloc().set_ivars(DelegateIvars { stopped });
        // SAFETY: NSObject's designated initializer.
        unsafe { msg_send![super(this), init] }
    }
}

/// One running VM.
struct Machine {
    queue: DispatchRetained<DispatchQueue>,
    vm: Arc<OnQueue<Retained<VZVirtualMachine>>>,
    /// Kept alive here: the VM holds its delegate weakly.
    delegate: Arc<OnQueue<Retained<Delegate>>>,
    stopped: Arc<Stopped>,
}

impl Drop for Machine {
    fn drop(&mut self) {
        // The last references are released on the queue, where the VM lives.
        let vm = self.vm.clone();
        let delegate = self.delegate.clone();
        self.queue.exec_async(move || {
            drop(vm);
            drop(delegate);
        });
    }
}

impl Machine {
    /// Makes the VM for `config` on `queue` and starts it; the result comes back when the
    /// framework has accepted or refused the start.
    async fn start(
        queue: DispatchRetained<DispatchQueue>,
        config: Retained<VZVirtualMachineConfiguration>,
    ) -> Result<Arc<Self>> {
        let (stopped_tx, _) = watch::channel(None);
        let stopped = Arc::new(stopped_tx);
        let (made_tx, made_rx) = oneshot::channel();
        let (started_tx, started_rx) = oneshot::channel::<std::result::Result<(), String>>();
        let config = OnQueue(config);
        let q = queue.clone();
        let s = stopped.clone();
        queue.exec_async(move || {
            let config = config;
            let started = Mutex::new(Some(started_tx));
            let done = RcBlock::new(move |err: *mut NSError| {
                // SAFETY: the framework passes nil or a valid NSError.
                let r = match unsafe { err.as_ref() } {
                    None => Ok(()),
                    Some(e) => Err(e.localizedDescription().to_string()),
                };
                if let Some(tx) = started.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    let _ = tx.send(r);
                }
            });
            let delegate = Delegate::new(s);
            // SAFETY: we are on `q`, the queue the VM is made with and will be used on; the
            // block is copied by the framework.
            let vm = unsafe {
                let vm = VZVirtualMachine::initWithConfiguration_queue(
                    VZVirtualMachine::alloc(),
                    &config.0,
                    &q,
                );
                vm.setDelegate(Some(ProtocolObject::from_ref(&*delegate)));
                vm.startWithCompletionHandler(&done);
                vm
            };
            let _ = made_tx.send((OnQueue(vm), OnQueue(delegate)));
        });
        let (vm, delegate) = made_rx.await.map_err(|_| HostError::Command {
            what: "starting the VM".into(),
            detail: "the VM's queue dropped the request".into(),
        })?;
        let machine = Arc::new(Self {
            queue,
            vm: Arc::new(vm),
            delegate: Arc::new(delegate),
            stopped,
        });
        match started_rx.await {
            Ok(Ok(())) => Ok(machine),
            Ok(Err(detail)) => Err(HostError::Command {
                what: "starting the VM".into(),
                detail,
            }),
            Err(_) => Err(HostError::Command {
                what: "starting the VM".into(),
                detail: "Virtualization.framework never answered".into(),
            }),
        }
    }

    /// A new connection to guest vsock `port`, as a stream this process owns.
    async fn connect(&self, port: u32) -> io::Result<BoxIo> {
        let (tx, rx) = oneshot::channel::<io::Result<OwnedFd>>();
        let vm = self.vm.clone();
        self.queue.exec_async(move || {
            let tx = Mutex::new(Some(tx));
            let reply = move |r: io::Result<OwnedFd>| {
                if let Some(tx) = tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    let _ = tx.send(r);
                }
            };
            // SAFETY: on the VM's queue.
            let device = unsafe { vm.0.socketDevices() }
                .firstObject()
                .and_then(|d| d.downcast::<VZVirtioSocketDevice>().ok());
            let Some(device) = device else {
                reply(Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "the VM has no virtio socket device",
                )));
                return;
            };
            let done = RcBlock::new(
                move |conn: *mut VZVirtioSocketConnection, err: *mut NSError| {
                    // SAFETY: the framework passes nil or valid objects.
                    let r = match (unsafe { conn.as_ref() }, unsafe { err.as_ref() }) {
                        // The connection closes its descriptor when released: keep a dup.
                        // SAFETY: the descriptor is open while `c` lives (this call).
                        (Some(c), _) => unsafe { BorrowedFd::borrow_raw(c.fileDescriptor()) }
                            .try_clone_to_owned(),
                        (None, e) => Err(io::Error::new(
                            io::ErrorKind::ConnectionRefused,
                            e.map(|e| e.localizedDescription().to_string())
                                .unwrap_or_else(|| format!("guest port {port} refused")),
                        )),
                    };
                    reply(r);
                },
            );
            // SAFETY: on the VM's queue; the block is copied by the framework.
            unsafe { device.connectToPort_completionHandler(port, &done) };
        });
        let fd = tokio::time::timeout(CONNECT_TIMEOUT, rx)
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("guest port {port} did not answer"),
                )
            })?
            .map_err(|_| io::Error::other("the VM's queue dropped the request"))??;
        let s = std::os::unix::net::UnixStream::from(fd);
        s.set_nonblocking(true)?;
        Ok(Box::new(tokio::net::UnixStream::from_std(s)?))
    }

    /// Runs `call` on the VM's queue with a completion handler (pause, resume) and resolves
    /// with what the handler reported.
    async fn with_completion(
        &self,
        what: &str,
        call: impl FnOnce(&VZVirtualMachine, &RcBlock<dyn Fn(*mut NSError)>) + Send + 'static,
    ) -> Result<()> {
        let (tx, rx) = oneshot::channel::<std::result::Result<(), String>>();
        let vm = self.vm.clone();
        self.queue.exec_async(move || {
            let tx = Mutex::new(Some(tx));
            let done: RcBlock<dyn Fn(*mut NSError)> = RcBlock::new(move |err: *mut NSError| {
                // SAFETY: the framework passes nil or a valid NSError.
                let r = match unsafe { err.as_ref() } {
                    None => Ok(()),
                    Some(e) => Err(e.localizedDescription().to_string()),
                };
                if let Some(tx) = tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    let _ = tx.send(r);
                }
            });
            call(&vm.0, &done);
        });
        let failed = |detail: String| HostError::Command {
            what: what.to_string(),
            detail,
        };
        match rx.await {
            Ok(r) => r.map_err(failed),
            Err(_) => Err(failed("the VM's queue dropped the request".into())),
        }
    }

    /// Runs `f` on the VM's queue and returns its result.
    async fn on_queue<R: Send + 'static>(
        &self,
        f: impl FnOnce(&VZVirtualMachine) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let vm = self.vm.clone();
        self.queue.exec_async(move || {
            let _ = tx.send(f(&vm.0));
        });
        rx.await.ok()
    }
}

/// The macOS back-end.
pub struct Vz {
    queue: DispatchRetained<DispatchQueue>,
    /// The VM of the current boot: where [`VzConnector`] connects.
    current: Arc<Mutex<Option<Arc<Machine>>>>,
}

impl std::fmt::Debug for Vz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vz")
    }
}

impl Vz {
    pub fn new() -> Result<Self> {
        // SAFETY: a class method without arguments.
        if !unsafe { VZVirtualMachine::isSupported() } {
            return Err(HostError::NotSupported(
                "Virtualization.framework on this Mac (no hardware virtualization)",
            ));
        }
        Ok(Self {
            queue: DispatchQueue::new("org.berth.vm", None),
            current: Arc::default(),
        })
    }
}

impl Hypervisor for Vz {
    fn name(&self) -> &'static str {
        "vz"
    }

    fn start(&self, spec: &VmSpec) -> Result<Box<dyn VmHandle>> {
        for f in [&spec.kernel, &spec.initrd, &spec.rootfs] {
            if !f.exists() {
                return Err(HostError::MissingImage(f.clone()));
            }
        }
        let plan = super::plan(spec, limits(), rosetta()).map_err(|e| HostError::Command {
            what: "planning the VM".into(),
            detail: e.to_string(),
        })?;
        let config = configuration(&plan)?;
        // `start` is synchronous in the trait; the framework answers on its queue, never on
        // this thread, so waiting here cannot deadlock.
        let machine = futures::executor::block_on(Machine::start(self.queue.clone(), config))?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(machine.clone());
        tracing::info!(
            cpus = plan.cpus,
            memory = plan.memory_bytes,
            rosetta = plan.rosetta,
            "VM started (Virtualization.framework)"
        );
        let stopped = machine.stopped.subscribe();
        Ok(Box::new(VzVm {
            machine,
            stopped,
            current: self.current.clone(),
        }))
    }

    fn shares(&self) -> Shares {
        Shares::Builtin
    }

    fn connector(&self) -> Option<Arc<dyn Connector>> {
        Some(Arc::new(VzConnector {
            current: self.current.clone(),
        }))
    }

    fn prepare_data_disk<'a>(
        &'a self,
        qcow2: &'a Path,
        gib: u32,
    ) -> BoxFuture<'a, Result<std::path::PathBuf>> {
        Box::pin(crate::disk::raw::ensure(qcow2, gib))
    }
}

/// Reaches guest ports through the current VM's `VZVirtioSocketDevice`.
#[derive(Clone)]
pub struct VzConnector {
    current: Arc<Mutex<Option<Arc<Machine>>>>,
}

impl std::fmt::Debug for VzConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VzConnector")
    }
}

impl Connector for VzConnector {
    fn connect(&self, port: u32) -> Pin<Box<dyn Future<Output = io::Result<BoxIo>> + Send + '_>> {
        let machine = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Box::pin(async move {
            match machine {
                Some(m) => m.connect(port).await,
                None => Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "the VM is not running",
                )),
            }
        })
    }
}

/// A running VZ VM as the supervisor sees it: no process of its own (it runs in ours).
struct VzVm {
    machine: Arc<Machine>,
    stopped: watch::Receiver<Option<String>>,
    current: Arc<Mutex<Option<Arc<Machine>>>>,
}

impl Drop for VzVm {
    fn drop(&mut self) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if cur.as_ref().is_some_and(|m| Arc::ptr_eq(m, &self.machine)) {
            *cur = None;
        }
    }
}

/// Pauses and resumes the VM's CPUs (auto-pause).
struct VzPauser(Arc<Machine>);

impl crate::vm::Pauser for VzPauser {
    fn pause(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            // SAFETY: run on the VM's queue by `on_queue`.
            if self.0.on_queue(|vm| unsafe { vm.canPause() }).await != Some(true) {
                return Err(HostError::Command {
                    what: "pausing the VM".into(),
                    detail: "Virtualization.framework says it cannot be paused now".into(),
                });
            }
            self.0
                .with_completion("pausing the VM", |vm, done| {
                    // SAFETY: run on the VM's queue by `with_completion`; the block is copied
                    // by the framework, which calls it once.
                    unsafe { vm.pauseWithCompletionHandler(done) }
                })
                .await
        })
    }

    fn resume(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            // SAFETY: run on the VM's queue by `on_queue`.
            if self.0.on_queue(|vm| unsafe { vm.canResume() }).await != Some(true) {
                // Not paused (or stopped): nothing to resume.
                return Ok(());
            }
            self.0
                .with_completion("resuming the VM", |vm, done| {
                    // SAFETY: as in `pause`.
                    unsafe { vm.resumeWithCompletionHandler(done) }
                })
                .await
        })
    }
}

impl VmHandle for VzVm {
    fn pid(&self) -> Option<u32> {
        None
    }

    fn pauser(&self) -> Option<Arc<dyn crate::vm::Pauser>> {
        Some(Arc::new(VzPauser(self.machine.clone())))
    }

    fn wait(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Ok(why) = self.stopped.wait_for(Option::is_some).await {
                tracing::info!(reason = why.as_deref().unwrap_or_default(), "VM stopped");
            }
        })
    }

    fn power_button(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let r = self
                .machine
                .on_queue(|vm| {
                    // SAFETY: run on the VM's queue by `on_queue`.
                    unsafe { vm.requestStopWithError() }
                        .map_err(|e| e.localizedDescription().to_string())
                })
                .await;
            match r {
                Some(Ok(())) => Ok(()),
                Some(Err(detail)) => Err(HostError::Command {
                    what: "asking the guest to stop".into(),
                    detail,
                }),
                None => Err(HostError::Command {
                    what: "asking the guest to stop".into(),
                    detail: "the VM's queue dropped the request".into(),
                }),
            }
        })
    }

    fn kill(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let stopped = self.machine.stopped.clone();
            self.machine
                .on_queue(move |vm| {
                    let done = RcBlock::new(move |_err: *mut NSError| {
                        stopped.send_replace(Some("stopped by Berth".into()));
                    });
                    // SAFETY: run on the VM's queue by `on_queue`; the block is copied by the
                    // framework.
                    unsafe {
                        if vm.canStop() {
                            vm.stopWithCompletionHandler(&done);
                        } else {
                            done.call((std::ptr::null_mut(),));
                        }
                    }
                })
                .await;
            let _ =
                tokio::time::timeout(KILL_TIMEOUT, self.stopped.wait_for(Option::is_some)).await;
        })
    }
}
