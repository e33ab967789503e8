//! Linux errno values for `Rlerror`: the guest's kernel hands them to its callers as they are,
//! so a Windows host's errors are mapped from their kind.

use std::io;

pub const EPERM: u32 = 1;
pub const ENOENT: u32 = 2;
pub const EIO: u32 = 5;
pub const EBADF: u32 = 9;
pub const EACCES: u32 = 13;
pub const EEXIST: u32 = 17;
pub const EXDEV: u32 = 18;
pub const ENOTDIR: u32 = 20;
pub const EISDIR: u32 = 21;
pub const EINVAL: u32 = 22;
pub const ENOSPC: u32 = 28;
pub const EROFS: u32 = 30;
pub const ENOTEMPTY: u32 = 39;
pub const EOPNOTSUPP: u32 = 95;

/// The errno for an I/O error: the OS's own number on Linux, its kind elsewhere.
pub fn of(e: &io::Error) -> u32 {
    #[cfg(target_os = "linux")]
    if let Some(n) = e.raw_os_error() {
        return n as u32;
    }
    of_kind(e.kind())
}

/// The errno for an error kind (hosts whose OS numbers are not Linux's).
pub fn of_kind(k: io::ErrorKind) -> u32 {
    use io::ErrorKind as K;
    match k {
        K::NotFound => ENOENT,
        K::PermissionDenied => EACCES,
        K::AlreadyExists => EEXIST,
        K::InvalidInput | K::InvalidData => EINVAL,
        K::DirectoryNotEmpty => ENOTEMPTY,
        K::NotADirectory => ENOTDIR,
        K::IsADirectory => EISDIR,
        K::StorageFull => ENOSPC,
        K::ReadOnlyFilesystem => EROFS,
        K::CrossesDevices => EXDEV,
        K::Unsupported => EOPNOTSUPP,
        _ => EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_linux_numbers() {
        assert_eq!(of_kind(io::ErrorKind::NotFound), 2);
        assert_eq!(of_kind(io::ErrorKind::DirectoryNotEmpty), 39);
        assert_eq!(of_kind(io::ErrorKind::Other), 5);
        let e = io::Error::new(io::ErrorKind::AlreadyExists, "x");
        assert_eq!(of(&e), EEXIST);
    }
}
