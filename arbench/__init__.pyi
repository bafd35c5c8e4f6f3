# The public API of arbench: everything a plugin imports, declared once. `__init__.py`
# loads each name from its module on first use (lazy_loader reads this file), so
# `import arbench` costs nothing and `arbench --help` never imports torch.
from .errors import CheckpointError as CheckpointError
from .errors import ContractViolation as ContractViolation
from .errors import Incompatible as Incompatible
from .errors import ParameterError as ParameterError
from .errors import TooLarge as TooLarge

# network calls counted by arbench: what a method costs, and a sampler's own draft's counter
from .plugin.calls import free as free
from .plugin.calls import network_call as network_call
from .plugin.calls import one_position as one_position
from .plugin.calls import returns_cache as returns_cache
from .plugin.calls import returns_model as returns_model

# what samplers may ask of models, and the mixins that provide it
from .plugin.capabilities import CausalConditionals as CausalConditionals
from .plugin.capabilities import CausalLogits as CausalLogits
from .plugin.capabilities import ImageFeatures as ImageFeatures
from .plugin.capabilities import InOrder as InOrder
from .plugin.capabilities import Logits as Logits
from .plugin.capabilities import NoiseConditioned as NoiseConditioned
from .plugin.capabilities import NoiseLevels as NoiseLevels
from .plugin.capabilities import OrderAgnostic as OrderAgnostic
from .plugin.capabilities import OrderedCodes as OrderedCodes
from .plugin.capabilities import Reconstructs as Reconstructs
from .plugin.capabilities import SmoothedPair as SmoothedPair
from .plugin.capabilities import SourcePriors as SourcePriors
from .plugin.capabilities import implements as implements
from .plugin.capabilities import require as require

# what conditional tasks give samplers
from .plugin.conditions import Condition as Condition
from .plugin.conditions import Constraint as Constraint
from .plugin.conditions import Mixture as Mixture
from .plugin.conditions import Noisy as Noisy
from .plugin.conditions import Observed as Observed

# the base classes, their parameters, and what they hand each other
from .plugin.contracts import SPLITS as SPLITS
from .plugin.contracts import CellContext as CellContext
from .plugin.contracts import Dataset as Dataset
from .plugin.contracts import LikelihoodOutput as LikelihoodOutput
from .plugin.contracts import Metric as Metric
from .plugin.contracts import Model as Model
from .plugin.contracts import SampleOutput as SampleOutput
from .plugin.contracts import Sampler as Sampler
from .plugin.contracts import Split as Split
from .plugin.contracts import Task as Task
from .plugin.contracts import TaskOutput as TaskOutput
from .plugin.contracts import level_values as level_values

# registering plugins: the hook marker and the specs the hooks return
from .plugin.hookspecs import hookimpl as hookimpl
from .plugin.kinds import Kind as Kind
from .plugin.memory import require_memory as require_memory
from .plugin.params import MAX_POSITIONS as MAX_POSITIONS
from .plugin.params import Param as Param
from .plugin.params import Params as Params
from .plugin.registry import load_model as load_model
from .plugin.specs import DatasetSpec as DatasetSpec
from .plugin.specs import ExecutorSpec as ExecutorSpec
from .plugin.specs import MetricSpec as MetricSpec
from .plugin.specs import ModelSpec as ModelSpec
from .plugin.specs import ReporterSpec as ReporterSpec
from .plugin.specs import SamplerSpec as SamplerSpec
from .plugin.specs import TableLayout as TableLayout
from .plugin.specs import TaskSpec as TaskSpec
from .report.build import Report as Report
from .report.build import markdown_report as markdown_report
from .report.entries import Entry as Entry
from .report.entries import PaperTable as PaperTable
from .report.frames import CELL_COLUMNS as CELL_COLUMNS
from .report.reporter import Reporter as Reporter
from .results.artifacts import Samples as Samples
from .results.identity import variant_label as variant_label

# reporters and executors: records, reports, where cells run
from .results.record import Record as Record
from .results.speed import COST_METRICS as COST_METRICS

# a metric's value with what its uncertainty comes from
from .results.statistics import REPLICATES as REPLICATES
from .results.statistics import Measured as Measured
from .results.statistics import estimate as estimate
from .results.statistics import resample_indices as resample_indices
from .results.store import Store as Store
from .results.store import atomic_write as atomic_write
from .run.cell import Cell as Cell
from .run.counting import counter_of as counter_of
from .run.counting import draft_model as draft_model
from .run.exactness import all_sequences as all_sequences
from .run.exactness import joint_probabilities as joint_probabilities
from .run.executor import CellJob as CellJob
from .run.executor import Executor as Executor
from .run.provenance import data_fingerprint_of as data_fingerprint_of

# training a model: the one loop, minibatches, checkpoints with sidecars
from .training.checkpoints import load_for as load_for
from .training.checkpoints import partial_path as partial_path
from .training.checkpoints import rebuild_command as rebuild_command
from .training.checkpoints import recorded_sha256 as recorded_sha256
from .training.checkpoints import save_checkpoint as save_checkpoint
from .training.checkpoints import sha256_of as sha256_of
from .training.checkpoints import shipped_dir as shipped_dir
from .training.checkpoints import training_options as training_options
from .training.loop import TrainingLoop as TrainingLoop
from .training.loop import TrainingResult as TrainingResult
from .training.loop import loop_options as loop_options
from .training.minibatches import epoch_batches as epoch_batches
from .training.minibatches import holdout as holdout
from .training.minibatches import random_batches as random_batches
from .training.minibatches import split_train_val as split_train_val
from .training.minibatches import step_periods as step_periods
from .training.processes import exit_with_parent as exit_with_parent
from .training.processes import usable_cores as usable_cores

__version__: str
