//! New images made here rather than pulled: `docker import` (a tar becomes a one-layer image)
//! and, for `docker commit` and the builder, a parent image plus one more layer (or none) and
//! a new runtime config; and, for the builder's inline cache, images derived from another one
//! without new content (a prefix of its layers and history, or a field added to its JSON).

use std::collections::BTreeMap;
use std::io::{BufRead, Read};

use serde_json::{json, Value};

use super::layer::{self, TeeReader};
use super::pull::{ConfigHead, NewImage};
use super::store::{commit_layer, sha256_digest, ImageRecord};
use super::ImageService;
use crate::compression::Compression;
use crate::{EngineError, Result};

/// What the new image is made of, besides its layer.
#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    /// Image (reference or id) whose layers and history come first; `None` for a base image.
    pub parent: Option<String>,
    /// The runtime config (`Env`, `Cmd`, … in Docker's PascalCase); `None` keeps the parent's.
    pub config: Option<Value>,
    /// History entry: the command that made the layer.
    pub created_by: String,
    pub comment: String,
    pub author: String,
    /// `docker commit`: the container's id and config, kept as the image JSON's `container`
    /// and `container_config` (dockerd does; inspect shows them as `Container` and
    /// `ContainerConfig`).
    pub container: Option<(String, Value)>,
}

/// Applies `docker import --change`/`docker commit --change` instructions to a config.
pub fn apply_changes(config: &mut Value, changes: &[String]) -> Result<()> {
    if !config.is_object() {
        *config = json!({});
    }
    for change in changes {
        let change = change.trim();
        if change.is_empty() {
            continue;
        }
        let (instr, arg) = change.split_once([' ', '\t']).unwrap_or((change, ""));
        let arg = arg.trim();
        let exec_form = || -> Value {
            serde_json::from_str::<Vec<String>>(arg)
                .map(|v| json!(v))
                .unwrap_or_else(|_| json!(["/bin/sh", "-c", arg]))
        };
        let map_insert = |config: &mut Value, key: &str, k: &str, v: Value| {
            let m = config
                .as_object_mut()
                .map(|o| o.entry(key).or_insert_with(|| json!({})));
            if let Some(m) = m {
                if !m.is_object() {
                    *m = json!({});
                }
                if let Some(o) = m.as_object_mut() {
                    o.insert(k.to_string(), v);
                }
            }
        };
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => config["Cmd"] = exec_form(),
            "ENTRYPOINT" => config["Entrypoint"] = exec_form(),
            "WORKDIR" => config["WorkingDir"] = json!(arg),
            "USER" => config["User"] = json!(arg),
            "STOPSIGNAL" => config["StopSignal"] = json!(arg),
            "ENV" => {
                let (k, v) = arg
                    .split_once('=')
                    .or_else(|| arg.split_once(' '))
                    .ok_or_else(|| EngineError::invalid(format!("ENV needs a value: {arg}")))?;
                let (k, v) = (k.trim(), v.trim());
                let env = config["Env"].as_array().cloned().unwrap_or_default();
                let mut env: Vec<Value> = env
                    .into_iter()
                    .filter(|e| !e.as_str().is_some_and(|s| s.starts_with(&format!("{k}="))))
                    .collect();
                env.push(json!(format!("{k}={v}")));
                config["Env"] = json!(env);
            }
            "LABEL" => {
                let (k, v) = arg.split_once('=').unwrap_or((arg, ""));
                let v = v.trim().trim_matches('"');
                map_insert(config, "Labels", k.trim(), json!(v));
            }
            "EXPOSE" => {
                for p in arg.split_whitespace() {
                    let p = if p.contains('/') {
                        p.to_string()
                    } else {
                        format!("{p}/tcp")
                    };
                    map_insert(config, "ExposedPorts", &p, json!({}));
                }
            }
            "VOLUME" => {
                let vols: Vec<String> = serde_json::from_str(arg)
                    .unwrap_or_else(|_| arg.split_whitespace().map(String::from).collect());
                for v in vols {
                    map_insert(config, "Volumes", &v, json!({}));
                }
            }
            other => {
                return Err(EngineError::invalid(format!(
                    "{other} is not a valid change command"
                )))
            }
        }
    }
    Ok(())
}

/// An image made of another one's layers and history, without new content: a build step
/// restored from an inline cache record (a prefix of the source), or a built image with
/// fields added to its JSON (the record itself).
#[derive(Debug, Clone, Default)]
pub struct DerivedImage {
    /// The image (reference or id) whose layers and history are taken.
    pub source: String,
    /// How many of its layers and history entries; `None` takes them all.
    pub prefix: Option<(usize, usize)>,
    /// The image the new one is made on (inspect's `Parent`).
    pub parent: Option<String>,
    /// The runtime config; `None` keeps the source's.
    pub config: Option<Value>,
    /// Top-level fields of the image JSON to set; a `null` removes the field.
    pub fields: BTreeMap<String, Value>,
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

impl ImageService {
    /// Publishes the `import` event of an image made by `docker import`.
    pub fn note_import(&self, id: &str) {
        self.event("import", id, id);
    }

