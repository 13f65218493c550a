//! Operations on a network's parameters that burn leaves to the user: an optimizer step on
//! whichever family a run trains, WGAN weight clipping, the generator's moving average, and
//! the parameter ids that tie optimizer state to parameters across a resume.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Gradients, Tensor, TensorData};

use super::collective::{Collective, average};

use crate::model::{ModuleInspect, ModuleTransform};

/// One optimizer step on the parameters of the module it is applied to, except `frozen` ones;
/// with `ranks`, on the gradients averaged over every rank of a data-parallel job.
pub struct OptimizerStep<'a> {
    pub optimizer: &'a mut ModuleOptimizer,
    pub learning_rate: f64,
    pub gradients: Option<Gradients>,
    pub frozen: &'a [ParamId],
    pub ranks: Option<&'a dyn Collective>,
}

impl ModuleTransform for OptimizerStep<'_> {
    fn apply<M: Module>(&mut self, module: M) -> M {
        let mut gradients = self.gradients.take().expect("one step per gradient set");
        let gradients = match self.frozen.is_empty() {
            true => GradientsParams::from_grads(gradients, &module),
            false => {
                let mut ids = ParamIds::default();
                ids.inspect(&module);
                let trainable: Vec<ParamId> = (ids.0.into_iter().map(ParamId::from))
                    .filter(|id| !self.frozen.contains(id))
                    .collect();
                GradientsParams::from_params(&mut gradients, &module, &trainable)
            }
        };
        let gradients = match self.ranks {
            Some(ranks) => average_gradients(&module, gradients, ranks),
            None => gradients,
        };
        self.optimizer.step(self.learning_rate, module, gradients)
    }
}

/// A network's gradients averaged over the ranks: packed into one buffer in the module's
/// visiting order (the same on every rank), one all-reduce, unpacked.
pub fn average_gradients<M: Module>(
    module: &M,
    mut gradients: GradientsParams,
    ranks: &dyn Collective,
) -> GradientsParams {
    let mut taken = TakeGradients {
        gradients: &mut gradients,
        ids: Vec::new(),
        flat: Vec::new(),
    };
    module.visit(&mut taken);
    let (ids, flat) = (taken.ids, taken.flat);
    if flat.is_empty() {
        return gradients;
    }
    let device = flat[0].device();
    let mut values = Tensor::cat(flat, 0)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 after convert");
    average(ranks, &mut values);
    let mut put = PutGradients {
        gradients: &mut gradients,
        values: &values,
        taken: ids.into_iter().peekable(),
        device,
    };
    module.visit(&mut put);
    gradients
}

/// Removes each trainable parameter's gradient, flattened, in visiting order, noting its id
/// and length.
struct TakeGradients<'a> {
    gradients: &'a mut GradientsParams,
    ids: Vec<(ParamId, usize)>,
    flat: Vec<Tensor<1>>,
}

impl ModuleVisitor for TakeGradients<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(gradient) = self.gradients.remove::<D>(param.id) {
            let count = gradient.shape().num_elements();
            self.ids.push((param.id, count));
            self.flat.push(gradient.reshape([count]));
        }
    }
}

/// Gives each parameter [`TakeGradients`] took its averaged gradient, in the same order.
struct PutGradients<'a> {
    gradients: &'a mut GradientsParams,
    values: &'a [f32],
    taken: std::iter::Peekable<std::vec::IntoIter<(ParamId, usize)>>,
    device: Device,
}

impl ModuleVisitor for PutGradients<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some((_, count)) = self.taken.next_if(|(id, _)| *id == param.id) else {
            return;
        };
        let (head, rest) = self.values.split_at(count);
        self.values = rest;
        let dims = param.val().dims();
        let tensor = Tensor::<1>::from_data(TensorData::new(head.to_vec(), [count]), &self.device);
        self.gradients.register::<D>(param.id, tensor.reshape(dims));
    }
}

/// Whether a visited tensor is a batch-norm running statistic (a buffer, not a weight).
fn is_buffer(path: &[String]) -> bool {
    matches!(
        path.last().map(String::as_str),
        Some("running_mean" | "running_var")
    )
}

/// WGAN weight clipping: every weight (not batch-norm statistics) into [-c, c].
pub struct Clip {
    pub bound: f64,
    path: Vec<String>,
}

impl Clip {
    pub fn new(bound: f64) -> Self {
        Self {
            bound,
            path: Vec::new(),
        }
    }
}

impl ModuleTransform for Clip {
    fn apply<M: Module>(&mut self, module: M) -> M {
        module.map(self)
    }
}

