//! The module graph of a crate, read from its sources: an edge from a module to every module
//! its non-test code names through `crate::`, `super::`, `self::` or a child module's name
//! (in `use` items, in paths anywhere, and in macro arguments). [`cycles`] finds the cycles in
//! it, between modules and between the folders (subtrees) that hold them, so that every crate
//! keeps its imports one-way. `tests/no_cycles.rs` runs it on every crate of the workspace.
//!
//! Parsing is `syn`'s (already built for the workspace's derives); no type resolution: a
//! name brought in by `use` is counted where it is imported, which is where the dependency is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// A module, as its path from the crate root (`[]` is the root).
pub type ModPath = Vec<String>;

/// One crate target's modules and the imports between them.
#[derive(Debug, Default)]
pub struct Graph {
    /// Every module, with the file it is written in.
    pub modules: BTreeMap<ModPath, PathBuf>,
    /// (from, to) → where: the file of `from` and the line that names `to` first.
    pub edges: BTreeMap<(ModPath, ModPath), String>,
}

/// A crate target's module tree read from `root` (`src/lib.rs`, `src/main.rs`, a
/// `src/bin/*.rs`), through `read` (the file system, or a map in tests).
pub fn read_crate(root: &Path, read: &dyn Fn(&Path) -> Option<String>) -> Result<Graph, String> {
    let mut graph = Graph::default();
    let mut pending: Vec<Pending> = Vec::new();
    let dir = root.parent().unwrap_or(Path::new("")).to_path_buf();
    walk_file(root, Vec::new(), dir, read, &mut graph, &mut pending)?;
    let known: BTreeSet<ModPath> = graph.modules.keys().cloned().collect();
    for p in pending {
        let text = read(&p.file).unwrap_or_default();
        for segments in p.paths {
            let Some(target) = resolve(&p.module, &segments, &known) else {
                continue;
            };
            if target == p.module {
                continue;
            }
            let at = format!("{}:{}", p.file.display(), line_naming(&text, &segments));
            graph.edges.entry((p.module.clone(), target)).or_insert(at);
        }
    }
    Ok(graph)
}

/// A module's paths, resolved once every module is known.
struct Pending {
    module: ModPath,
    file: PathBuf,
    paths: Vec<Vec<String>>,
}

fn walk_file(
    file: &Path,
    module: ModPath,
    child_dir: PathBuf,
    read: &dyn Fn(&Path) -> Option<String>,
    graph: &mut Graph,
    pending: &mut Vec<Pending>,
) -> Result<(), String> {
    let text = read(file).ok_or_else(|| format!("cannot read {}", file.display()))?;
    let parsed =
        syn::parse_file(&text).map_err(|e| format!("cannot parse {}: {e}", file.display()))?;
    walk_items(&parsed.items, file, module, child_dir, read, graph, pending)
}

fn walk_items(
    items: &[syn::Item],
    file: &Path,
    module: ModPath,
    child_dir: PathBuf,
    read: &dyn Fn(&Path) -> Option<String>,
    graph: &mut Graph,
    pending: &mut Vec<Pending>,
) -> Result<(), String> {
    graph.modules.insert(module.clone(), file.to_path_buf());
    let mut paths = Paths::default();
    for item in items {
        if is_test_only(item_attrs(item)) {
            continue;
        }
        let syn::Item::Mod(m) = item else {
            paths.visit_item(item);
            continue;
        };
        let name = m.ident.to_string();
        let mut child = module.clone();
        child.push(name.clone());
        match &m.content {
            Some((_, inner)) => {
                let dir = child_dir.join(&name);
                walk_items(inner, file, child, dir, read, graph, pending)?;
            }
            None => {
                let (child_file, dir) = match path_attr(&m.attrs) {
                    Some(p) => {
                        let f = child_dir.join(p);
                        let d = f.with_extension("");
                        (f, d)
                    }
                    None => {
                        let flat = child_dir.join(format!("{name}.rs"));
                        if read(&flat).is_some() {
                            (flat, child_dir.join(&name))
                        } else {
                            (child_dir.join(&name).join("mod.rs"), child_dir.join(&name))
                        }
                    }
                };
                walk_file(&child_file, child, dir, read, graph, pending)?;
            }
        }
    }
    pending.push(Pending {
        module,
        file: file.to_path_buf(),
        paths: paths.found,
    });
    Ok(())
}