    /// The id and runtime config (`config` of the image JSON, `{}` when absent) of an image.
    pub fn config_json(&self, reference: &str) -> Result<(String, Value)> {
        let rec = self.get(reference)?;
        let raw = self.lock().get_blob(&rec.id)?;
        let doc: Value = serde_json::from_slice(&raw)?;
        let config = doc
            .get("config")
            .filter(|c| c.is_object())
            .cloned()
            .unwrap_or_else(|| json!({}));
        Ok((rec.id, config))
    }

    /// The record and whole JSON (config, history, rootfs) of an image.
    pub fn image_doc(&self, reference: &str) -> Result<(ImageRecord, Value)> {
        let rec = self.get(reference)?;
        let raw = self.lock().get_blob(&rec.id)?;
        let doc = serde_json::from_slice(&raw)?;
        Ok((rec, doc))
    }

    /// Creates the image `d` describes (blocking); returns its id. A prefix takes the
    /// `created` time of its last history entry, so the same prefix is the same image.
    pub fn derive_image(&self, d: DerivedImage) -> Result<String> {
        let _busy = self.busy();
        let rec = self.get(&d.source)?;
        let raw = self.lock().get_blob(&rec.id)?;
        let mut doc: Value = serde_json::from_slice(&raw)?;
        let history = doc["history"].as_array().cloned().unwrap_or_default();
        let (layers, entries) = d.prefix.unwrap_or((rec.layers.len(), history.len()));
        if layers > rec.layers.len() || entries > history.len() {
            return Err(EngineError::invalid(format!(
                "image {} has no {layers} layers and {entries} history entries",
                rec.id
            )));
        }
        if d.prefix.is_some() {
            if let Some(created) = history[..entries].last().and_then(|h| h.get("created")) {
                doc["created"] = created.clone();
            }
        }
        doc["history"] = json!(history[..entries]);
        doc["rootfs"] = json!({"type": "layers", "diff_ids": rec.layers[..layers]});
        if let Some(c) = d.config {
            doc["config"] = c;
        }
        if let Some(obj) = doc.as_object_mut() {
            for (k, v) in d.fields {
                if v.is_null() {
                    obj.remove(&k);
                } else {
                    obj.insert(k, v);
                }
            }
        }
        let bytes = serde_json::to_vec(&doc)?;
        let id = sha256_digest(&bytes);
        let head: ConfigHead = serde_json::from_slice(&bytes)?;
        let blobs = rec.layer_blobs.get(..layers).map(<[_]>::to_vec);
        self.commit_image(NewImage {
            id: &id,
            config: &bytes,
            head: &head,
            layer_sizes: rec.layer_sizes.get(..layers).unwrap_or_default(),
            repo_digest: None,
            tags: &[],
            manifest: None,
            layer_blobs: blobs.unwrap_or_default(),
            parent: d.parent,
        })?;
        Ok(id)
    }

