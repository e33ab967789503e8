//! What the tray shows, as plain data: [`build`] turns the engine and VM state and the running
//! containers into a [`TrayModel`] (icon state, tooltip, menu entries), and [`Action::parse`]
//! reads back what a menu id asks for. Pure, so the layout and the id scheme are unit-tested;
//! `super` turns the model into Tauri menus.

use bollard::models::ContainerSummary;
use serde::Serialize;

/// The icon the tray shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IconState {
    Starting,
    Running,
    Stopped,
    Error,
}

impl IconState {
    /// The badge colour drawn on the icon (RGB).
    pub fn color(self) -> [u8; 3] {
        match self {
            Self::Starting => [0xd6, 0x89, 0x10],
            Self::Running => [0x2a, 0x9d, 0x4b],
            Self::Stopped => [0x8a, 0x94, 0xa0],
            Self::Error => [0xc0, 0x39, 0x2b],
        }
    }
}

/// A VM action the app is running now (started from the tray or the Settings view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VmBusy {
    Starting,
    Stopping,
    Restarting,
}

/// A running container as the tray lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrayContainer {
    pub id: String,
    pub name: String,
    /// The compose project (`com.docker.compose.project`), empty when none.
    pub project: String,
    /// Published TCP ports on the host, sorted, without duplicates (IPv4 and IPv6 bindings).
    pub ports: Vec<u16>,
    /// Paused (`docker pause`): shown as such, with Unpause instead of Pause.
    pub paused: bool,
}

impl From<ContainerSummary> for TrayContainer {
    fn from(c: ContainerSummary) -> Self {
        let name = crate::commands::containers::shown_name(c.names);
        let mut ports: Vec<u16> = c
            .ports
            .unwrap_or_default()
            .iter()
            .filter(|p| p.typ.is_none_or(|t| t.to_string() == "tcp"))
            .filter_map(|p| p.public_port)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        let paused = c.state.is_some_and(|s| s.to_string() == "paused");
        Self {
            paused,
            project: c
                .labels
                .unwrap_or_default()
                .get(crate::commands::compose::PROJECT_LABEL)
                .cloned()
                .unwrap_or_default(),
            id: c.id.unwrap_or_default(),
            name,
            ports,
        }
    }
}

/// Everything the tray is built from.
#[derive(Debug, Clone, Default)]
pub struct TrayInput {
    /// The engine answered its last probe.
    pub engine_ready: bool,
    pub engine_version: Option<String>,
    /// The app talks to Berth's own VM socket (not a socket named by env or settings).
    pub uses_berth_vm: bool,
    /// The supervisor's state (`starting`, `running`, `stopped`, `failed`, …).
    pub vm_state: String,
    pub busy: Option<VmBusy>,
    /// The last VM action's failure, until the next action or the engine coming up.
    pub error: Option<String>,
    /// Running containers, in any order.
    pub containers: Vec<TrayContainer>,
}

/// One menu entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    Item {
        id: String,
        label: String,
        enabled: bool,
    },
    Submenu {
        id: String,
        label: String,
        items: Vec<Entry>,
    },
    Separator,
}

/// The whole tray: icon, tooltip and menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrayModel {
    pub icon: IconState,
    pub tooltip: String,
    pub items: Vec<Entry>,
}

/// What a menu id asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    OpenDashboard,
    Quit,
    VmStart,
    VmStop,
    VmRestart,
    ContainerStop(String),
    ContainerRestart(String),
    ContainerPause(String),
    ContainerUnpause(String),
    ProjectStop(String),
    ProjectRestart(String),
    Open(String),
}

pub const DASHBOARD: &str = "dashboard";
pub const QUIT: &str = "quit";
pub const STATUS: &str = "status";
pub const VM_START: &str = "vm:start";
pub const VM_STOP: &str = "vm:stop";
pub const VM_RESTART: &str = "vm:restart";

