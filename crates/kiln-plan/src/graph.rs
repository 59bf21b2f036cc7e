//! The image graph: parent → child edges between images, in a topological order.
//!
//! Built from names rather than from a [`kiln_spec::Factory`] so the planner can be benchmarked
//! and property-tested on generated graphs; [`ImageGraph::from_factory`] is the usual entry.
//! Nodes are dense indices so planning a 10,000-image factory touches only vectors.

use std::collections::HashMap;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum GraphError {
    #[error("image `{0}` is listed twice")]
    Duplicate(String),
    #[error("image `{child}` names an unknown parent `{parent}`")]
    UnknownParent { child: String, parent: String },
    #[error("dependency cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct ImageGraph {
    names: Vec<String>,
    index: HashMap<String, usize>,
    parents: Vec<Vec<usize>>,
    children: Vec<Vec<usize>>,
    /// Every node after all of its parents.
    topo: Vec<usize>,
}

impl ImageGraph {
    /// Builds the graph from `(image, parents)` pairs; refuses duplicates, dangling parents and
    /// cycles, so every `ImageGraph` is a DAG.
    pub fn new<I, P>(nodes: I) -> Result<Self, GraphError>
    where
        I: IntoIterator<Item = (String, P)>,
        P: IntoIterator<Item = String>,
    {
        let nodes: Vec<(String, Vec<String>)> = nodes
            .into_iter()
            .map(|(n, p)| (n, p.into_iter().collect()))
            .collect();
        let mut index = HashMap::with_capacity(nodes.len());
        for (i, (name, _)) in nodes.iter().enumerate() {
            if index.insert(name.clone(), i).is_some() {
                return Err(GraphError::Duplicate(name.clone()));
            }
        }
        let mut parents = vec![Vec::new(); nodes.len()];
        let mut children = vec![Vec::new(); nodes.len()];
        for (i, (name, ps)) in nodes.iter().enumerate() {
            for p in ps {
                let Some(&pi) = index.get(p) else {
                    return Err(GraphError::UnknownParent {
                        child: name.clone(),
                        parent: p.clone(),
                    });
                };
                if !parents[i].contains(&pi) {
                    parents[i].push(pi);
                    children[pi].push(i);
                }
            }
        }
        let names: Vec<String> = nodes.into_iter().map(|(n, _)| n).collect();
        let topo = topological_order(&names, &parents, &children)?;
        Ok(ImageGraph {
            names,
            index,
            parents,
            children,
            topo,
        })
    }

    /// The graph of a validated factory (which cannot have cycles or dangling parents).
    pub fn from_factory(f: &kiln_spec::Factory) -> Result<Self, GraphError> {
        Self::new(f.images.values().map(|img| {
            (
                img.name.to_string(),
                img.parent_image().map(|p| p.to_string()),
            )
        }))
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    pub fn parents(&self, i: usize) -> &[usize] {
        &self.parents[i]
    }

    pub fn children(&self, i: usize) -> &[usize] {
        &self.children[i]
    }

    pub fn topo_order(&self) -> &[usize] {
        &self.topo
    }

    /// Every node reachable through child edges from `i`, excluding `i`.
    pub fn descendants(&self, i: usize) -> Vec<usize> {
        let mut seen = vec![false; self.len()];
        let mut stack = self.children[i].clone();
        let mut out = Vec::new();
        while let Some(n) = stack.pop() {
            if !std::mem::replace(&mut seen[n], true) {
                out.push(n);
                stack.extend(&self.children[n]);
            }
        }
        out
    }
}

/// Kahn's algorithm; what is left over lies on or behind a cycle, and one cycle is extracted from
/// it for the error.
fn topological_order(
    names: &[String],
    parents: &[Vec<usize>],
    children: &[Vec<usize>],
) -> Result<Vec<usize>, GraphError> {
    let mut indegree: Vec<usize> = parents.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = (0..names.len()).filter(|&i| indegree[i] == 0).collect();
    ready.reverse();
    let mut order = Vec::with_capacity(names.len());
    while let Some(n) = ready.pop() {
        order.push(n);
        for &c in &children[n] {
            indegree[c] -= 1;
            if indegree[c] == 0 {
                ready.push(c);
            }
        }
    }
    if order.len() == names.len() {
        return Ok(order);
    }
    // Walk parent edges among the leftovers until a node repeats: that loop is a cycle.
    let start = (0..names.len()).find(|&i| indegree[i] > 0).unwrap_or(0);
    let mut path = vec![start];
    let mut cur = start;
    while let Some(&next) = parents[cur].iter().find(|&&p| indegree[p] > 0) {
        if let Some(pos) = path.iter().position(|&n| n == next) {
            let mut ring: Vec<String> = path[pos..]
                .iter()
                .rev()
                .map(|&n| names[n].clone())
                .collect();
            ring.push(ring[0].clone());
            return Err(GraphError::Cycle(ring));
        }
        path.push(next);
        cur = next;
    }
    Err(GraphError::Cycle(vec![names[start].clone()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(edges: &[(&str, &[&str])]) -> Result<ImageGraph, GraphError> {
        ImageGraph::new(edges.iter().map(|(n, ps)| {
            (
                n.to_string(),
                ps.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            )
        }))
    }

    #[test]
    fn topological_order_puts_parents_first() {
        let graph = g(&[("c", &["b"]), ("b", &["a"]), ("a", &[])]).unwrap();
        let pos = |n: &str| {
            graph
                .topo_order()
                .iter()
                .position(|&i| graph.name(i) == n)
                .unwrap()
        };
        assert!(pos("a") < pos("b") && pos("b") < pos("c"));
        let mut d: Vec<&str> = graph
            .descendants(graph.index_of("a").unwrap())
            .into_iter()
            .map(|i| graph.name(i))
            .collect();
        d.sort_unstable();
        assert_eq!(d, ["b", "c"]);
    }

    #[test]
    fn cycles_are_rejected_with_the_ring() {
        let err = g(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("d", &["a"])]).unwrap_err();
        let GraphError::Cycle(ring) = err else {
            panic!("expected a cycle")
        };
        assert_eq!(ring.len(), 4);
        assert_eq!(ring.first(), ring.last());
        let mut members = ring[..3].to_vec();
        members.sort();
        assert_eq!(members, ["a", "b", "c"]);
        assert_eq!(
            g(&[("a", &["a"])]).unwrap_err(),
            GraphError::Cycle(vec!["a".into(), "a".into()])
        );
    }

    #[test]
    fn dangling_and_duplicate_names_are_rejected() {
        assert!(matches!(
            g(&[("a", &["zz"])]),
            Err(GraphError::UnknownParent { .. })
        ));
        assert!(matches!(
            g(&[("a", &[]), ("a", &[])]),
            Err(GraphError::Duplicate(_))
        ));
    }
}
