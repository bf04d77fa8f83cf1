//! No module cycle in any crate of the workspace, nor between the folders that hold them:
//! imports stay one-way (docs/architecture.md). A failure names the modules of each cycle
//! and the line of every import in it.

use std::path::{Path, PathBuf};

fn targets(crate_dir: &Path) -> Vec<PathBuf> {
    let src = crate_dir.join("src");
    let mut roots: Vec<PathBuf> = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .filter(|p| p.is_file())
        .collect();
    if let Ok(bins) = std::fs::read_dir(src.join("bin")) {
        let mut bins: Vec<PathBuf> = bins
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .collect();
        bins.sort();
        roots.extend(bins);
    }
    roots
}

#[test]
fn no_crate_of_the_workspace_has_a_module_cycle() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&crates)
        .expect("crates/ is readable")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    let (mut checked, mut report) = (0, String::new());
    for dir in &dirs {
        for root in targets(dir) {
            let graph = module_graph::read_crate(&root, &|p| std::fs::read_to_string(p).ok())
                .unwrap_or_else(|e| panic!("{e}"));
            checked += graph.modules.len();
            for cycle in module_graph::cycles(&graph) {
                report.push_str(&format!(
                    "\n{}: cycle {}\n  {}",
                    root.strip_prefix(&crates).unwrap_or(&root).display(),
                    cycle.modules.join(" -> "),
                    cycle.edges.join("\n  ")
                ));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} modules found under {}",
        crates.display()
    );
    assert!(
        report.is_empty(),
        "module cycles (imports must stay one-way):{report}"
    );
}