impl Action {
    /// Reads a menu id (see [`Action::id`]); `None` for ids that do nothing (labels).
    pub fn parse(id: &str) -> Option<Self> {
        Some(match id {
            DASHBOARD => Self::OpenDashboard,
            QUIT => Self::Quit,
            VM_START => Self::VmStart,
            VM_STOP => Self::VmStop,
            VM_RESTART => Self::VmRestart,
            _ => {
                let (kind, arg) = id.split_once(':')?;
                let arg = arg.to_string();
                match kind {
                    "stop" => Self::ContainerStop(arg),
                    "restart" => Self::ContainerRestart(arg),
                    "pause" => Self::ContainerPause(arg),
                    "unpause" => Self::ContainerUnpause(arg),
                    "project-stop" => Self::ProjectStop(arg),
                    "project-restart" => Self::ProjectRestart(arg),
                    "open" if arg.starts_with("http://") => Self::Open(arg),
                    _ => return None,
                }
            }
        })
    }

    /// The menu id of this action.
    pub fn id(&self) -> String {
        match self {
            Self::OpenDashboard => DASHBOARD.into(),
            Self::Quit => QUIT.into(),
            Self::VmStart => VM_START.into(),
            Self::VmStop => VM_STOP.into(),
            Self::VmRestart => VM_RESTART.into(),
            Self::ContainerStop(id) => format!("stop:{id}"),
            Self::ContainerRestart(id) => format!("restart:{id}"),
            Self::ContainerPause(id) => format!("pause:{id}"),
            Self::ContainerUnpause(id) => format!("unpause:{id}"),
            Self::ProjectStop(p) => format!("project-stop:{p}"),
            Self::ProjectRestart(p) => format!("project-restart:{p}"),
            Self::Open(url) => format!("open:{url}"),
        }
    }
}

/// The icon for this state. A running engine wins; then an action in progress; then a failure
/// (of the last action, of the VM, or a VM whose supervisor runs but whose engine does not
/// answer); otherwise stopped.
pub fn icon_state(i: &TrayInput) -> IconState {
    if i.engine_ready {
        return IconState::Running;
    }
    if i.busy.is_some() {
        return IconState::Starting;
    }
    if i.error.is_some() || i.vm_state == "failed" {
        return IconState::Error;
    }
    match i.vm_state.as_str() {
        "starting" | "restarting" | "stopping" if i.uses_berth_vm => IconState::Starting,
        _ => IconState::Stopped,
    }
}

/// The status line (first menu entry, also the tooltip).
fn status_line(i: &TrayInput, icon: IconState) -> String {
    let busy = match i.busy {
        Some(VmBusy::Starting) => Some("VM starting…"),
        Some(VmBusy::Stopping) => Some("VM stopping…"),
        Some(VmBusy::Restarting) => Some("VM restarting…"),
        None => None,
    };
    match (icon, busy, &i.error) {
        (IconState::Running, _, _) => match &i.engine_version {
            Some(v) => format!("Berth: running (engine {v})"),
            None => "Berth: running".into(),
        },
        (_, Some(b), _) => format!("Berth: {b}"),
        (IconState::Error, _, Some(e)) => format!("Berth: error: {e}"),
        (IconState::Error, _, None) => "Berth: the VM failed".into(),
        (IconState::Starting, _, _) => format!("Berth: VM {}…", i.vm_state),
        (IconState::Stopped, _, _) => "Berth: stopped".into(),
    }
}

fn item(action: Action, label: impl Into<String>, enabled: bool) -> Entry {
    Entry::Item {
        id: action.id(),
        label: label.into(),
        enabled,
    }
}

