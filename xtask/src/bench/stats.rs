//! The arithmetic of a comparison: medians over rounds, per-round ratios and differences.

/// The median of `values` (the mean of the middle two for an even count); `NaN` when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

/// `numerator / denominator`, or `NaN` when the denominator is zero.
pub fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator == 0.0 {
        f64::NAN
    } else {
        numerator / denominator
    }
}

/// The median over rounds of `a[i] / b[i]`: each round's pair ran back to back, so it shares that
/// moment's noise, which the ratio cancels.
pub fn median_ratio(a: &[f64], b: &[f64]) -> f64 {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| ratio(*a, *b)).collect();
    median(&ratios)
}

/// The median over rounds of `a[i] - b[i]`.
pub fn median_difference(a: &[f64], b: &[f64]) -> f64 {
    let differences: Vec<f64> = a.iter().zip(b).map(|(a, b)| a - b).collect();
    median(&differences)
}

/// The `percent` percentile (nearest rank) of `values`; `NaN` when empty.
pub fn percentile(values: &[f64], percent: f64) -> f64 {
    let mut sorted = values.to_vec();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_middle_two() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn one_outlier_round_does_not_move_the_median() {
        assert_eq!(median(&[100.0, 101.0, 5.0, 99.0, 102.0]), 100.0);
    }

    #[test]
    fn ratios_are_taken_round_by_round_before_the_median() {
        // Round 2 ran on a slow moment for both sides: its ratio is still 0.8.
        let api = [800.0, 400.0, 820.0];
        let direct = [1000.0, 500.0, 1000.0];
        assert_eq!(median_ratio(&api, &direct), 0.8);
        assert_eq!(median_difference(&[3.0, 5.0, 4.0], &[1.0, 1.0, 1.0]), 3.0);
    }

    #[test]
    fn a_ratio_to_zero_is_not_a_number() {
        assert!(ratio(1.0, 0.0).is_nan());
        assert_eq!(ratio(3.0, 4.0), 0.75);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 100.0), 100.0);
        assert_eq!(percentile(&[5.0], 0.0), 5.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
