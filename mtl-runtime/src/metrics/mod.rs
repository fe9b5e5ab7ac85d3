//! Evaluation metrics: the exact [`auc`] and the streaming per-task accumulator ([`stream`]).
//!
//! [`auc`] is the exact ROC AUC: rank-based, with tied scores counted as half-correct (the
//! Mann–Whitney statistic). Merlin/Keras approximate AUC with 200 fixed thresholds; on the same
//! scores the two agree to about 1e-3, and the exact value is what a brute-force pairwise count
//! gives.

#[cfg(feature = "engine")]
pub mod stream;

/// Exact ROC AUC of `scores` against `labels` (1 = positive, 0 = negative; a fractional label
/// counts as that fraction of a positive), optionally weighting each row. Ties in `scores`
/// count half; infinite scores rank as the extremes they are. `None` when AUC is undefined: the
/// (weighted) positives or negatives are empty, or a score is NaN (a model that blew up).
pub fn auc(scores: &[f32], labels: &[f32], weights: Option<&[f32]>) -> Option<f64> {
    assert_eq!(
        scores.len(),
        labels.len(),
        "scores and labels differ in length"
    );
    if let Some(w) = weights {
        assert_eq!(w.len(), scores.len(), "weights and scores differ in length");
    }
    if scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| scores[a as usize].total_cmp(&scores[b as usize]));
    let (mut neg_below, mut total_pos, mut area) = (0.0f64, 0.0f64, 0.0f64);
    let mut i = 0;
    while i < order.len() {
        // One group of tied scores.
        let s = scores[order[i] as usize];
        let (mut pos, mut neg) = (0.0f64, 0.0f64);
        while i < order.len() && scores[order[i] as usize] == s {
            let r = order[i] as usize;
            let w = weights.map_or(1.0, |w| f64::from(w[r]));
            let y = f64::from(labels[r]);
            pos += w * y;
            neg += w * (1.0 - y);
            i += 1;
        }
        area += pos * (neg_below + 0.5 * neg);
        neg_below += neg;
        total_pos += pos;
    }
    (total_pos > 0.0 && neg_below > 0.0).then(|| area / (total_pos * neg_below))
}

#[cfg(test)]
mod tests {
    use super::auc;

    fn brute_force(scores: &[f32], labels: &[f32]) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for (i, &si) in scores.iter().enumerate() {
            for (j, &sj) in scores.iter().enumerate() {
                if labels[i] == 1.0 && labels[j] == 0.0 {
                    den += 1.0;
                    num += if si > sj {
                        1.0
                    } else if si == sj {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        num / den
    }

    #[test]
    fn matches_a_pairwise_count_with_ties() {
        let scores = [0.1, 0.4, 0.4, 0.8, 0.3, 0.4, 0.9, 0.1];
        let labels = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0];
        let exact = auc(&scores, &labels, None).unwrap();
        assert!((exact - brute_force(&scores, &labels)).abs() < 1e-12);
        assert_eq!(auc(&[0.5; 4], &[0.0, 1.0, 0.0, 1.0], None), Some(0.5));
        assert_eq!(auc(&[0.5; 2], &[1.0, 1.0], None), None);
    }

    #[test]
    fn non_finite_scores_terminate() {
        let labels = [0.0, 1.0, 0.0, 1.0];
        assert_eq!(auc(&[0.1, f32::NAN, 0.3, 0.9], &labels, None), None);
        assert_eq!(auc(&[f32::NAN; 4], &labels, None), None);
        let inf = [f32::NEG_INFINITY, f32::INFINITY, 0.0, f32::INFINITY];
        assert_eq!(auc(&inf, &labels, None), Some(1.0));
    }

    #[test]
    fn zero_weights_remove_rows() {
        let scores = [0.1, 0.9, 0.2, 0.8];
        let labels = [0.0, 1.0, 1.0, 0.0];
        let w = [1.0, 1.0, 0.0, 0.0];
        assert_eq!(auc(&scores, &labels, Some(&w)), Some(1.0));
        assert_eq!(auc(&scores, &labels, None), Some(0.75));
    }
}