/// A container's submenu: stop, restart, pause or unpause, and one entry per published port.
/// A paused container's label says so.
fn container_menu(c: &TrayContainer, label: String) -> Entry {
    let (label, pause) = if c.paused {
        (
            format!("{label} (paused)"),
            item(Action::ContainerUnpause(c.id.clone()), "Unpause", true),
        )
    } else {
        (
            label,
            item(Action::ContainerPause(c.id.clone()), "Pause", true),
        )
    };
    let mut items = vec![
        item(Action::ContainerStop(c.id.clone()), "Stop", true),
        item(Action::ContainerRestart(c.id.clone()), "Restart", true),
        pause,
    ];
    for p in &c.ports {
        let url = format!("http://localhost:{p}");
        items.push(item(Action::Open(url), format!("Open localhost:{p}"), true));
    }
    Entry::Submenu {
        id: format!("container:{}", c.id),
        label,
        items,
    }
}

/// The running containers: one submenu per compose project (its containers by service name,
/// then stop/restart of the whole project), then the others, each sorted by name.
fn containers_section(list: &[TrayContainer]) -> Vec<Entry> {
    let mut sorted: Vec<&TrayContainer> = list.iter().collect();
    sorted.sort_by(|a, b| {
        (a.project.is_empty(), &a.project, &a.name).cmp(&(
            b.project.is_empty(),
            &b.project,
            &b.name,
        ))
    });
    let count = match list.len() {
        0 => "No running containers".to_string(),
        1 => "1 running container".to_string(),
        n => format!("{n} running containers"),
    };
    let mut out = vec![Entry::Item {
        id: "containers".into(),
        label: count,
        enabled: false,
    }];
    let mut i = 0;
    while i < sorted.len() {
        let project = &sorted[i].project;
        if project.is_empty() {
            out.push(container_menu(sorted[i], sorted[i].name.clone()));
            i += 1;
            continue;
        }
        let members: Vec<&TrayContainer> = sorted[i..]
            .iter()
            .take_while(|c| &c.project == project)
            .copied()
            .collect();
        i += members.len();
        let mut items: Vec<Entry> = members
            .iter()
            .map(|c| container_menu(c, c.name.clone()))
            .collect();
        items.push(Entry::Separator);
        items.push(item(
            Action::ProjectStop(project.clone()),
            "Stop project",
            true,
        ));
        items.push(item(
            Action::ProjectRestart(project.clone()),
            "Restart project",
            true,
        ));
        out.push(Entry::Submenu {
            id: format!("project:{project}"),
            label: format!("{project} ({})", members.len()),
            items,
        });
    }
    out
}

/// Builds the tray from its inputs.
pub fn build(i: &TrayInput) -> TrayModel {
    let icon = icon_state(i);
    let status = status_line(i, icon);
    let mut items = vec![
        Entry::Item {
            id: STATUS.into(),
            label: status.clone(),
            enabled: false,
        },
        item(Action::OpenDashboard, "Open Dashboard", true),
        Entry::Separator,
    ];
    if i.engine_ready {
        items.extend(containers_section(&i.containers));
        items.push(Entry::Separator);
    }
    let idle = i.busy.is_none();
    let vm_up = i.vm_state != "stopped" && i.vm_state != "failed" && !i.vm_state.is_empty();
    items.push(item(Action::VmStart, "Start VM", idle && !vm_up));
    items.push(item(Action::VmStop, "Stop VM", idle && vm_up));
    items.push(item(Action::VmRestart, "Restart VM", idle && vm_up));
    items.push(Entry::Separator);
    items.push(item(Action::Quit, "Quit Berth", true));
    TrayModel {
        icon,
        tooltip: status,
        items,
    }
}

