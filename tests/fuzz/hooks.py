"""Schemathesis hooks for tests/fuzz/api.py: strip from generated requests what would touch the
host outside the engine's own directories or reach beyond loopback."""

import schemathesis

# Upload bodies (image load and import, `docker cp` archives) as the raw bytes generated: bad
# tar streams.
schemathesis.serializer.alias("application/x-tar", "application/octet-stream")

# HostConfig members that name host paths or devices, or leave the engine's confinement.
HOST_CONFIG_DROP = (
    "Binds", "Mounts", "Devices", "DeviceCgroupRules", "DeviceRequests", "VolumesFrom",
    "Privileged", "CapAdd", "SecurityOpt", "NetworkMode", "PidMode", "IpcMode", "UTSMode",
    "UsernsMode", "CgroupnsMode", "Cgroup", "CgroupParent", "Sysctls", "Runtime", "Tmpfs",
    "LogConfig", "Dns", "ExtraHosts", "PortBindings", "PublishAllPorts",
)


def _scrub_container(body):
    if not isinstance(body, dict):
        return
    body.pop("Volumes", None)
    body.pop("NetworkingConfig", None)
    hc = body.get("HostConfig")
    if isinstance(hc, dict):
        for k in HOST_CONFIG_DROP:
            hc.pop(k, None)


@schemathesis.hook
def map_case(context, case):
    path, method = case.path, case.method.upper()
    body = case.body if isinstance(case.body, dict) else None
    if path in ("/containers/create", "/containers/{id}/update") and body is not None:
        _scrub_container(body)
    elif path == "/volumes/create" and body is not None:
        # The local driver's options mount devices and network filesystems.
        body.pop("DriverOpts", None)
        body.pop("ClusterVolumeSpec", None)
    elif path == "/build" and method == "POST" and isinstance(case.query, dict):
        # A remote context is fetched from its URL.
        case.query.pop("remote", None)
    elif path == "/commit" and body is not None:
        body.pop("Volumes", None)
    return case
