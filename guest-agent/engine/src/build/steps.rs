//! One instruction of a stage: config changes, `COPY`/`ADD`, `WORKDIR` (and `RUN` in
//! [`super::run`]).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::cache::step_key;
use super::copy::{clean_rel, copy_layer, CopySpec, LayerWriter};
use super::dockerfile::{onbuild_trigger, Instruction};
use super::view::ImageView;
use super::words::{expand, expand_words, key_values};
use super::{Build, StageState, StepResult, TempDir};
use crate::{EngineError, Result};

fn invalid(m: impl std::fmt::Display) -> EngineError {
    EngineError::invalid(m)
}

/// Go `time.ParseDuration` for the `HEALTHCHECK` flags, in nanoseconds.
fn parse_duration(s: &str) -> Result<i64> {
    let bad = || invalid(format!("time: invalid duration \"{s}\""));
    if s == "0" {
        return Ok(0);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let num: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += num * mult;
        rest = &rest[u..];
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(total as i64)
}

/// Exec form as is, shell form behind the stage's shell.
pub(super) fn command(st: &StageState, i: &Instruction) -> Vec<String> {
    match &i.json {
        Some(v) => v.clone(),
        None => {
            let mut c = st.shell();
            c.push(i.rest.clone());
            c
        }
    }
}

/// `path.Join(workdir, p)` unless `p` is absolute, keeping a trailing `/`.
fn in_workdir(st: &StageState, p: &str) -> String {
    let joined = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{p}", st.workdir().trim_end_matches('/'))
    };
    let clean = format!("/{}", clean_rel(&joined).display());
    if (p.ends_with('/') || p.ends_with("/.") || p == ".") && clean != "/" {
        format!("{clean}/")
    } else {
        clean
    }
}

fn set_map(config: &mut Value, key: &str, k: &str, v: Value) {
    if !config[key].is_object() {
        config[key] = json!({});
    }
    config[key][k] = v;
}

impl Build {
    pub(crate) async fn instruction(&mut self, st: &mut StageState, i: &Instruction) -> StepResult {
        let vars = st.vars();
        let esc = self.escape;
        let nop = |text: String| format!("/bin/sh -c #(nop) {text}");
        match i.cmd.as_str() {
            "RUN" => return self.run_step(st, i).await,
            "COPY" | "ADD" => return self.copy_step(st, i).await,
            "WORKDIR" => return self.workdir_step(st, i).await,
            "ARG" => {
                let mut shown = Vec::new();
                for (k, default) in key_values(&i.rest, &vars, esc, false)? {
                    self.consumed.insert(k.clone());
                    let v = match self.opts.build_args.get(&k) {
                        Some(Some(v)) => Some(v.clone()),
                        _ => default.or_else(|| self.meta_args.get(&k).cloned().flatten()),
                    };
                    match &v {
                        Some(v) => {
                            st.args.insert(k.clone(), v.clone());
                            shown.push(format!("{k}={v}"));
                        }
                        None => shown.push(k.clone()),
                    }
                }
                return self
                    .config_step(st, nop(format!("ARG {}", shown.join(" "))))
                    .await;
            }
            "ENV" => {
                let pairs = key_values(&i.rest, &vars, esc, true)?;
                let mut env = st.env();
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let v = v.ok_or_else(|| invalid("ENV must have two arguments"))?;
                    if k.is_empty() {
                        return Err(invalid("ENV names can not be blank").into());
                    }
                    env.retain(|e| e.split('=').next() != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                    shown.push(format!("{k}={v}"));
                }
                st.config["Env"] = json!(env);
                return self
                    .config_step(st, nop(format!("ENV {}", shown.join(" "))))
                    .await;
            }
            "LABEL" => {
                for (k, v) in key_values(&i.rest, &vars, esc, true)? {
                    let v = v.ok_or_else(|| invalid("LABEL must have two arguments"))?;
                    set_map(&mut st.config, "Labels", &k, json!(v));
                }
            }
            "MAINTAINER" => st.author = expand(&i.rest, &vars, esc)?,
            "USER" => st.config["User"] = json!(expand(&i.rest, &vars, esc)?),
            "STOPSIGNAL" => st.config["StopSignal"] = json!(expand(&i.rest, &vars, esc)?),
            "CMD" => {
                st.config["Cmd"] = json!(command(st, i));
                st.cmd_set = true;
            }
            "ENTRYPOINT" => {
                st.config["Entrypoint"] = if i.json.is_none() && i.rest.is_empty() {
                    Value::Null
                } else {
                    json!(command(st, i))
                };
                if !st.cmd_set {
                    st.config["Cmd"] = Value::Null;
                }
            }
            "SHELL" => {
                let v = i
                    .json
                    .clone()
                    .ok_or_else(|| invalid("SHELL requires the arguments to be in JSON form"))?;
                st.config["Shell"] = json!(v);
            }
            "EXPOSE" => {
                for p in expand_words(&i.rest, &vars, esc)? {
                    let p = if p.contains('/') {
                        p.to_ascii_lowercase()
                    } else {
                        format!("{p}/tcp")
                    };
                    set_map(&mut st.config, "ExposedPorts", &p, json!({}));
                }
            }
            "VOLUME" => {
                let vols = match &i.json {
                    Some(v) => v.clone(),
                    None => expand_words(&i.rest, &vars, esc)?,
                };
                for v in vols {
                    if v.trim().is_empty() {
                        return Err(invalid("VOLUME specified can not be an empty string").into());
                    }
                    set_map(&mut st.config, "Volumes", &v, json!({}));
                }
            }
            "ONBUILD" => {
                let trigger = onbuild_trigger(i)?;
                let mut v: Vec<Value> =
                    st.config["OnBuild"].as_array().cloned().unwrap_or_default();
                v.push(json!(trigger));
                st.config["OnBuild"] = json!(v);
            }
            "HEALTHCHECK" => st.config["Healthcheck"] = healthcheck(i)?,
            other => return Err(invalid(format!("unknown instruction: {other}")).into()),
        }
        self.config_step(st, nop(i.original.clone())).await
    }

