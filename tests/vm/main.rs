//! VM end-to-end tests: boot the image from `vm-image/build.sh` under QEMU (TCG unless
//! `BERTH_KVM=1`) and check the guest's PID 1 over the serial console. Run with
//! `cargo test -p berth-e2e --test vm -- --test-threads=1 --nocapture` after building the image.

mod arm64;
mod boot;
mod buildkit;
mod docker;
mod files;
mod host;
mod qemu;
mod shares;