/// The module a path names: the longest known module its absolute form starts with.
fn resolve(module: &ModPath, segments: &[String], known: &BTreeSet<ModPath>) -> Option<ModPath> {
    let first = segments.first()?;
    let mut abs: ModPath;
    let rest: &[String];
    match first.as_str() {
        "crate" => {
            abs = Vec::new();
            rest = &segments[1..];
        }
        "self" | "super" => {
            abs = module.clone();
            let mut i = 0;
            while i < segments.len() && (segments[i] == "super" || segments[i] == "self") {
                if segments[i] == "super" {
                    abs.pop()?;
                }
                i += 1;
            }
            rest = &segments[i..];
        }
        name => {
            let mut child = module.clone();
            child.push(name.to_string());
            if !known.contains(&child) {
                return None;
            }
            abs = module.clone();
            rest = segments;
        }
    }
    let mut found = abs.clone();
    for s in rest {
        abs.push(s.clone());
        if known.contains(&abs) {
            found = abs.clone();
        } else {
            break;
        }
    }
    Some(found)
}

/// The first line of `text` that holds the path's last two segments, for the report.
fn line_naming(text: &str, segments: &[String]) -> usize {
    let tail: Vec<&str> = segments.iter().rev().take(2).map(String::as_str).collect();
    text.lines()
        .position(|l| tail.iter().all(|s| l.contains(s)))
        .or_else(|| text.lines().position(|l| l.contains(tail[0])))
        .map_or(0, |i| i + 1)
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    use syn::Item::*;
    match item {
        Const(i) => &i.attrs,
        Enum(i) => &i.attrs,
        ExternCrate(i) => &i.attrs,
        Fn(i) => &i.attrs,
        ForeignMod(i) => &i.attrs,
        Impl(i) => &i.attrs,
        Macro(i) => &i.attrs,
        Mod(i) => &i.attrs,
        Static(i) => &i.attrs,
        Struct(i) => &i.attrs,
        Trait(i) => &i.attrs,
        TraitAlias(i) => &i.attrs,
        Type(i) => &i.attrs,
        Union(i) => &i.attrs,
        Use(i) => &i.attrs,
        _ => &[],
    }
}

/// `#[cfg(test)]` or `#[test]`: test code may import anything.
fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("test")
            || (a.path().is_ident("cfg") && a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test"))
    })
}

fn path_attr(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|a| match &a.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

/// Every path of the items visited, as segments.
#[derive(Default)]
struct Paths {
    found: Vec<Vec<String>>,
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut prefix = Vec::new();
        use_tree(&u.tree, &mut prefix, &mut self.found);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.found
            .push(p.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, p);
    }

    // `pub(crate)`, `pub(super)`: a visibility, not an import.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        tokens(m.tokens.clone(), &mut self.found);
        syn::visit::visit_macro(self, m);
    }

    // Test functions and test-only items inside impls and functions are skipped too.
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if !is_test_only(&f.attrs) {
            syn::visit::visit_item_fn(self, f);
        }
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_test_only(&f.attrs) {
            syn::visit::visit_impl_item_fn(self, f);
        }
    }
}

fn use_tree(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_tree(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let mut path = prefix.clone();
            if n.ident != "self" {
                path.push(n.ident.to_string());
            }
            out.push(path);
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            if r.ident != "self" {
                path.push(r.ident.to_string());
            }
            out.push(path);
        }
        syn::UseTree::Glob(_) => out.push(prefix.clone()),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_tree(t, prefix, out);
            }
        }
    }
}

