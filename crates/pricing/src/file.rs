//! A price table from a file given with `--prices`: this crate's format or LiteLLM's, told
//! apart by their shape.

use crate::error::Error;
use crate::litellm;
use crate::table::PriceTable;
use std::path::Path;

impl PriceTable {
    /// A table from a file in this crate's format or LiteLLM's, told apart by their shape.
    pub fn from_file(path: &Path) -> Result<PriceTable, Error> {
        let shown = path.display().to_string();
        let read = |source| Error::Read {
            path: shown.clone(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(read)?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| Error::Parse {
                path: shown.clone(),
                source,
            })?;
        if litellm::is_litellm(&value) {
            let modified = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .map_err(read)?;
            return litellm::table(&value, &shown, modified);
        }
        PriceTable::from_json(&text, &shown)
    }
}
