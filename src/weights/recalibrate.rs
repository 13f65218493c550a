//! Batch-norm statistics that match a generator's weights. A moving average of G (or a mean
//! of several generators) averages the running statistics along with the weights, but
//! statistics of averaged weights are not the average of the statistics; recomputing them
//! from the network's own activations (SWA's rule, Izmailov et al. 2018) fits them again.

use std::collections::BTreeMap;

use burn::tensor::Device;

use super::{Header, ModelFile, Part, StoredTensor, WeightsError};

/// `generator` (a part under the family's generator prefix, as `header` describes it) with
/// its batch-norm running statistics set to those of one batch of `portraits` seeded
/// portraits (the latent stream reserved for calibration, not any seed a user samples).
pub fn recalibrated(
    header: &Header,
    generator: Part,
    portraits: usize,
) -> Result<Part, WeightsError> {
    if portraits < 2 {
        return Err(WeightsError::BadConfig(
            "batch-norm statistics need at least 2 portraits".into(),
        ));
    }
    // The part's f32 values as a file holds them, without a round trip through bytes.
    let tensors = (generator.tensors.into_iter())
        .map(|(name, shape, values)| (name, StoredTensor { shape, values }))
        .collect();
    let file = ModelFile {
        header: header.clone(),
        tensors,
        training: None,
        state: BTreeMap::new(),
    };
    let mut network = file.generator(&Device::flex().autodiff())?;
    network.calibrate_batch_norm(portraits);
    Part::generator(&network, &header.model)
}