/// `a::b::c` runs in a macro's tokens (macro arguments are not parsed as Rust).
fn tokens(stream: proc_macro2::TokenStream, out: &mut Vec<Vec<String>>) {
    use proc_macro2::TokenTree;
    let trees: Vec<TokenTree> = stream.into_iter().collect();
    let mut i = 0;
    while i < trees.len() {
        match &trees[i] {
            TokenTree::Group(g) => {
                tokens(g.stream(), out);
                i += 1;
            }
            TokenTree::Ident(id) => {
                let mut path = vec![id.to_string()];
                let mut j = i + 1;
                loop {
                    let colons = matches!((&trees.get(j), &trees.get(j + 1)),
                        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                        if a.as_char() == ':' && b.as_char() == ':');
                    match (colons, trees.get(j + 2)) {
                        (true, Some(TokenTree::Ident(next))) => {
                            path.push(next.to_string());
                            j += 3;
                        }
                        _ => break,
                    }
                }
                if path.len() > 1 {
                    out.push(path);
                }
                i = j;
            }
            _ => i += 1,
        }
    }
}

/// A cycle: modules in order, each importing the next and the last the first, with where.
#[derive(Debug, PartialEq)]
pub struct Cycle {
    pub modules: Vec<String>,
    pub edges: Vec<String>,
}

/// The cycles of `graph`: between modules, and between the subtrees at every depth (a
/// folder's modules taken as one), one example cycle per strongly connected component.
pub fn cycles(graph: &Graph) -> Vec<Cycle> {
    let depth = graph.modules.keys().map(Vec::len).max().unwrap_or(0);
    let mut found: Vec<Cycle> = Vec::new();
    let mut seen: BTreeSet<Vec<String>> = BTreeSet::new();
    for d in (1..=depth.max(1)).rev() {
        let cut = |m: &ModPath| m[..m.len().min(d)].to_vec();
        let mut edges: BTreeMap<ModPath, BTreeMap<ModPath, String>> = BTreeMap::new();
        for ((from, to), at) in &graph.edges {
            let (f, t) = (cut(from), cut(to));
            if f != t {
                let by = format!("{} -> {} ({at})", name(from), name(to));
                edges.entry(f).or_default().entry(t).or_insert(by);
            }
        }
        for scc in components(&edges) {
            let cycle = example_cycle(&scc, &edges);
            let modules: Vec<String> = cycle.iter().map(name).collect();
            let mut key = modules.clone();
            key.sort();
            if seen.insert(key) {
                let edges = cycle
                    .iter()
                    .zip(cycle.iter().cycle().skip(1))
                    .map(|(a, b)| edges[a][b].clone())
                    .collect();
                found.push(Cycle { modules, edges });
            }
        }
    }
    found
}

/// `crate::a::b`.
pub fn name(m: &ModPath) -> String {
    std::iter::once("crate")
        .chain(m.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("::")
}

type Edges = BTreeMap<ModPath, BTreeMap<ModPath, String>>;

/// Strongly connected components of more than one node (Tarjan).
fn components(edges: &Edges) -> Vec<Vec<ModPath>> {
    struct T<'e> {
        edges: &'e Edges,
        index: BTreeMap<ModPath, usize>,
        low: BTreeMap<ModPath, usize>,
        stack: Vec<ModPath>,
        on: BTreeSet<ModPath>,
        out: Vec<Vec<ModPath>>,
    }
    fn visit(t: &mut T<'_>, v: &ModPath) {
        let i = t.index.len();
        t.index.insert(v.clone(), i);
        t.low.insert(v.clone(), i);
        t.stack.push(v.clone());
        t.on.insert(v.clone());
        for w in t
            .edges
            .get(v)
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let l = t.low[v].min(t.low[&w]);
                t.low.insert(v.clone(), l);
            } else if t.on.contains(&w) {
                let l = t.low[v].min(t.index[&w]);
                t.low.insert(v.clone(), l);
            }
        }
        if t.low[v] == t.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(&w);
                let done = &w == v;
                scc.push(w);
                if done {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                t.out.push(scc);
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    let nodes: Vec<ModPath> = edges.keys().cloned().collect();
    for v in nodes {
        if !t.index.contains_key(&v) {
            visit(&mut t, &v);
        }
    }
    t.out
}