impl ModuleMapper for Clip {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if is_buffer(&self.path) {
            return param;
        }
        let bound = self.bound;
        // A new leaf, not a node of the step's (already consumed) graph.
        param.map(|t| {
            let tracked = t.is_require_grad();
            let clipped = t.clamp(-bound, bound).detach();
            if tracked {
                clipped.require_grad()
            } else {
                clipped
            }
        })
    }
}

/// Weights tracked again in a frozen module: they train while its batch norm keeps using (and
/// never updates) its running statistics (pivotal tuning of a generator for one picture).
#[derive(Default)]
pub struct TrainWeightsOnly {
    path: Vec<String>,
}

impl ModuleTransform for TrainWeightsOnly {
    fn apply<M: Module>(&mut self, module: M) -> M {
        module.map(self)
    }
}

impl ModuleMapper for TrainWeightsOnly {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match is_buffer(&self.path) {
            true => param,
            false => param.set_require_grad(true),
        }
    }
}

pub use crate::model::ParamIds;

/// Gives a module's tensors the ids in `ids` (as [`ParamIds`] collected them).
pub struct AssignIds {
    ids: std::vec::IntoIter<u64>,
}

impl AssignIds {
    pub fn new(ids: Vec<u64>) -> Self {
        Self {
            ids: ids.into_iter(),
        }
    }
}

impl ModuleTransform for AssignIds {
    fn apply<M: Module>(&mut self, module: M) -> M {
        module.map(self)
    }
}

impl ModuleMapper for AssignIds {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match self.ids.next() {
            Some(id) => {
                let (_, value, mapper) = param.consume();
                Param::from_mapped_value(ParamId::from(id), value, mapper)
            }
            None => param,
        }
    }
}

/// Every tensor of a module, flattened, in visiting order.
#[derive(Default)]
pub struct Values(pub Vec<Tensor<1>>);

impl ModuleInspect for Values {
    fn inspect<M: Module>(&mut self, module: &M) {
        module.visit(self);
    }
}

impl ModuleVisitor for Values {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let count = value.shape().num_elements();
        self.0.push(value.reshape([count]));
    }
}

/// Moves each tensor of a module towards the matching tensor of `Values`:
/// `average ← decay · average + (1 − decay) · value`. Applied to the generator's EMA copy.
pub struct MovingAverage {
    pub decay: f64,
    values: std::vec::IntoIter<Tensor<1>>,
}

impl MovingAverage {
    pub fn new(decay: f64, values: Values) -> Self {
        Self {
            decay,
            values: values.0.into_iter(),
        }
    }
}

impl ModuleTransform for MovingAverage {
    fn apply<M: Module>(&mut self, module: M) -> M {
        module.map(self)
    }
}

impl ModuleMapper for MovingAverage {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let value = self.values.next().expect("same architecture");
        let decay = self.decay;
        param.map(|average| {
            let value = value.reshape(average.dims());
            average * decay + value * (1.0 - decay)
        })
    }
}

/// Every tensor [`Values`] listed, read back in one transfer. Async because a browser's GPU
/// reads no other way; natively it returns at once.
pub async fn read_values(values: Values) -> Result<Vec<Vec<f32>>, String> {
    let lengths: Vec<usize> = values.0.iter().map(|t| t.dims()[0]).collect();
    if lengths.is_empty() {
        return Ok(Vec::new());
    }
    let data = Tensor::cat(values.0, 0)
        .into_data_async()
        .await
        .map_err(|e| format!("reading the weights back failed: {e:?}"))?;
    let flat = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("reading the weights back failed: {e:?}"))?;
    let mut rest = flat.as_slice();
    Ok(lengths
        .into_iter()
        .map(|n| {
            let (head, tail) = rest.split_at(n);
            rest = tail;
            head.to_vec()
        })
        .collect())
}

/// Gives a module's tensors the values [`read_values`] returned (same visiting order), on the
/// module's own device: how a copy of a GPU network is built on the CPU.
pub struct Replace {
    values: std::vec::IntoIter<Vec<f32>>,
}

impl Replace {
    pub fn new(values: Vec<Vec<f32>>) -> Self {
        Self {
            values: values.into_iter(),
        }
    }
}

impl ModuleTransform for Replace {
    fn apply<M: Module>(&mut self, module: M) -> M {
        module.map(self)
    }
}

impl ModuleMapper for Replace {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let values = self.values.next().expect("same architecture");
        param.map(|t| Tensor::from_data(TensorData::new(values, t.shape()), &t.device()))
    }
}