/// `icon` (RGBA, `width`×`height`) with a filled circle of `color` in its lower right quarter,
/// ringed in white so it reads on dark and light panels.
pub fn badge(icon: &[u8], width: u32, height: u32, color: [u8; 3]) -> Vec<u8> {
    let mut out = icon.to_vec();
    let size = width.min(height) as f32;
    let r = size * 0.22;
    let (cx, cy) = (width as f32 - r - 1.0, height as f32 - r - 1.0);
    for y in 0..height {
        for x in 0..width {
            let d = ((x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2)).sqrt();
            let px = match d {
                d if d <= r => [color[0], color[1], color[2], 0xff],
                d if d <= r + size * 0.06 => [0xff, 0xff, 0xff, 0xff],
                _ => continue,
            };
            let at = ((y * width + x) * 4) as usize;
            if let Some(dst) = out.get_mut(at..at + 4) {
                dst.copy_from_slice(&px);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctr(id: &str, name: &str, project: &str, ports: &[u16]) -> TrayContainer {
        TrayContainer {
            id: id.into(),
            name: name.into(),
            project: project.into(),
            ports: ports.to_vec(),
            paused: false,
        }
    }

    fn running(containers: Vec<TrayContainer>) -> TrayInput {
        TrayInput {
            engine_ready: true,
            engine_version: Some("28.0".into()),
            uses_berth_vm: true,
            vm_state: "running".into(),
            containers,
            ..Default::default()
        }
    }

    fn ids(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match e {
                Entry::Item { id, .. } | Entry::Submenu { id, .. } => id.clone(),
                Entry::Separator => "-".into(),
            })
            .collect()
    }

    fn enabled(m: &TrayModel, want: &str) -> bool {
        m.items
            .iter()
            .any(|e| matches!(e, Entry::Item { id, enabled: true, .. } if id == want))
    }

    #[test]
    fn icon_follows_engine_vm_and_actions() {
        let mut i = TrayInput {
            uses_berth_vm: true,
            vm_state: "stopped".into(),
            ..Default::default()
        };
        assert_eq!(icon_state(&i), IconState::Stopped);
        i.vm_state = "starting".into();
        assert_eq!(icon_state(&i), IconState::Starting);
        i.vm_state = "failed".into();
        assert_eq!(icon_state(&i), IconState::Error);
        i.vm_state = "stopped".into();
        i.busy = Some(VmBusy::Starting);
        assert_eq!(icon_state(&i), IconState::Starting);
        i.busy = None;
        i.error = Some("berth start failed: no kvm".into());
        assert_eq!(icon_state(&i), IconState::Error);
        i.engine_ready = true;
        assert_eq!(icon_state(&i), IconState::Running);
        // Another socket: a starting Berth VM does not make that engine "starting".
        let other = TrayInput {
            uses_berth_vm: false,
            vm_state: "starting".into(),
            ..Default::default()
        };
        assert_eq!(icon_state(&other), IconState::Stopped);
    }

    #[test]
    fn containers_are_grouped_by_project_then_by_name() {
        let m = build(&running(vec![
            ctr("c3", "zeta", "", &[]),
            ctr("c2", "web-2", "shop", &[8080]),
            ctr("c1", "db-1", "shop", &[]),
            ctr("c4", "alpha", "", &[9000, 9001]),
        ]));
        assert_eq!(m.icon, IconState::Running);
        assert_eq!(
            ids(&m.items),
            [
                "status",
                "dashboard",
                "-",
                "containers",
                "project:shop",
                "container:c4",
                "container:c3",
                "-",
                "vm:start",
                "vm:stop",
                "vm:restart",
                "-",
                "quit"
            ]
        );
        let Entry::Submenu { label, items, .. } = &m.items[4] else {
            panic!("{:?}", m.items[4])
        };
        assert_eq!(label, "shop (2)");
        assert_eq!(
            ids(items),
            [
                "container:c1",
                "container:c2",
                "-",
                "project-stop:shop",
                "project-restart:shop"
            ]
        );
        let Entry::Submenu { items: web, .. } = &items[1] else {
            panic!()
        };
        assert_eq!(
            ids(web),
            [
                "stop:c2",
                "restart:c2",
                "pause:c2",
                "open:http://localhost:8080"
            ]
        );
        assert!(
            matches!(&m.items[3], Entry::Item { label, enabled: false, .. } if label == "4 running containers")
        );
        assert!(enabled(&m, "vm:stop") && !enabled(&m, "vm:start"));
    }

    #[test]
    fn a_stopped_engine_offers_start_only_and_no_containers() {
        let m = build(&TrayInput {
            uses_berth_vm: true,
            vm_state: "stopped".into(),
            ..Default::default()
        });
        assert_eq!(m.icon, IconState::Stopped);
        assert_eq!(m.tooltip, "Berth: stopped");
        assert!(!ids(&m.items).contains(&"containers".to_string()));
        assert!(enabled(&m, "vm:start"));
        assert!(!enabled(&m, "vm:stop") && !enabled(&m, "vm:restart"));
        // While an action runs, no other VM action is offered.
        let busy = build(&TrayInput {
            busy: Some(VmBusy::Starting),
            vm_state: "stopped".into(),
            ..Default::default()
        });
        assert_eq!(busy.tooltip, "Berth: VM starting…");
        assert!(!enabled(&busy, "vm:start"));
    }

    #[test]
    fn every_action_id_reads_back() {
        let all = [
            Action::OpenDashboard,
            Action::Quit,
            Action::VmStart,
            Action::VmStop,
            Action::VmRestart,
            Action::ContainerStop("abc".into()),
            Action::ContainerRestart("abc".into()),
            Action::ProjectStop("my:proj".into()),
            Action::ProjectRestart("p".into()),
            Action::Open("http://localhost:8080".into()),
        ];
        for a in all {
            assert_eq!(Action::parse(&a.id()), Some(a.clone()), "{}", a.id());
        }
        for id in [
            "status",
            "containers",
            "container:abc",
            "project:p",
            "open:file:///etc/passwd",
            "x",
        ] {
            assert_eq!(Action::parse(id), None, "{id}");
        }
    }

    #[test]
    fn summaries_keep_published_tcp_ports_and_the_project() {
        let c: ContainerSummary = serde_json::from_value(serde_json::json!({
            "Id": "abc", "Names": ["/shop-web-1"],
            "Labels": {"com.docker.compose.project": "shop"},
            "Ports": [
                {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
                {"PrivatePort": 443, "Type": "tcp"}
            ]
        }))
        .unwrap();
        assert_eq!(
            TrayContainer::from(c),
            ctr("abc", "shop-web-1", "shop", &[8080])
        );
    }

    #[test]
    fn a_paused_container_says_so_and_offers_unpause() {
        let paused = TrayContainer {
            paused: true,
            ..ctr("c1", "web", "", &[])
        };
        let m = build(&running(vec![paused, ctr("c2", "db", "", &[])]));
        let menu = |id: &str| {
            m.items.iter().find_map(|e| match e {
                Entry::Submenu {
                    id: i,
                    label,
                    items,
                } if i == id => Some((label.clone(), ids(items))),
                _ => None,
            })
        };
        let (label, items) = menu("container:c1").unwrap();
        assert_eq!(label, "web (paused)");
        assert_eq!(items, ["stop:c1", "restart:c1", "unpause:c1"]);
        let (label, items) = menu("container:c2").unwrap();
        assert_eq!(label, "db");
        assert_eq!(items, ["stop:c2", "restart:c2", "pause:c2"]);
        assert_eq!(
            Action::parse("unpause:c1"),
            Some(Action::ContainerUnpause("c1".into()))
        );
        assert_eq!(
            Action::parse("pause:c2"),
            Some(Action::ContainerPause("c2".into()))
        );
        let c: ContainerSummary =
            serde_json::from_value(serde_json::json!({"Id": "x", "State": "paused"})).unwrap();
        assert!(TrayContainer::from(c).paused);
    }

    #[test]
    fn the_badge_colours_the_lower_right_only() {
        let (w, h) = (32u32, 32u32);
        let icon = vec![0u8; (w * h * 4) as usize];
        let out = badge(&icon, w, h, [1, 2, 3]);
        let px = |x: u32, y: u32| &out[((y * w + x) * 4) as usize..][..4];
        assert_eq!(px(0, 0), [0, 0, 0, 0]);
        assert_eq!(px(w - 8, h - 8), [1, 2, 3, 255]);
        assert_eq!(out.len(), icon.len());
    }
}
