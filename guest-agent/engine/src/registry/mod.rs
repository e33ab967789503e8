//! Registry client: OCI distribution pull/push, auth, mirrors. (Owned by the images work.)
