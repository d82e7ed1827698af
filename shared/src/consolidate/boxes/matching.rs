//! Matching items across workers into clusters of at most one item per worker: boxes by IoU, and (as
//! one-pixel-high boxes) entity spans by the Jaccard index of their character ranges. Shared by
//! [`super`] and [`crate::consolidate::spans`].
//!
//! Workers are taken in order of weight; each worker's items are matched to the current cluster centres by
//! an optimal assignment ([`kuhn_munkres`]) over the pairs that overlap enough, solved per connected
//! component of the "could match" graph, so the cubic solver only ever sees the few items that really
//! compete (in a typical image every component is one pair and no solver runs at all). Refinement passes
//! then re-match every worker against the previous pass's robust centres, held fixed, until the clusters
//! stop changing. Clusters live in one flat list and buffers are reused across workers: this runs once
//! per object, thousands of times per batch.

use std::cell::RefCell;

use pathfinding::prelude::{Matrix, kuhn_munkres};

use crate::consolidate::crowd::weighted_median;

/// Largest component (smaller side) solved optimally; bigger ones are matched greedily, best pairs first.
const MAX_OPTIMAL_COMPONENT: usize = 48;

/// Axis-aligned rectangle by its edges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rect {
    pub(crate) left: f64,
    pub(crate) top: f64,
    pub(crate) right: f64,
    pub(crate) bottom: f64,
}

impl Rect {
    pub(crate) fn from_xywh(left: f64, top: f64, width: f64, height: f64) -> Self {
        Self {
            left,
            top,
            right: left + width,
            bottom: top + height,
        }
    }

    fn area(&self) -> f64 {
        (self.right - self.left).max(0.0) * (self.bottom - self.top).max(0.0)
    }

    /// Intersection over union; 0 for disjoint or empty boxes.
    pub(crate) fn iou(&self, other: &Rect) -> f64 {
        let width = self.right.min(other.right) - self.left.max(other.left);
        let height = self.bottom.min(other.bottom) - self.top.max(other.top);
        if width <= 0.0 || height <= 0.0 {
            return 0.0;
        }
        let intersection = width * height;
        let union = self.area() + other.area() - intersection;
        if union > 0.0 {
            intersection / union
        } else {
            0.0
        }
    }
}

/// A usable item of a usable worker, ready for matching.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    /// Index into the usable workers.
    pub(crate) worker: usize,
    /// Position among that worker's candidates.
    pub(crate) item: usize,
    pub(crate) rect: Rect,
    /// Index into the class table.
    pub(crate) class: usize,
}

/// How [`cluster_candidates`] matches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatchParams {
    /// Least IoU (Jaccard) of a matching pair.
    pub(crate) min_overlap: f64,
    /// Added to a pair's score when the classes agree (a tie-breaker among overlapping items).
    pub(crate) same_label_bonus: f64,
    /// Re-matching passes against fixed robust centres.
    pub(crate) refinement_passes: usize,
}

/// A cluster's centre as the matcher sees it.
#[derive(Debug, Clone, Copy)]
struct Centre {
    rect: Rect,
    class: usize,
}

/// Clusters in one flat list: cluster `i` is `members[starts[i]..starts[i + 1]]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Clusters {
    members: Vec<Candidate>,
    starts: Vec<usize>,
}

impl Clusters {
    /// Number of clusters.
    pub(crate) fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// The members of cluster `index`.
    pub(crate) fn get(&self, index: usize) -> &[Candidate] {
        match (self.starts.get(index), self.starts.get(index + 1)) {
            (Some(&start), Some(&end)) => self.members.get(start..end).unwrap_or_default(),
            _ => &[],
        }
    }

    /// Every cluster's members.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[Candidate]> {
        (0..self.len()).map(|index| self.get(index))
    }
}

