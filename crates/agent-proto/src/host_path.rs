//! Where a host folder appears in the guest. Unix hosts share folders at their own paths; a
//! Windows host's drives appear below [`WINDOWS_DRIVES`] by drive letter, so `C:\Users\me` is
//! `/mnt/host/c/Users/me`. The host mounts its shares there, and the engine maps a bind source
//! typed as a Windows path (what the docker CLI and compose send on Windows) the same way.

/// Where a Windows host's drives appear in the guest.
pub const WINDOWS_DRIVES: &str = "/mnt/host";

/// A Windows path's drive letter (lower case) and the rest, for `C:\x`, `c:/x`, `C:` and
/// `\\?\C:\x`; `None` for anything else (a UNC share, a relative or unix path).
pub fn windows_drive(p: &str) -> Option<(char, &str)> {
    let p = p.strip_prefix(r"\\?\").unwrap_or(p);
    let mut chars = p.chars();
    let drive = chars.next().filter(char::is_ascii_alphabetic)?;
    let rest = chars.as_str().strip_prefix(':')?;
    if !(rest.is_empty() || rest.starts_with(['\\', '/'])) {
        return None;
    }
    Some((drive.to_ascii_lowercase(), rest))
}

/// `C:\Users\me` (or `c:/Users/me/`, or `\\?\C:\Users\me`) as `/mnt/host/c/Users/me`; `None`
/// for a path without a drive letter.
pub fn windows_guest_path(p: &str) -> Option<String> {
    windows_path_below(WINDOWS_DRIVES, p)
}

/// A Windows path below `drives` (a folder per drive letter); `None` without a drive letter.
pub fn windows_path_below(drives: &str, p: &str) -> Option<String> {
    let (drive, rest) = windows_drive(p)?;
    let mut out = format!("{}/{drive}", drives.trim_end_matches('/'));
    for part in rest.split(['\\', '/']).filter(|c| !c.is_empty()) {
        out.push('/');
        out.push_str(part);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_paths_map_below_their_drive() {
        assert_eq!(
            windows_guest_path(r"C:\Users\me").as_deref(),
            Some("/mnt/host/c/Users/me")
        );
        assert_eq!(
            windows_guest_path("d:/src/app/").as_deref(),
            Some("/mnt/host/d/src/app")
        );
        assert_eq!(
            windows_guest_path(r"\\?\E:\x").as_deref(),
            Some("/mnt/host/e/x")
        );
        assert_eq!(windows_guest_path(r"C:\").as_deref(), Some("/mnt/host/c"));
        assert_eq!(windows_guest_path(r"\\server\share"), None);
        assert_eq!(windows_guest_path("relative"), None);
        assert_eq!(windows_guest_path("C:relative"), None);
        assert_eq!(windows_guest_path("/unix/path"), None);
        assert_eq!(windows_drive(r"C:\src"), Some(('c', r"\src")));
    }
}
