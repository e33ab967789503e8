//! The one error type of the app's commands. The UI receives it as `{code, message}` and
//! switches on `code` (a closed set, see [`ErrorCode`]); `message` is Docker's own text when the
//! engine answered, so it reads like the docker CLI's.

use serde::ser::SerializeStruct;

/// What kind of failure, for the UI; derived from the Docker status where there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotFound,
    Conflict,
    Invalid,
    NotModified,
    Forbidden,
    Unavailable,
    NotImplemented,
    Internal,
}

impl ErrorCode {
    /// The code for a Docker API status (moby's httpstatus mapping read backwards).
    pub fn from_status(status: u16) -> Self {
        match status {
            304 => Self::NotModified,
            400 | 422 => Self::Invalid,
            401 | 403 => Self::Forbidden,
            404 => Self::NotFound,
            409 => Self::Conflict,
            501 => Self::NotImplemented,
            503 => Self::Unavailable,
            _ => Self::Internal,
        }
    }

    /// The code for an engine error: its status, except that a failure to bind a published
    /// port is a `conflict` (the port is taken) though dockerd, and Berth with it, answer 500
    /// with these texts (`Bind for 0.0.0.0:8080 failed: port is already allocated`, or the
    /// userland proxy's `bind: address already in use`).
    pub fn from_response(status: u16, message: &str) -> Self {
        const PORT_TAKEN: [&str; 2] = ["port is already allocated", "address already in use"];
        if status == 500 && PORT_TAKEN.iter().any(|t| message.contains(t)) {
            return Self::Conflict;
        }
        Self::from_status(status)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::Invalid => "invalid",
            Self::NotModified => "not_modified",
            Self::Forbidden => "forbidden",
            Self::Unavailable => "unavailable",
            Self::NotImplemented => "not_implemented",
            Self::Internal => "internal",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The engine answered with an error status; `message` is its `{"message"}`.
    #[error("{message}")]
    Docker { status: u16, message: String },
    /// The engine's socket could not be reached.
    #[error("cannot reach the engine at {socket}: {detail}")]
    Unreachable { socket: String, detail: String },
    /// Any other failure of the Docker client (bad JSON, a broken stream).
    #[error("engine client: {0}")]
    Client(String),
    /// Input the app rejected before asking the engine.
    #[error("{0}")]
    Invalid(String),
    /// No stream with that id (already ended or stopped).
    #[error("no stream {0}")]
    NoStream(u64),
    /// Something the app looked up is not there (a compose project with no container left).
    #[error("{0}")]
    NotFound(String),
    /// The app refused to change or replace something that is there (overwriting a volume, a
    /// system socket that is not Berth's).
    #[error("{0}")]
    Conflict(String),
    /// The host library failed; the message is its whole chain (so not also a source).
    #[error("{}", berth_host::supervisor::error_chain(.0))]
    Host(berth_host::HostError),
    /// `berth start` / `berth stop` failed; `detail` is what it printed.
    #[error("{what} failed: {detail}")]
    Vm { what: String, detail: String },
    #[error("failed to access {path}: {err}")]
    Io { path: String, err: std::io::Error },
    /// What is asked has nothing to act on here (says why, and what would).
    #[error("{0}")]
    Unavailable(String),
    /// The app is not permitted to (says what command would do it).
    #[error("{0}")]
    Forbidden(String),
}

impl From<berth_host::HostError> for AppError {
    fn from(e: berth_host::HostError) -> Self {
        match e {
            // A Docker API answer through berth-host reads like one through the client.
            berth_host::HostError::Api { status, message } => Self::Docker { status, message },
            e => Self::Host(e),
        }
    }
}

impl AppError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Docker { status, message } => ErrorCode::from_response(*status, message),
            Self::Unreachable { .. } => ErrorCode::Unavailable,
            Self::Invalid(_) => ErrorCode::Invalid,
            Self::NoStream(_) | Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Host(berth_host::HostError::VmRunning(_)) => ErrorCode::Conflict,
            Self::Host(berth_host::HostError::DaemonJson { .. }) => ErrorCode::Invalid,
            Self::Host(berth_host::HostError::NoSuchContext(_)) => ErrorCode::NotFound,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Client(_) | Self::Host(_) | Self::Vm { .. } | Self::Io { .. } => {
                ErrorCode::Internal
            }
        }
    }

    /// Maps a bollard error; `socket` names the engine for connection failures.
    pub fn from_docker(e: bollard::errors::Error, socket: &str) -> Self {
        use bollard::errors::Error as E;
        match e {
            E::DockerResponseServerError {
                status_code,
                message,
            } => Self::Docker {
                status: status_code,
                message,
            },
            // An error line inside a progress stream (build, pull): the engine's own words.
            E::DockerStreamError { error } => Self::Docker {
                status: 500,
                message: error,
            },
            E::IOError { .. }
            | E::HyperResponseError { .. }
            | E::RequestTimeoutError
            | E::SocketNotFoundError(_)
            | E::HyperLegacyError { .. } => Self::Unreachable {
                socket: socket.to_string(),
                detail: berth_host::supervisor::error_chain(&e),
            },
            other => Self::Client(berth_host::supervisor::error_chain(&other)),
        }
    }
}

impl serde::Serialize for AppError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("AppError", 2)?;
        st.serialize_field("code", self.code().as_str())?;
        st.serialize_field("message", &self.to_string())?;
        st.end()
    }
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_statuses_map_to_codes() {
        let table = [
            (304, "not_modified"),
            (400, "invalid"),
            (403, "forbidden"),
            (404, "not_found"),
            (409, "conflict"),
            (500, "internal"),
            (501, "not_implemented"),
            (503, "unavailable"),
        ];
        for (status, code) in table {
            let e = AppError::from_docker(
                bollard::errors::Error::DockerResponseServerError {
                    status_code: status,
                    message: format!("m{status}"),
                },
                "/s",
            );
            assert_eq!(e.code().as_str(), code, "status {status}");
        }
    }

    #[test]
    fn serialises_as_code_and_docker_message() {
        let e = AppError::from_docker(
            bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message: "cannot remove container \"web\": container is running".into(),
            },
            "/s",
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "code": "conflict",
                "message": "cannot remove container \"web\": container is running"
            })
        );
    }

    #[test]
    fn a_port_taken_is_a_conflict_whatever_the_status() {
        let msg = |m: &str| AppError::Docker {
            status: 500,
            message: m.into(),
        };
        let allocated = "driver failed programming external connectivity on endpoint web: Bind for 127.0.0.1:8080 failed: port is already allocated";
        assert_eq!(msg(allocated).code(), ErrorCode::Conflict);
        let in_use =
            "Error starting userland proxy: listen tcp4 0.0.0.0:80: bind: address already in use";
        assert_eq!(msg(in_use).code(), ErrorCode::Conflict);
        assert_eq!(msg("disk full").code(), ErrorCode::Internal);
    }

    #[test]
    fn missing_socket_is_unavailable() {
        let e = AppError::from_docker(
            bollard::errors::Error::SocketNotFoundError("/nope".into()),
            "/nope",
        );
        assert_eq!(e.code(), ErrorCode::Unavailable);
        assert!(e.to_string().contains("/nope"), "{e}");
    }
}