/// Buffers reused by the passes of a clustering, and by the next clustering on the same thread.
#[derive(Debug, Default)]
struct Scratch {
    edges: Vec<(usize, usize, f64)>,
    centre_degree: Vec<u32>,
    item_degree: Vec<u32>,
    result: Vec<Option<usize>>,
    centres: Vec<Centre>,
    sums: Vec<[f64; 5]>,
    cluster_of: Vec<usize>,
    next_slot: Vec<usize>,
    order: Vec<usize>,
    offsets: Vec<usize>,
    /// Whether the current pass met a choice: an item that could match several centres (or a centre
    /// several items), or an item overlapping a centre too little to match it.
    ambiguous: bool,
}

/// Groups the candidates (one list per worker) into clusters of at most one item per worker.
pub(crate) fn cluster_candidates(
    candidates: &[Vec<Candidate>],
    weights: &[f64],
    params: MatchParams,
) -> Clusters {
    // The buffers of the last clustering on this thread are reused: consolidation runs once per object,
    // thousands of times per batch, and most of its allocations would otherwise be these.
    thread_local! {
        static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => cluster_with(candidates, weights, params, &mut scratch),
        Err(_) => cluster_with(candidates, weights, params, &mut Scratch::default()),
    })
}

fn cluster_with(
    candidates: &[Vec<Candidate>],
    weights: &[f64],
    params: MatchParams,
    scratch: &mut Scratch,
) -> Clusters {
    // Heaviest first, then as given; the refinement passes undo most of the order's influence.
    let mut order = std::mem::take(&mut scratch.order);
    order.clear();
    order.extend(0..candidates.len());
    order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
    let mut offsets = std::mem::take(&mut scratch.offsets);
    offsets.clear();
    offsets.push(0);
    for items in candidates {
        offsets.push(offsets.last().copied().unwrap_or(0) + items.len());
    }

    let mut clusters = match_workers(candidates, &offsets, &order, weights, &[], params, scratch);
    // When every item of the first pass either matched the one centre it overlapped or overlapped none at
    // all, the order of the workers decided nothing and there is nothing to refine.
    if scratch.ambiguous {
        for _ in 0..params.refinement_passes {
            let anchors: Vec<Centre> = clusters
                .iter()
                .filter_map(|members| {
                    Some(Centre {
                        rect: robust_centre(members, weights)?,
                        class: vote_class(members, weights).0,
                    })
                })
                .collect();
            let refined = match_workers(
                candidates, &offsets, &order, weights, &anchors, params, scratch,
            );
            let unchanged = same_clusters(&clusters, &refined, &offsets);
            clusters = refined;
            if unchanged {
                break;
            }
        }
    }
    scratch.order = order;
    scratch.offsets = offsets;
    clusters
}