    /// A step that changes only the config (no layer).
    async fn config_step(&mut self, st: &mut StageState, created_by: String) -> StepResult {
        let key = step_key(st.cache_parent.as_deref(), &created_by, &st.config, "");
        if self.cached(st, &key) {
            return Ok(());
        }
        self.commit(st, created_by, &key, None).await?;
        Ok(())
    }

    /// Layer dirs of the stage's current image (none for an empty scratch stage).
    pub(super) async fn layers_of(&self, image: Option<&str>) -> Result<Vec<PathBuf>> {
        match image {
            Some(id) => Ok(self.engine.images.resolve(id).await?.layer_dirs),
            None => Ok(vec![]),
        }
    }

    async fn workdir_step(&mut self, st: &mut StageState, i: &Instruction) -> StepResult {
        let dir = expand(&i.rest, &st.vars(), self.escape)?;
        let dir = in_workdir(st, &dir);
        let dir = if dir.len() > 1 {
            dir.trim_end_matches('/').to_string()
        } else {
            dir
        };
        st.config["WorkingDir"] = json!(dir);
        let created_by = format!("/bin/sh -c #(nop) WORKDIR {dir}");
        let layers = self.layers_of(st.image.as_deref()).await?;
        let scratch = self.scratch("mnt");
        let tmp = TempDir(self.scratch("layer"));
        let tar_path = tmp.0.join("layer.tar");
        let d = dir.clone();
        let wrote = tokio::task::spawn_blocking(move || -> Result<bool> {
            let view = ImageView::open(&layers, scratch)?;
            if view.is_dir(&d) {
                return Ok(false);
            }
            std::fs::create_dir_all(tar_path.parent().unwrap_or(Path::new("/")))?;
            let f = std::fs::File::create(&tar_path)?;
            let mut w = LayerWriter::new(f, &view, (0, 0));
            w.ensure_dir(&clean_rel(&d))?;
            w.finish()?;
            Ok(true)
        })
        .await
        .map_err(|e| invalid(format!("WORKDIR failed: {e}")))??;
        let key = step_key(
            st.cache_parent.as_deref(),
            &created_by,
            &st.config,
            &wrote.to_string(),
        );
        if self.cached(st, &key) {
            return Ok(());
        }
        let layer = wrote.then(|| tmp.0.join("layer.tar"));
        self.commit(st, created_by, &key, layer).await?;
        Ok(())
    }