    /// Creates an image from `spec` and an optional layer tar (plain or compressed; blocking).
    /// Returns the new image id; tag it with [`ImageService::tag`].
    pub fn create_image(&self, spec: ImageSpec, diff: Option<impl Read>) -> Result<String> {
        let _busy = self.busy();
        let parent = match &spec.parent {
            Some(p) => {
                let rec = self.get(p)?;
                let raw = self.lock().get_blob(&rec.id)?;
                let doc: Value = serde_json::from_slice(&raw)?;
                Some((rec, doc))
            }
            None => None,
        };
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut diff_ids: Vec<String> = parent
            .as_ref()
            .map(|(r, _)| r.layers.clone())
            .unwrap_or_default();
        let mut sizes: Vec<u64> = parent
            .as_ref()
            .map(|(r, _)| r.layer_sizes.clone())
            .unwrap_or_default();
        let mut blobs: Vec<String> = parent
            .as_ref()
            .map(|(r, _)| r.layer_blobs.clone())
            .unwrap_or_default();
        let empty_layer = diff.is_none();
        if let Some(input) = diff {
            // Registries take gzip, zstd or plain layers: bzip2 and xz ones are kept decompressed.
            let mut input = std::io::BufReader::new(input);
            let input: Box<dyn Read> = match Compression::sniff(input.fill_buf()?) {
                Compression::Bzip2 | Compression::Xz => crate::compression::decoder(input)?,
                _ => Box::new(input),
            };
            let (tmp, mut writer) = {
                let s = self.lock();
                (s.layer_tmp_dir()?, s.blob_writer()?)
            };
            let mut tee = TeeReader {
                inner: input,
                out: &mut writer,
            };
            let res = layer::extract(&mut tee, None, None, &tmp).and_then(|x| {
                let (blob_path, dest) = {
                    let s = self.lock();
                    (s.blob_path(&x.blob_digest)?, s.layer_dir(&x.diff_id)?)
                };
                writer.commit(&blob_path)?;
                commit_layer(&tmp, &dest)?;
                Ok(x)
            });
            let x = match res {
                Ok(x) => x,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&tmp);
                    return Err(e);
                }
            };
            diff_ids.push(x.diff_id);
            sizes.push(x.stats.size);
            blobs.push(x.blob_digest);
        }
        let base = parent
            .as_ref()
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| json!({"architecture": go_arch(), "os": "linux", "config": {}}));
        let mut history = base["history"].as_array().cloned().unwrap_or_default();
        let mut entry = json!({"created": now, "created_by": spec.created_by});
        if !spec.comment.is_empty() {
            entry["comment"] = json!(spec.comment);
        }
        if !spec.author.is_empty() {
            entry["author"] = json!(spec.author);
        }
        if empty_layer {
            entry["empty_layer"] = json!(true);
        }
        history.push(entry);
        let mut config = BTreeMap::new();
        for key in ["architecture", "os", "variant", "os.version"] {
            if let Some(v) = base.get(key).filter(|v| !v.is_null()) {
                config.insert(key.to_string(), v.clone());
            }
        }
        config.insert(
            "config".into(),
            spec.config
                .unwrap_or_else(|| base.get("config").cloned().unwrap_or_else(|| json!({}))),
        );
        config.insert("created".into(), json!(now));
        if !spec.author.is_empty() {
            config.insert("author".into(), json!(spec.author));
        }
        if !spec.comment.is_empty() {
            config.insert("comment".into(), json!(spec.comment));
        }
        if let Some((id, container_config)) = spec.container {
            config.insert("container".into(), json!(id));
            config.insert("container_config".into(), container_config);
        }
        config.insert("history".into(), json!(history));
        config.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": diff_ids}),
        );
        let bytes = serde_json::to_vec(&config)?;
        let id = sha256_digest(&bytes);
        let head: ConfigHead = serde_json::from_slice(&bytes)?;
        self.commit_image(NewImage {
            id: &id,
            config: &bytes,
            head: &head,
            layer_sizes: &sizes,
            repo_digest: None,
            tags: &[],
            manifest: None,
            layer_blobs: blobs,
            parent: parent.as_ref().map(|(r, _)| r.id.clone()),
        })?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_update_the_config() {
        let mut c = json!({"Env": ["PATH=/bin", "A=0"]});
        apply_changes(
            &mut c,
            &[
                r#"CMD ["sh", "-c", "echo hi"]"#.into(),
                "ENTRYPOINT /run.sh".into(),
                "ENV A=1".into(),
                "WORKDIR /srv".into(),
                "EXPOSE 80 53/udp".into(),
                "LABEL a=b".into(),
            ],
        )
        .unwrap();
        assert_eq!(c["Cmd"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/run.sh"]));
        assert_eq!(c["Env"], json!(["PATH=/bin", "A=1"]));
        assert_eq!(c["WorkingDir"], "/srv");
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Labels"]["a"], "b");
        assert!(apply_changes(&mut c, &["RUN x".into()]).is_err());
    }

    fn tar_with(path: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, data).unwrap();
        b.into_inner().unwrap()
    }

    #[tokio::test]
    async fn child_images_stack_layers_on_their_parent() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = std::sync::Arc::new(crate::EngineConfig::new(dir.path().to_path_buf()));
        let svc = ImageService::open(cfg, crate::EventBus::new())
            .await
            .unwrap();
        let base_tar = tar_with("etc/base", b"1");
        let base = svc
            .create_image(
                ImageSpec {
                    config: Some(json!({"Cmd": ["sh"]})),
                    ..ImageSpec::default()
                },
                Some(&base_tar[..]),
            )
            .unwrap();
        let child_tar = tar_with("app/bin", b"22");
        let child = svc
            .create_image(
                ImageSpec {
                    parent: Some(base.clone()),
                    config: Some(json!({"Cmd": ["/app/bin"], "Env": ["A=1"]})),
                    created_by: "RUN make".into(),
                    ..ImageSpec::default()
                },
                Some(&child_tar[..]),
            )
            .unwrap();
        // A config-only step adds history but no layer.
        let tagged = svc
            .create_image(
                ImageSpec {
                    parent: Some(child.clone()),
                    created_by: "LABEL x=y".into(),
                    ..ImageSpec::default()
                },
                None::<&[u8]>,
            )
            .unwrap();
        let r = svc.resolve(&tagged).await.unwrap();
        assert_eq!(r.layer_dirs.len(), 2);
        assert!(r.layer_dirs[0].join("etc/base").is_file());
        assert!(r.layer_dirs[1].join("app/bin").is_file());
        assert_eq!(
            r.config.cmd().as_deref(),
            Some(&["/app/bin".to_string()][..])
        );
        let hist = svc.history(&tagged).unwrap();
        assert_eq!(hist.len(), 3);
        assert_eq!(hist[0].created_by, "LABEL x=y");
        assert_eq!(hist[0].size, 0);
        assert_eq!(hist[1].size, 2);
        assert_eq!(svc.inspect(&child).unwrap().size, 3);
        // Removing the top takes its untagged parent (a build step) along, and keeps the
        // base layer for the base image.
        svc.tag(&base, "base", "").unwrap();
        svc.remove(&tagged, false, &[]).unwrap();
        assert!(svc.inspect(&child).is_err());
        assert!(svc.resolve(&base).await.unwrap().layer_dirs[0].is_dir());
    }
}