/// One matching pass: every worker in `order` is matched against the clusters so far. Clusters start from
/// `anchors` (fixed centres), if any; clusters opened during the pass follow their members' weighted mean
/// and keep their first member's class for the same-label bonus.
fn match_workers(
    candidates: &[Vec<Candidate>],
    offsets: &[usize],
    order: &[usize],
    weights: &[f64],
    anchors: &[Centre],
    params: MatchParams,
    scratch: &mut Scratch,
) -> Clusters {
    scratch.ambiguous = false;
    let mut centres = std::mem::take(&mut scratch.centres);
    centres.clear();
    centres.extend_from_slice(anchors);
    // Weighted sums (weight, left, top, right, bottom) of the clusters opened during this pass.
    let mut sums = std::mem::take(&mut scratch.sums);
    sums.clear();
    sums.resize(anchors.len(), [0.0; 5]);
    let total = offsets.last().copied().unwrap_or(0);
    let mut cluster_of = std::mem::take(&mut scratch.cluster_of);
    cluster_of.clear();
    cluster_of.resize(total, usize::MAX);
    for &worker in order {
        let (Some(items), Some(&offset), Some(&weight)) = (
            candidates.get(worker),
            offsets.get(worker),
            weights.get(worker),
        ) else {
            continue;
        };
        if items.is_empty() {
            continue;
        }
        assign(&centres, items, params, scratch);
        for (index, candidate) in items.iter().enumerate() {
            let cluster = match scratch.result.get(index).copied().flatten() {
                Some(cluster) => cluster,
                None => {
                    centres.push(Centre {
                        rect: candidate.rect,
                        class: candidate.class,
                    });
                    sums.push([0.0; 5]);
                    centres.len() - 1
                }
            };
            if let Some(slot) = cluster_of.get_mut(offset + index) {
                *slot = cluster;
            }
            if cluster >= anchors.len() {
                let sum = &mut sums[cluster];
                sum[0] += weight;
                sum[1] += weight * candidate.rect.left;
                sum[2] += weight * candidate.rect.top;
                sum[3] += weight * candidate.rect.right;
                sum[4] += weight * candidate.rect.bottom;
                if sum[0] > 0.0 {
                    centres[cluster].rect = Rect {
                        left: sum[1] / sum[0],
                        top: sum[2] / sum[0],
                        right: sum[3] / sum[0],
                        bottom: sum[4] / sum[0],
                    };
                }
            }
        }
    }

    // Group by cluster (counting sort), dropping empty clusters.
    let mut first = std::mem::take(&mut scratch.next_slot);
    first.clear();
    first.resize(centres.len(), 0);
    for &cluster in &cluster_of {
        if let Some(count) = first.get_mut(cluster) {
            *count += 1;
        }
    }
    let mut starts = Vec::with_capacity(centres.len() + 1);
    let mut next = 0;
    for slot in first.iter_mut() {
        let count = *slot;
        *slot = next;
        if count > 0 {
            starts.push(next);
            next += count;
        }
    }
    starts.push(next);
    let mut members = vec![
        Candidate {
            worker: 0,
            item: 0,
            rect: Rect::from_xywh(0.0, 0.0, 0.0, 0.0),
            class: 0,
        };
        next
    ];
    for (worker, items) in candidates.iter().enumerate() {
        let offset = offsets.get(worker).copied().unwrap_or(0);
        for (index, candidate) in items.iter().enumerate() {
            let Some(&cluster) = cluster_of.get(offset + index) else {
                continue;
            };
            if let Some(position) = first.get_mut(cluster) {
                if let Some(slot) = members.get_mut(*position) {
                    *slot = *candidate;
                }
                *position += 1;
            }
        }
    }
    scratch.centres = centres;
    scratch.sums = sums;
    scratch.cluster_of = cluster_of;
    scratch.next_slot = first;
    Clusters { members, starts }
}

/// Whether two clusterings group the same candidates together (cluster order aside): each candidate is
/// mapped to the first member of its cluster, and the maps compared.
fn same_clusters(a: &Clusters, b: &Clusters, offsets: &[usize]) -> bool {
    let total = offsets.last().copied().unwrap_or(0);
    let representatives = |clusters: &Clusters| {
        let mut representative = vec![usize::MAX; total];
        for members in clusters.iter() {
            let key = |m: &Candidate| offsets.get(m.worker).map_or(0, |o| o + m.item);
            let first = members.iter().map(key).min().unwrap_or(0);
            for member in members {
                if let Some(slot) = representative.get_mut(key(member)) {
                    *slot = first;
                }
            }
        }
        representative
    };
    a.len() == b.len() && representatives(a) == representatives(b)
}

