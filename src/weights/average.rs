//! The mean of several networks of one architecture, tensor by tensor (a "model soup",
//! Wortsman et al. 2022): runs continued from one parent stay in one basin, and the mean of
//! their generators often draws better than either (FID lower than each part's).

use super::{Part, WeightsError};

/// The element-wise mean of `parts` (same tensor names and shapes, in any order; the sum is
/// taken in f64). Batch-norm statistics are averaged like the weights.
pub fn average(parts: &[Part]) -> Result<Part, WeightsError> {
    let (first, others) = parts
        .split_first()
        .ok_or_else(|| WeightsError::Internal("nothing to average".into()))?;
    let mut tensors = Vec::with_capacity(first.tensors.len());
    for (name, shape, values) in &first.tensors {
        let mut sum: Vec<f64> = values.iter().map(|&v| v as f64).collect();
        for other in others {
            let (_, other_shape, other_values) = (other.tensors.iter())
                .find(|(n, _, _)| n == name)
                .ok_or_else(|| WeightsError::MissingTensor(name.clone()))?;
            if other_shape != shape {
                return Err(WeightsError::WrongShape {
                    tensor: name.clone(),
                    expected: shape.clone(),
                    found: other_shape.clone(),
                });
            }
            sum.iter_mut()
                .zip(other_values)
                .for_each(|(s, &v)| *s += v as f64);
        }
        let count = parts.len() as f64;
        let mean = sum.iter().map(|s| (s / count) as f32).collect();
        tensors.push((name.clone(), shape.clone(), mean));
    }
    if let Some(extra) = (others.iter().flat_map(|p| &p.tensors))
        .find(|(n, _, _)| !first.tensors.iter().any(|(f, _, _)| f == n))
    {
        return Err(WeightsError::UnexpectedTensor(extra.0.clone()));
    }
    Ok(Part {
        tensors,
        delta: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Part {
        Part {
            tensors: (tensors.iter())
                .map(|(n, s, v)| (n.to_string(), s.clone(), v.clone()))
                .collect(),
            delta: None,
        }
    }

    #[test]
    fn the_mean_is_taken_per_value_whatever_the_order() {
        let a = part(&[
            ("g.w", vec![2], vec![1.0, 2.0]),
            ("g.b", vec![1], vec![0.0]),
        ]);
        let b = part(&[
            ("g.b", vec![1], vec![3.0]),
            ("g.w", vec![2], vec![3.0, -2.0]),
        ]);
        let mean = average(&[a, b]).unwrap();
        assert_eq!(
            mean.tensors,
            vec![
                ("g.w".to_string(), vec![2], vec![2.0, 0.0]),
                ("g.b".to_string(), vec![1], vec![1.5]),
            ]
        );
    }

    #[test]
    fn other_architectures_are_refused_by_name() {
        let a = part(&[("g.w", vec![2], vec![1.0, 2.0])]);
        let wide = part(&[("g.w", vec![3], vec![1.0, 2.0, 3.0])]);
        let other = part(&[("g.v", vec![2], vec![1.0, 2.0])]);
        let more = part(&[
            ("g.w", vec![2], vec![1.0, 2.0]),
            ("g.x", vec![1], vec![0.0]),
        ]);
        assert!(matches!(
            average(&[part(&[("g.w", vec![2], vec![0.0; 2])]), wide]),
            Err(WeightsError::WrongShape { tensor, .. }) if tensor == "g.w"
        ));
        assert_eq!(
            average(&[part(&[("g.w", vec![2], vec![0.0; 2])]), other]).err(),
            Some(WeightsError::MissingTensor("g.w".into()))
        );
        assert_eq!(
            average(&[a, more]).err(),
            Some(WeightsError::UnexpectedTensor("g.x".into()))
        );
    }
}