    async fn copy_step(&mut self, st: &mut StageState, i: &Instruction) -> StepResult {
        let vars = st.vars();
        let mut args = match &i.json {
            Some(v) => v
                .iter()
                .map(|w| expand(w, &vars, self.escape))
                .collect::<Result<Vec<_>>>()?,
            None => expand_words(&i.rest, &vars, self.escape)?,
        };
        if args.len() < 2 {
            return Err(invalid(format!("{} requires at least two arguments", i.cmd)).into());
        }
        let dest = in_workdir(st, &args.pop().unwrap_or_default());
        let sources = args;
        let heredoc_dir = TempDir(self.scratch("ctx-heredoc"));
        // Where the sources come from: heredocs, the context, an earlier stage or an image.
        let (src_layers, src_root) = match i.flag("from") {
            _ if !i.heredocs.is_empty() => {
                write_heredocs(i, &sources, &vars, self.escape, &heredoc_dir.0)?;
                (None, Some(heredoc_dir.0.clone()))
            }
            Some(from) => {
                let from = expand(from, &vars, self.escape)?;
                let id = self.image_for(&from).await?;
                (Some(self.layers_of(Some(&id)).await?), None)
            }
            None => (None, Some(self.context.clone())),
        };
        let chmod = match i.flag("chmod") {
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .map_err(|_| invalid(format!("invalid chmod parameter: {m}")))?,
            ),
            None => None,
        };
        let chown = i
            .flag("chown")
            .map(|c| expand(c, &vars, self.escape))
            .transpose()?;
        let link = link_flag(i)?;
        let layers = self.layers_of(st.image.as_deref()).await?;
        let (scratch_a, scratch_b) = (self.scratch("mnt"), self.scratch("mnt"));
        let scratch_empty = self.scratch("mnt");
        let tmp = TempDir(self.scratch("layer"));
        let tar_path = tmp.0.join("layer.tar");
        let cmd = i.cmd.clone();
        let d = dest.clone();
        let sum = tokio::task::spawn_blocking(move || -> Result<String> {
            let view = ImageView::open(&layers, scratch_a)?;
            let from_view = match src_layers {
                Some(l) => Some(ImageView::open(&l, scratch_b)?),
                None => None,
            };
            let root: PathBuf = match (&from_view, &src_root) {
                (Some(v), _) => v.root().to_path_buf(),
                (None, Some(r)) => r.clone(),
                (None, None) => PathBuf::new(),
            };
            let owner = match chown.as_deref() {
                None | Some("") => (0, 0),
                Some(spec) => {
                    let u = crate::container::user::resolve(view.root(), spec, &[])?;
                    (u.uid, u.gid)
                }
            };
            // `--link` reads nothing of the image but `--chown` names: the copy is made against
            // an empty tree.
            let empty = if link {
                Some(ImageView::open(&[], scratch_empty)?)
            } else {
                None
            };
            std::fs::create_dir_all(tar_path.parent().unwrap_or(Path::new("/")))?;
            let f = std::io::BufWriter::new(std::fs::File::create(&tar_path)?);
            copy_layer(
                &CopySpec {
                    src_root: &root,
                    sources,
                    dest: d,
                    owner,
                    chmod,
                    add: cmd == "ADD",
                    link,
                    cmd: &cmd,
                },
                empty.as_ref().unwrap_or(&view),
                f,
            )
        })
        .await
        .map_err(|e| invalid(format!("{} failed: {e}", i.cmd)))??;
        let created_by = format!("/bin/sh -c #(nop) {} sha256:{sum} in {dest} ", i.cmd);
        let key = step_key(st.cache_parent.as_deref(), &created_by, &st.config, &sum);
        if self.cached(st, &key) {
            return Ok(());
        }
        self.commit(st, created_by, &key, Some(tmp.0.join("layer.tar")))
            .await?;
        Ok(())
    }
}