/// Optimal one-to-one assignment of a worker's items to cluster centres, into `scratch.result`: for each
/// item, its cluster or `None`. Only pairs with overlap ≥ `min_overlap` can match; the assignment maximises
/// the summed overlap (plus the same-label bonus), solved separately on each connected component of the
/// candidate-pair graph.
fn assign(centres: &[Centre], items: &[Candidate], params: MatchParams, scratch: &mut Scratch) {
    scratch.result.clear();
    scratch.result.resize(items.len(), None);
    scratch.edges.clear();
    for (b, candidate) in items.iter().enumerate() {
        for (c, centre) in centres.iter().enumerate() {
            let iou = centre.rect.iou(&candidate.rect);
            if iou > 0.0 && iou < params.min_overlap {
                scratch.ambiguous = true;
            }
            if iou >= params.min_overlap && iou > 0.0 {
                let bonus = if centre.class == candidate.class {
                    params.same_label_bonus.max(0.0)
                } else {
                    0.0
                };
                scratch.edges.push((c, b, iou + bonus));
            }
        }
    }
    if scratch.edges.is_empty() {
        return;
    }

    // Fast path: no centre and no item in two candidate pairs, so every pair is its own component.
    scratch.centre_degree.clear();
    scratch.centre_degree.resize(centres.len(), 0);
    scratch.item_degree.clear();
    scratch.item_degree.resize(items.len(), 0);
    for &(c, b, _) in &scratch.edges {
        scratch.centre_degree[c] += 1;
        scratch.item_degree[b] += 1;
    }
    if scratch
        .edges
        .iter()
        .all(|&(c, b, _)| scratch.centre_degree[c] == 1 && scratch.item_degree[b] == 1)
    {
        for &(c, b, _) in &scratch.edges {
            scratch.result[b] = Some(c);
        }
        return;
    }

    scratch.ambiguous = true;
    // Union-find over centres (0..C) and items (C..C+B).
    let offset = centres.len();
    let mut parent: Vec<usize> = (0..offset + items.len()).collect();
    fn find(parent: &mut [usize], mut node: usize) -> usize {
        while parent[node] != node {
            parent[node] = parent[parent[node]];
            node = parent[node];
        }
        node
    }
    for &(c, b, _) in &scratch.edges {
        let (root_c, root_b) = (find(&mut parent, c), find(&mut parent, offset + b));
        if root_c != root_b {
            parent[root_c] = root_b;
        }
    }
    let mut rooted: Vec<(usize, (usize, usize, f64))> = scratch
        .edges
        .iter()
        .map(|&edge| (find(&mut parent, edge.0), edge))
        .collect();
    rooted.sort_by_key(|&(root, (c, b, _))| (root, c, b));

    for group in rooted.chunk_by(|a, b| a.0 == b.0) {
        if let [(_, (c, b, _))] = group[..] {
            scratch.result[b] = Some(c);
            continue;
        }
        let mut rows: Vec<usize> = group.iter().map(|(_, e)| e.0).collect();
        rows.sort_unstable();
        rows.dedup();
        let mut columns: Vec<usize> = group.iter().map(|(_, e)| e.1).collect();
        columns.sort_unstable();
        columns.dedup();
        if rows.len().min(columns.len()) > MAX_OPTIMAL_COMPONENT {
            // A pile of mutually overlapping items (a worker stamping the same box a hundred times): the
            // cubic solver would cost seconds, so best pairs first.
            let mut pairs: Vec<(usize, usize, f64)> = group.iter().map(|&(_, edge)| edge).collect();
            pairs.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
            let mut centre_taken = vec![false; centres.len()];
            for (c, b, _) in pairs {
                if !centre_taken[c] && scratch.result[b].is_none() {
                    centre_taken[c] = true;
                    scratch.result[b] = Some(c);
                }
            }
            continue;
        }
        // kuhn_munkres needs rows ≤ columns: put the smaller side in the rows.
        let transposed = rows.len() > columns.len();
        let (row_ids, column_ids) = if transposed {
            (&columns, &rows)
        } else {
            (&rows, &columns)
        };
        let mut scores = Matrix::new(row_ids.len(), column_ids.len(), 0i64);
        for &(_, (c, b, score)) in group {
            let (row_id, column_id) = if transposed { (b, c) } else { (c, b) };
            let (Ok(row), Ok(column)) = (
                row_ids.binary_search(&row_id),
                column_ids.binary_search(&column_id),
            ) else {
                continue;
            };
            // Integer weights (kuhn_munkres needs an ordered type); scores are at most ~1.x.
            scores[(row, column)] = (score * 1_000_000.0).round() as i64;
        }
        let (_, chosen) = kuhn_munkres(&scores);
        for (row, &column) in chosen.iter().enumerate() {
            if scores[(row, column)] <= 0 {
                continue; // not a real candidate pair, only filler of the square problem
            }
            let (c, b) = if transposed {
                (column_ids[column], row_ids[row])
            } else {
                (row_ids[row], column_ids[column])
            };
            scratch.result[b] = Some(c);
        }
    }
}

