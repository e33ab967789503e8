//! The inline build cache (`--cache-to type=inline`, then `--cache-from <image>`): a built
//! image's JSON carries the cache keys of the steps that made it, so a build on another engine
//! that pulled the image reuses those steps without running them.
//!
//! A record names, for each step image of the built image's chain, its key and how many
//! layers and history entries it had. A build given the image as a cache source that meets one
//! of those keys restores the step's image as that prefix of the source image (its layers are
//! there: they came with the pull) and goes on from there; keys chain keys ([`super::cache`]),
//! so the steps after it hit too. BuildKit keeps its own record (`moby.buildkit.cache.v0`,
//! keys of its LLB graph, which ours are not) under another name, so a BuildKit reading our
//! image finds nothing of ours to misread.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cache::BuildCache;
use super::{Build, StageState};
use crate::id::short;
use crate::image::create::DerivedImage;
use crate::{Engine, Result};

/// The field of the image JSON that holds the record.
pub const FIELD: &str = "berth.buildcache.v0";

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    steps: Vec<StepRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StepRecord {
    key: String,
    layers: usize,
    history: usize,
}

/// Where a key's step image can be restored from: an image and the prefix of it.
#[derive(Debug, Clone)]
struct Source {
    image: String,
    layers: usize,
    history: usize,
}

/// The records of a build's `--cache-from` images, by key.
#[derive(Debug, Clone, Default)]
pub(crate) struct InlineSources(BTreeMap<String, Source>);

impl Engine {
    /// Image `id` with the inline cache record of the steps that made it (from this engine's
    /// step cache, following `id`'s parents); returns the new image's id.
    pub fn with_inline_cache(&self, id: &str) -> Result<String> {
        let keys = BuildCache::new(&self.config.data_root).keys_by_image();
        let mut steps = Vec::new();
        let mut seen = BTreeSet::new();
        let parent = self.images.image_doc(id)?.0.parent;
        let mut next = Some(id.to_string());
        while let Some(cur) = next.take() {
            let (rec, doc) = self.images.image_doc(&cur)?;
            if !seen.insert(rec.id.clone()) {
                break;
            }
            let history = doc["history"].as_array().map_or(0, Vec::len);
            for key in keys.get(&rec.id).into_iter().flatten() {
                steps.push(StepRecord {
                    key: key.clone(),
                    layers: rec.layers.len(),
                    history,
                });
            }
            next = rec.parent;
        }
        steps.reverse();
        let record = serde_json::to_value(Record { steps })?;
        self.images.derive_image(DerivedImage {
            source: id.to_string(),
            parent,
            fields: [(FIELD.to_string(), record)].into(),
            ..DerivedImage::default()
        })
    }

    /// The records of the images `refs` (those missing or without a record are skipped, as
    /// BuildKit skips a cache source it cannot read).
    pub(crate) fn inline_sources(&self, refs: &[String]) -> InlineSources {
        let mut out = BTreeMap::new();
        for r in refs {
            let record = self.images.image_doc(r).ok().and_then(|(rec, doc)| {
                let record = serde_json::from_value::<Record>(doc.get(FIELD)?.clone()).ok()?;
                Some((rec.id, record))
            });
            let Some((image, record)) = record else {
                tracing::debug!(image = %r, "no inline cache record");
                continue;
            };
            for s in record.steps {
                out.entry(s.key).or_insert(Source {
                    image: image.clone(),
                    layers: s.layers,
                    history: s.history,
                });
            }
        }
        InlineSources(out)
    }
}

impl Build {
    /// On a `--cache-from` record for `key`: makes the step's image from the source's prefix
    /// (with the stage's config, on the stage's image), records it in the step cache and
    /// moves the stage there. `false` when there is none or it cannot be made.
    pub(crate) fn restore_from_inline(&self, st: &mut StageState, key: &str) -> bool {
        let Some(src) = self.inline.0.get(key) else {
            return false;
        };
        let derived = DerivedImage {
            source: src.image.clone(),
            prefix: Some((src.layers, src.history)),
            parent: st.image.clone(),
            config: Some(st.config.clone()),
            fields: [(FIELD.to_string(), Value::Null)].into(),
        };
        let id = match self.engine.images.derive_image(derived) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(error = %e, image = %src.image, "inline cache step not restored");
                return false;
            }
        };
        if let Err(e) = self.cache.put(key, &id, |i| self.image_exists(i)) {
            tracing::warn!(error = %e, "inline cache step not recorded");
        }
        self.out.line(" ---> Using cache\n");
        self.out.line(format!(" ---> {}\n", short(&id)));
        st.image = Some(id);
        st.cache_parent = Some(key.to_string());
        true
    }
}
