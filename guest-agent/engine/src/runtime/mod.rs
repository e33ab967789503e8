//! The OCI runtime seam: runc and crun behind one trait. (Owned by the containers work.)
