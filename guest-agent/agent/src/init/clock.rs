//! The guest's wall clock, set from the host at boot (`berth.time=`) and after a resume (control
//! protocol): under TCG and after a suspend the guest's own clock cannot be trusted.

use nix::sys::time::TimeSpec;
use nix::time::{clock_settime, ClockId};

/// Sets `CLOCK_REALTIME` to `secs.nanos` since the Unix epoch. Needs CAP_SYS_TIME (the guest's
/// PID 1 and engine run as root).
pub(crate) fn set_wall_clock(secs: i64, nanos: i64) -> nix::Result<()> {
    clock_settime(ClockId::CLOCK_REALTIME, TimeSpec::new(secs, nanos))
}