/// Weighted mean of the members' edges (the first member's box if the weights are all zero).
pub(crate) fn mean_centre(members: &[Candidate], weights: &[f64]) -> Rect {
    let mut sums = [0.0f64; 4];
    let mut total = 0.0;
    for member in members {
        let weight = weights[member.worker];
        sums[0] += weight * member.rect.left;
        sums[1] += weight * member.rect.top;
        sums[2] += weight * member.rect.right;
        sums[3] += weight * member.rect.bottom;
        total += weight;
    }
    if total <= 0.0 {
        return members
            .first()
            .map_or(Rect::from_xywh(0.0, 0.0, 0.0, 0.0), |member| member.rect);
    }
    Rect {
        left: sums[0] / total,
        top: sums[1] / total,
        right: sums[2] / total,
        bottom: sums[3] / total,
    }
}

/// Weighted median of each edge (the mean for one or two members); `None` for an empty cluster or a
/// degenerate result.
pub(crate) fn robust_centre(members: &[Candidate], weights: &[f64]) -> Option<Rect> {
    if members.len() <= 2 {
        let rect = mean_centre(members, weights);
        return (!members.is_empty() && rect.right > rect.left && rect.bottom > rect.top)
            .then_some(rect);
    }
    // Clusters hold one item per worker: a stack buffer serves all but the largest crowds.
    let mut stack = [(0.0f64, 0.0f64); 16];
    let mut heap = Vec::new();
    let values: &mut [(f64, f64)] = if members.len() <= stack.len() {
        &mut stack[..members.len()]
    } else {
        heap.resize(members.len(), (0.0, 0.0));
        &mut heap
    };
    let mut edge = |pick: fn(&Rect) -> f64| {
        for (value, member) in values.iter_mut().zip(members) {
            *value = (pick(&member.rect), weights[member.worker]);
        }
        weighted_median(values)
    };
    let rect = Rect {
        left: edge(|r| r.left)?,
        top: edge(|r| r.top)?,
        right: edge(|r| r.right)?,
        bottom: edge(|r| r.bottom)?,
    };
    (rect.right > rect.left && rect.bottom > rect.top).then_some(rect)
}

/// The winning class (weighted, ties to the smaller id) and its share of the members' weight.
pub(crate) fn vote_class(members: &[Candidate], weights: &[f64]) -> (usize, f64) {
    let mut best: Option<(usize, f64)> = None;
    let mut total = 0.0;
    for (index, member) in members.iter().enumerate() {
        total += weights[member.worker];
        // Each class is tallied once, at its first member.
        if members[..index].iter().any(|m| m.class == member.class) {
            continue;
        }
        let tally: f64 = members[index..]
            .iter()
            .filter(|m| m.class == member.class)
            .map(|m| weights[m.worker])
            .sum();
        let better = match best {
            None => true,
            Some((class, weight)) => tally > weight || (tally == weight && member.class < class),
        };
        if better {
            best = Some((member.class, tally));
        }
    }
    match best {
        Some((class, weight)) if total > 0.0 => (class, weight / total),
        Some((class, _)) => (class, 0.0),
        None => (0, 0.0),
    }
}