/// `COPY --link` / `--link=true|false` (a bare flag is true).
fn link_flag(i: &Instruction) -> Result<bool> {
    match i.flag("link") {
        None | Some("false") => Ok(false),
        Some("" | "true") => Ok(true),
        Some(v) => Err(invalid(format!(
            "expecting boolean value for flag link, not: {v}"
        ))),
    }
}

/// Writes the heredocs of a `COPY <<EOF`/`ADD <<EOF` into `dir` as files named by their
/// words (mode 0644, as BuildKit makes them), variables expanded unless the delimiter was
/// quoted. Every source must be one of the heredocs.
fn write_heredocs(
    i: &Instruction,
    sources: &[String],
    vars: &super::words::Vars,
    escape: char,
    dir: &Path,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(other) = sources
        .iter()
        .find(|s| !i.heredocs.iter().any(|h| &h.name == *s))
    {
        return Err(invalid(format!(
            "{}: {other:?}: sources from the context cannot be mixed with heredocs",
            i.cmd
        )));
    }
    std::fs::create_dir_all(dir)?;
    for h in &i.heredocs {
        let content = if h.expand {
            super::words::expand_raw(&h.content, vars, escape)?
        } else {
            h.content.clone()
        };
        let path = dir.join(&h.name);
        std::fs::write(&path, content)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

/// `HEALTHCHECK [--interval=…] CMD …` / `HEALTHCHECK NONE`.
fn healthcheck(i: &Instruction) -> Result<Value> {
    let (word, rest) = i
        .rest
        .split_once(char::is_whitespace)
        .unwrap_or((i.rest.as_str(), ""));
    let rest = rest.trim();
    let mut h = json!({});
    match word.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !rest.is_empty() || !i.flags.is_empty() {
                return Err(invalid("HEALTHCHECK NONE takes no arguments"));
            }
            h["Test"] = json!(["NONE"]);
            return Ok(h);
        }
        "CMD" => {
            h["Test"] = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(v) if rest.starts_with('[') => {
                    json!(std::iter::once("CMD".to_string())
                        .chain(v)
                        .collect::<Vec<_>>())
                }
                _ => json!(["CMD-SHELL", rest]),
            };
        }
        other => {
            return Err(invalid(format!(
                "Unknown type \"{other}\" in HEALTHCHECK (try CMD)"
            )))
        }
    }
    for (k, v) in &i.flags {
        let field = match k.as_str() {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| invalid(format!("invalid retries: {v}")))?;
                h["Retries"] = json!(n);
                continue;
            }
            other => return Err(invalid(format!("Unknown flag: {other}"))),
        };
        h[field] = json!(parse_duration(v)?);
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_healthchecks() {
        assert_eq!(parse_duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert!(parse_duration("5x").is_err());
        let i = super::super::dockerfile::parse(
            "FROM x\nHEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost\n",
        )
        .unwrap()
        .instructions[1]
            .clone();
        let h = healthcheck(&i).unwrap();
        assert_eq!(h["Test"], json!(["CMD-SHELL", "wget -q localhost"]));
        assert_eq!(h["Interval"], json!(5_000_000_000i64));
        assert_eq!(h["Retries"], json!(3));
    }

    #[test]
    fn destinations_resolve_against_workdir() {
        let st = StageState {
            config: json!({"WorkingDir": "/app"}),
            ..StageState::default()
        };
        assert_eq!(in_workdir(&st, "x"), "/app/x");
        assert_eq!(in_workdir(&st, "./"), "/app/");
        assert_eq!(in_workdir(&st, "."), "/app/");
        assert_eq!(in_workdir(&st, "/etc/y/"), "/etc/y/");
        assert_eq!(in_workdir(&StageState::default(), "."), "/");
    }
}
