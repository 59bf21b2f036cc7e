//! Invariants of planning on random DAGs, whatever the seeds and batch size:
//! - a batch never exceeds `max_parallel`;
//! - every planned ancestor of an image is in an earlier batch (waves only depend backwards);
//! - with cascade, the plan is exactly the seeds plus all their descendants; without, the seeds;
//! - each image appears once; seeds keep their own reason, others name a planned parent.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;

use kiln_plan::{ImageGraph, PlanOptions, Reason, plan};
use proptest::prelude::*;

fn dag() -> impl Strategy<Value = Vec<Vec<usize>>> {
    (1usize..60).prop_flat_map(|n| {
        // Node i may only have parents < i, which makes any choice acyclic.
        (0..n)
            .map(|i| proptest::collection::vec(0..i.max(1), 0..=(i.min(3))))
            .collect::<Vec<_>>()
            .prop_map(|ps| {
                ps.into_iter()
                    .enumerate()
                    .map(|(i, p)| p.into_iter().filter(|&x| x < i).collect())
                    .collect()
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn plans_respect_dependencies_and_batches(
        parents in dag(),
        seed_bits in proptest::collection::vec(any::<bool>(), 60),
        max in 1usize..5,
        cascade in any::<bool>(),
    ) {
        let n = parents.len();
        let names: Vec<String> = (0..n).map(|i| format!("img-{i:02}")).collect();
        let graph = ImageGraph::new(names.iter().enumerate().map(|(i, name)| {
            (name.clone(), parents[i].iter().map(|&p| names[p].clone()).collect::<Vec<_>>())
        })).unwrap();
        let seeds: Vec<(usize, Reason)> = (0..n)
            .filter(|&i| seed_bits[i])
            .map(|i| (graph.index_of(&names[i]).unwrap(), Reason::Changed))
            .collect();
        let opts = PlanOptions { cascade, max_parallel: NonZeroUsize::new(max) };
        let p = plan(&graph, &seeds, opts);

        let mut batch_of: HashMap<&str, usize> = HashMap::new();
        for (b, img) in p.iter() {
            prop_assert!(batch_of.insert(img.image.as_str(), b).is_none(), "{} twice", img.image);
        }
        for b in &p.batches {
            prop_assert!(!b.images.is_empty() && b.images.len() <= max);
        }
        let mut expected: HashSet<usize> = seeds.iter().map(|(i, _)| *i).collect();
        if cascade {
            for (i, _) in &seeds {
                expected.extend(graph.descendants(*i));
            }
        }
        let got: HashSet<usize> = batch_of.keys().map(|n| graph.index_of(n).unwrap()).collect();
        prop_assert_eq!(&got, &expected);

        for (b, img) in p.iter() {
            let i = graph.index_of(&img.image).unwrap();
            // Every planned ancestor (not just parents) comes strictly earlier.
            let mut stack: Vec<usize> = graph.parents(i).to_vec();
            let mut seen = HashSet::new();
            while let Some(a) = stack.pop() {
                if !seen.insert(a) { continue; }
                if let Some(&ab) = batch_of.get(graph.name(a)) {
                    prop_assert!(ab < b, "{} (batch {ab}) not before {} (batch {b})", graph.name(a), img.image);
                }
                stack.extend(graph.parents(a));
            }
            match &img.reason {
                Reason::Changed => prop_assert!(seeds.iter().any(|(s, _)| *s == i)),
                Reason::Parent(p) => {
                    let pi = graph.index_of(p).unwrap();
                    prop_assert!(graph.parents(i).contains(&pi) && batch_of.contains_key(p.as_str()));
                }
                other => prop_assert!(false, "unexpected reason {other}"),
            }
        }
        // Batches of one wave are contiguous and waves increase.
        let waves: Vec<usize> = p.batches.iter().map(|b| b.wave).collect();
        prop_assert!(waves.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1));
    }
}