/// The shortest cycle through the component's first node, staying inside the component.
fn example_cycle(scc: &[ModPath], edges: &Edges) -> Vec<ModPath> {
    let inside: BTreeSet<&ModPath> = scc.iter().collect();
    let start = &scc[0];
    let mut from: BTreeMap<ModPath, ModPath> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.clone()]);
    while let Some(v) = queue.pop_front() {
        for w in edges.get(&v).into_iter().flat_map(|m| m.keys()) {
            if !inside.contains(w) {
                continue;
            }
            if w == start {
                let mut path = vec![v.clone()];
                while let Some(p) = from.get(path.last().unwrap()) {
                    path.push(p.clone());
                }
                path.reverse();
                return path;
            }
            if !from.contains_key(w) && w != start {
                from.insert(w.clone(), v.clone());
                queue.push_back(w.clone());
            }
        }
    }
    scc.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(files: &[(&str, &str)]) -> Graph {
        let map: BTreeMap<PathBuf, String> = files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect();
        read_crate(Path::new("src/lib.rs"), &|p| map.get(p).cloned()).unwrap()
    }

    fn names(g: &Graph) -> Vec<Vec<String>> {
        cycles(g).into_iter().map(|c| c.modules).collect()
    }

    #[test]
    fn one_way_imports_have_no_cycle() {
        let g = graph(&[
            ("src/lib.rs", "pub mod a; pub mod b; use crate::a::A;"),
            ("src/a.rs", "use crate::b::{B, c::C}; pub struct A;"),
            ("src/b/mod.rs", "pub mod c; pub struct B;"),
            (
                "src/b/c.rs",
                "pub struct C; fn f() -> super::B { super::B }",
            ),
        ]);
        assert!(
            g.edges
                .contains_key(&(vec!["a".into()], vec!["b".into(), "c".into()]))
        );
        assert!(
            g.edges
                .contains_key(&(vec!["b".into(), "c".into()], vec!["b".into()]))
        );
        assert_eq!(names(&g), Vec::<Vec<String>>::new());
    }

    #[test]
    fn two_modules_importing_each_other_are_a_cycle() {
        let g = graph(&[
            ("src/lib.rs", "mod a; mod b;"),
            ("src/a.rs", "use crate::b::B;\npub struct A;"),
            (
                "src/b.rs",
                "pub struct B;\nfn f() { let _ = format!(\"{}\", crate::a::A); }",
            ),
        ]);
        let found = cycles(&g);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].modules, ["crate::a", "crate::b"]);
        assert_eq!(found[0].edges[0], "crate::a -> crate::b (src/a.rs:1)");
        assert_eq!(found[0].edges[1], "crate::b -> crate::a (src/b.rs:2)");
    }

    #[test]
    fn folders_importing_each_other_are_a_cycle_though_their_files_are_not() {
        let g = graph(&[
            ("src/lib.rs", "mod x; mod y;"),
            ("src/x/mod.rs", "mod one; mod two;"),
            ("src/x/one.rs", "use crate::y::three::T;"),
            ("src/x/two.rs", "pub struct U;"),
            ("src/y/mod.rs", "pub mod three;"),
            (
                "src/y/three.rs",
                "pub struct T; use super::super::x::two::U;",
            ),
        ]);
        assert_eq!(names(&g), [["crate::x", "crate::y"]]);
    }

    #[test]
    fn a_child_using_its_parents_items_while_the_parent_uses_it_is_a_cycle() {
        let g = graph(&[
            ("src/lib.rs", "mod p;"),
            ("src/p.rs", "mod c; pub use c::C; pub struct Opts;"),
            ("src/p/c.rs", "use super::Opts; pub struct C;"),
        ]);
        assert_eq!(names(&g), [["crate::p", "crate::p::c"]]);
    }

    #[test]
    fn test_code_is_not_counted() {
        let g = graph(&[
            ("src/lib.rs", "mod a; mod b;"),
            ("src/a.rs", "use crate::b::B; pub struct A;"),
            (
                "src/b.rs",
                "pub struct B;\n#[cfg(test)]\nmod tests { use crate::a::A; }\n#[test]\nfn t() { crate::a::A; }",
            ),
        ]);
        assert_eq!(names(&g), Vec::<Vec<String>>::new());
    }
}
