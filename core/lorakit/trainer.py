"""The one training loop every task runs through (accelerate underneath).

It owns what is the same for every modality: AdamW per optimizer group, warmup
+ cosine schedule, gradient accumulation and clipping, mixed precision, data
order and sharding across processes, validation with early stopping and the
best weights kept, resumable checkpoints, logs and the progress bar. The task
only says how a batch becomes losses (``Task.loss``, or ``training_step``
for several optimizers).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Sequence

from lorakit.batches import EpochOrder, default_workers, run_loader
from lorakit.capabilities import OptimizerGroup, SeveralOptimizers
from lorakit.checkpoints import capture_rng, load_checkpoint, read_weights, save_checkpoint, save_weights
from lorakit.config import TrainSettings
from lorakit.errors import ConfigError, TrainingError
from lorakit.lora import load_trainable_state, trainable_state
from lorakit.progress import training_progress
from lorakit.runlog import RunLog
from lorakit.step_losses import step_losses
from lorakit.stopping import SharedStop, stop_signals_interrupt
from lorakit.task import Base, Task


#: A gradient scaler (fp16) skips a step when its scale overflows the
#: gradients and halves the scale; this many skips in a row means fp16 cannot
#: hold this model's gradients at all.
MAX_SKIPPED_STEPS = 20


@dataclass
class TrainResult:
    steps: int = 0
    total_steps: int = 0
    epochs: float = 0.0
    best_step: int | None = None
    best_metric: float | None = None
    stopped_early: bool = False
    interrupted: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


def watched_metric(task: Task, metric: str) -> tuple[str, str]:
    """``train.metric`` and which way is better: ``val_loss`` (lower), or
    one of the task's metrics, optional ones included, in its direction."""
    if metric == "val_loss":
        return metric, "min"
    directions = task.metric_directions()
    if metric not in directions:
        valid = ", ".join(["val_loss", *directions])
        raise ConfigError(f"train.metric = {metric!r} is not a metric of task {task.name!r}; valid: {valid}")
    return metric, directions[metric]


def cosine_with_warmup(warmup: int, total: int):
    """LR multiplier: linear warmup to 1, then cosine decay to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


class Trainer:
    """Trains the LoRA weights of ``model`` (a PeftModel) on ``train_examples``."""

    def __init__(
        self,
        task: Task,
        base: Base,
        model: Any,
        train_examples: Sequence[Any],
        val_examples: Sequence[Any],
        settings: TrainSettings,
        accelerator: Any,
        run_dir: Path | None = None,
        replay_pool: Sequence[Any] = (),
        replay: float = 0.0,
        show_progress: bool = True,
        best_keys: set[str] | None = None,
    ):
        if not train_examples:
            raise ConfigError("no training examples are left after the held-out split; add data or lower data.test_fraction")
        self.task, self.base, self.settings = task, base, settings
        self.accelerator = accelerator
        self.train_examples, self.val_examples = list(train_examples), list(val_examples)
        self.order = EpochOrder(self.train_examples, settings.batch_size, settings.seed, accelerator.num_processes,
                                accelerator.process_index, list(replay_pool), replay)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.show_progress = show_progress and accelerator.is_main_process
        self.metric, self.mode = watched_metric(task, settings.metric)
        # DistributedDataParallel syncs gradients of one forward and one
        # backward; a task with several optimizers runs several backward
        # passes into parts of the model per batch (and may call submodules
        # directly), which DDP cannot follow. Such tasks train unwrapped, and
        # each group's gradients are averaged across processes before it steps.
        self.average_by_hand = isinstance(task, SeveralOptimizers) and accelerator.num_processes > 1
        self.model = model.to(accelerator.device) if self.average_by_hand else accelerator.prepare(model)
        self.groups = self._groups()
        self.group_params = {name: group.params for name, group in self.groups.items()}
        if not self.group_params:
            raise ConfigError("the model has no trainable parameters: check --lora.targets")
        self._check_watched_metric_is_measured()
        self.optimizers = self._make_optimizers()
        self._one_scale_per_step = accelerator.scaler is not None and len(self.optimizers) > 1
        self.steps_per_epoch = math.ceil(self.order.per_epoch / settings.grad_accum)
        self.total_steps = settings.max_steps or settings.epochs * self.steps_per_epoch
        warmup = int(settings.warmup_ratio * self.total_steps)
        self.schedulers = self._make_schedulers(warmup)
        self.log: RunLog | None = None
        self.best_state: dict[str, Any] | None = None
        # The best weights need only the adapter's parameters, not auxiliary
        # trainable modules such as a GAN discriminator (all by default).
        self.best_keys = best_keys
        # Ctrl-C saves the last resume point (loop state, random generators)
        # unless an optimizer step has moved the weights past it since.
        self._resume_point: tuple[dict, dict] | None = None
        self._weights_ahead = False
        self._saved_step: int | None = None  # the step checkpoints/last holds, once this loop wrote it
        from lorakit.dropout_masks import bool_dropout_masks

        # The training forward pass's dropout keeps booleans, not torch's CPU float masks.
        self._dropout_masks = functools.partial(bool_dropout_masks, accelerator.device, settings.bool_dropout_masks)
        # Several processes save only together, after a step they agreed on.
        self._shared_stop = SharedStop(announce=accelerator.is_main_process) if accelerator.num_processes > 1 else None
        # The first non-finite value seen (step, what, value), kept on the
        # device so that no micro-step waits for the GPU; read at log steps.
        self._first_bad: Any = None
        self._what: list[str] = []
        self._skipped_in_a_row = 0
        self.skipped_steps = 0  # optimizer steps a gradient scaler (fp16) skipped on overflow

    @property
    def unwrapped(self) -> Any:
        return self.accelerator.unwrap_model(self.model)

    def trained_model(self) -> Any:
        """The PeftModel after training, without the mixed-precision forward
        accelerate wrapped it in: evaluated after the run like `lorakit
        evaluate` does (full precision), so report.json and a later evaluate agree."""
        return self.accelerator.unwrap_model(self.model, keep_fp32_wrapper=False)

    # -- setup ----------------------------------------------------------------

    def _check_watched_metric_is_measured(self) -> None:
        """An optional metric comes back from ``evaluate`` only under a task
        option (caption's ``clip_score`` with ``--clip``): asked of one
        validation example before training, not found missing at the first
        validation minutes later. The main process asks (the one that
        validates) and tells the others."""
        if self.metric not in self.task.optional_metrics or not self.val_examples:
            return
        measured = [None]
        if self.accelerator.is_main_process:
            from lorakit.modeling import eval_mode, seeded

            # As validation measures, and the training draws as it would without.
            with eval_mode(self.model), seeded(self.settings.seed, self.accelerator.device):
                measured = [sorted(self._evaluate(self.val_examples[:1]))]
        if self.accelerator.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            measured = broadcast_object_list(measured)
        if self.metric not in measured[0]:
            option = self.task.metric_options.get(self.metric)
            if option:
                from lorakit.task_help import option_flag

                flag = "--" + option_flag(option, [f.name for f in fields(self.task.options)])
                under, fix = f"under its option {flag}", f"set {flag} (`lorakit run {self.task.name} --help` says how)"
            else:
                under = "under one of its options"
                fix = f"set the option (`lorakit run {self.task.name} --help` lists them)"
            raise ConfigError(
                f"train.metric = {self.metric!r}: task {self.task.name!r} measures it only {under}, and with this "
                f"run's options it measures {', '.join(measured[0]) or 'nothing'}; {fix} or watch another metric")

    def _groups(self) -> dict[str, OptimizerGroup]:
        """The task's optimizer groups (several-optimizer tasks), or one group
        over every trainable parameter; empty groups are left out."""
        if isinstance(self.task, SeveralOptimizers):
            groups = self.task.optimizer_groups(self.base, self.unwrapped)
        else:
            groups = {"main": OptimizerGroup([p for p in self.unwrapped.parameters() if p.requires_grad])}
        return {name: group for name, group in groups.items() if group.params}

    def _make_optimizers(self) -> dict[str, Any]:
        import torch

        settings = self.settings
        optimizers = {
            name: torch.optim.AdamW(
                group.params,
                lr=group.lr if group.lr is not None else settings.lr,
                betas=group.betas if group.betas is not None else (0.9, 0.999),
                weight_decay=group.weight_decay if group.weight_decay is not None else settings.weight_decay,
            )
            for name, group in self.groups.items()
        }
        prepared = self.accelerator.prepare(*optimizers.values())
        prepared = prepared if isinstance(prepared, (list, tuple)) else [prepared]
        return dict(zip(optimizers, prepared))

    def _make_schedulers(self, warmup: int) -> dict[str, Any]:
        from torch.optim.lr_scheduler import LambdaLR

        factor = cosine_with_warmup(warmup, self.total_steps)
        return {name: LambdaLR(opt, factor) for name, opt in self.optimizers.items()}

    # -- data -----------------------------------------------------------------

    def _workers(self) -> int:
        """DataLoader workers: as set, else ``batches.default_workers``."""
        if self.settings.num_workers is not None:
            return self.settings.num_workers
        return default_workers(self.accelerator.device.type)

    def _loader(self, state: dict) -> Any:
        return run_loader(self.order, functools.partial(self.task.collate, self.base), state["epoch"], state["batch"],
                          self._workers(), pin_memory=self.accelerator.device.type == "cuda")

    # -- the loop -------------------------------------------------------------

    def fit(self, resume: bool = False, stop_after: int | None = None) -> TrainResult:
        """Train to ``total_steps`` (or early stop). ``stop_after`` stops after that
        many optimizer steps with a checkpoint, as an interruption would."""
        state = {"step": 0, "epoch": 0, "batch": 0, "best": None, "best_step": None, "bad_evals": 0, "history": []}
        if resume:
            state.update(load_checkpoint(self._ckpt("last"), self.unwrapped, self.optimizers, self.schedulers,
                                         rank=self.accelerator.process_index,
                                         processes=self.accelerator.num_processes, scaler=self.accelerator.scaler))
            self.skipped_steps = state.pop("skipped_steps", 0)
            self._skipped_in_a_row = state.pop("skipped_in_a_row", 0)
            if state["best_step"] is not None:
                self.best_state = read_weights(self._ckpt("best"))
        validation_pending = state.pop("validation_pending", False)
        result = TrainResult(total_steps=self.total_steps)
        self.log = RunLog(self.run_dir, enabled=self.run_dir is not None and self.accelerator.is_main_process,
                          resumed_at=state["step"] if resume else None)
        self.model.train()
        with (training_progress(self.total_steps, state["step"], enabled=self.show_progress) as progress,
              self._shared_stop or stop_signals_interrupt()):
            try:
                self._mark_resume_point(state, validation_pending)
                if validation_pending:  # Ctrl-C came while this step was validated: validate it now
                    self._validate_and_save(state, progress, validate=True, save=True)
                if self._finished(state):
                    # A run whose training ended but whose export did not
                    # (killed, disk full): resuming it only exports.
                    result.stopped_early = state["step"] < self.total_steps
                else:
                    self._run_epochs(state, result, progress, stop_after)
            except KeyboardInterrupt:
                # One process: save the resume point. Several saved together
                # before raising it (or were stopped at once: a second Ctrl-C),
                # and keep none.
                point = self._resume_point
                if (self.run_dir is not None and point is not None and not self._weights_ahead and point[0]["step"] > 0
                        and self._first_non_finite() is None):
                    self._save_at_stop(*point)
                raise
            finally:
                self.log.close()
        result.steps, result.history = state["step"], state["history"]
        result.epochs = round(state["epoch"] + state["batch"] / max(1, self.order.per_epoch), 3)
        result.best_step, result.best_metric = state["best_step"], state["best"]
        if not result.interrupted and self.best_state is not None:
            load_trainable_state(self.unwrapped, self.best_state)
        self.model.eval()
        return result

    def _finished(self, state: dict) -> bool:
        """Whether a (resumed) loop state is at its end: all steps taken, or
        stopped early (a checkpoint is saved at the stop)."""
        patience = self.settings.patience
        return state["step"] >= self.total_steps or (patience is not None and state["bad_evals"] >= patience)

    def _run_epochs(self, state: dict, result: TrainResult, progress: Any, stop_after: int | None) -> None:
        per_epoch, accum = self.order.per_epoch, self.settings.grad_accum
        window_losses: dict[str, Any] = {}
        for _, index, batch in self._loader(state):
            window_start = index - index % accum
            window = min(accum, per_epoch - window_start)
            boundary = index == window_start + window - 1
            self._micro_step(batch, window, boundary, window_losses, state)
            if not boundary:
                continue
            done = self._after_step(state, index + 1, per_epoch, window_losses, progress)
            window_losses = {}
            if self._shared_stop is not None and self._shared_stop.agreed():
                self._stop_together(state)
            if done:
                result.stopped_early = state["step"] < self.total_steps
                return
            if stop_after is not None and state["step"] >= stop_after:
                self._check_finite()
                self._save_at_stop(state)
                result.interrupted = True
                return

    def _micro_step(self, batch: Any, window: int, boundary: bool, losses: dict[str, Any], state: dict) -> None:
        batch = _to_device(batch, self.accelerator.device)
        multi = len(self.group_params) > 1
        sync = contextlib.nullcontext() if boundary else self.accelerator.no_sync(self.model)
        with sync:
            for group, loss in step_losses(self.task, self.base, self.model, batch, self._forward_settings):
                value = loss.detach().float()  # stays on the device: no wait for the GPU here
                self._note_if_not_finite(value, f"the {group} loss", state)
                inputs = self.group_params[group] if multi else None
                self.accelerator.backward(loss / window, inputs=inputs)
                losses[group] = losses.get(group, 0.0) + value / window
                if boundary:
                    self._optimizer_step(group, state)
        if boundary and self._one_scale_per_step:
            self._update_scale(state)

    def _stop_together(self, state: dict) -> None:
        """Ctrl-C under several processes: all save this counted (and, when
        due, validated) step together, then stop as a Ctrl-C does."""
        if self.run_dir is not None:
            self._check_finite()
            self._save_at_stop(state)
        raise KeyboardInterrupt

    def _update_scale(self, state: dict) -> None:
        """fp16 with several optimizers: the scale changes once all groups
        stepped. accelerate updates it after each optimizer's step, so a GAN's
        generator, whose loss follows the discriminator's step, added the
        boundary micro-step's gradients at another scale than the earlier
        micro-steps' (off by 2x whenever the discriminator overflowed)."""
        scaler = self.accelerator.scaler
        before = scaler.get_scale()
        scaler.update()
        self._count_skipped(scaler.get_scale() < before, state)

    @contextlib.contextmanager
    def _forward_settings(self) -> Iterator[None]:
        """What a loss is computed under: autocast, and boolean dropout masks on a CPU."""
        with self.accelerator.autocast(), self._dropout_masks():
            yield

    def _note_if_not_finite(self, value: Any, what: str, state: dict) -> None:
        """Remember the first non-finite ``value`` (a 0-d device tensor), without a host sync."""
        import torch

        if what not in self._what:
            self._what.append(what)
        device = value.device  # torch.full, not torch.tensor: a fill, not a copy that waits for the GPU
        record = torch.stack([torch.full((), float(state["step"] + 1), device=device),
                              torch.full((), float(self._what.index(what)), device=device), value.reshape(())])
        if self._first_bad is None:
            self._first_bad = torch.zeros(3, device=device)
        fresh = ~torch.isfinite(value) & (self._first_bad[0] == 0)
        self._first_bad = torch.where(fresh, record, self._first_bad)

    def _first_non_finite(self) -> tuple[int, str] | None:
        """(step, what) of the earliest non-finite value on any process, or
        None when all were finite. Every process learns the same step, so all
        stop together; the values are named in the same order on every
        process, so each can say what went wrong."""
        import torch

        mine = self._first_bad if self._first_bad is not None else torch.zeros(3)
        mine = mine.to(self.accelerator.device).reshape(1, 3)
        records = self.accelerator.gather(mine) if self.accelerator.num_processes > 1 else mine
        bad = [r for r in records.cpu().tolist() if r[0] > 0]
        if not bad:
            return None
        step, code, value = min(bad)
        seen_here = mine[0, :2].tolist() == [step, code]
        return int(step), f"{self._what[int(code)]} " + (f"is {value}" if seen_here else "is not finite on another process")

    def _check_finite(self) -> None:
        """Raise if any value went non-finite since the last check: called
        before anything is logged, validated or saved, so the last checkpoint
        is always one taken before it."""
        found = self._first_non_finite()
        if found is not None:
            raise self._non_finite(*found)

    def _average_gradients(self, params: list[Any]) -> None:
        """Every process's gradients of ``params`` replaced by their mean over
        processes (one flat all-reduce); a parameter without a gradient on a
        process counts as zero there, so every process sends the same shapes."""
        import torch
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        mean = self.accelerator.reduce(_flatten_dense_tensors(grads), reduction="mean")
        for p, grad in zip(params, _unflatten_dense_tensors(mean, grads)):
            p.grad = grad.clone()

    def _optimizer_step(self, group: str, state: dict) -> None:
        import torch

        self._weights_ahead = True  # until the step is counted (a GAN's other group steps after this one)
        optimizer, scaled = self.optimizers[group], self.accelerator.scaler is not None
        if self.average_by_hand:
            self._average_gradients(self.group_params[group])
        if self.settings.max_grad_norm is not None:
            if scaled:  # this group's optimizer only: another group may not have stepped yet
                self.accelerator.unscale_gradients(optimizer=optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.group_params[group], self.settings.max_grad_norm)
            if not scaled:  # with a scaler an overflow is expected now and then: the step is skipped
                self._note_if_not_finite(norm.detach().float(), f"the {group} gradient norm", state)
        if self._one_scale_per_step:
            self.accelerator.scaler.step(optimizer.optimizer)  # skipped on overflow; the update comes after all groups
        else:
            optimizer.step()
        self.schedulers[group].step()
        optimizer.zero_grad(set_to_none=True)
        if scaled and not self._one_scale_per_step:
            self._count_skipped(optimizer.step_was_skipped, state)

    def _learning_rates(self) -> dict[str, float]:
        """``lr``: the current rate of the groups on the run's ``train.lr``; a
        group with a rate of its own (a GAN's discriminator) as ``lr_<group>``."""
        rates = {}
        for name, scheduler in self.schedulers.items():
            own = self.groups[name].lr is not None
            rates.setdefault(f"lr_{name}" if own else "lr", scheduler.get_last_lr()[0])
        return rates

    def _count_skipped(self, skipped: bool, state: dict) -> None:
        self._skipped_in_a_row = self._skipped_in_a_row + 1 if skipped else 0
        self.skipped_steps += int(skipped)
        if self._skipped_in_a_row >= MAX_SKIPPED_STEPS:
            raise TrainingError(
                f"training stopped at step {state['step'] + 1}: the fp16 gradient scaler skipped "
                f"{self._skipped_in_a_row} optimizer steps in a row (the gradients overflow fp16 at any scale); "
                "train with --train.precision bf16 where the GPU has it, or --train.precision no, or lower --train.lr")

    def _after_step(self, state: dict, next_batch: int, epoch_batches: int, losses: dict[str, float], progress: Any) -> bool:
        """Count the step, log, validate, checkpoint; True when training must stop."""
        epoch_done = next_batch == epoch_batches
        state["step"] += 1
        state["batch"] = 0 if epoch_done else next_batch
        if epoch_done:
            state["epoch"] += 1
        step = state["step"]
        evaluate = (self.settings.eval_every and step % self.settings.eval_every == 0) or (
            not self.settings.eval_every and epoch_done) or step == self.total_steps
        save = self.run_dir is not None and (evaluate or (self.settings.save_every and step % self.settings.save_every == 0))
        logged = step % self.settings.log_every == 0 or step == self.total_steps
        if logged or evaluate or save:
            # The only host sync of a training step, and only at these steps.
            self._check_finite()
        validate = bool(evaluate and self.val_examples)
        self._mark_resume_point(state, validation_pending=validate)
        shown = {k: float(v) for k, v in losses.items()} if logged else None
        progress.advance(shown)
        if logged:
            scaler = {"skipped_steps": self.skipped_steps} if self.accelerator.scaler is not None else {}
            self.log.write("train", step, **self._learning_rates(), epoch=state["epoch"], **scaler,
                           **{f"loss_{k}" if k != "main" else "loss": v for k, v in shown.items()})
        stop = self._validate_and_save(state, progress, validate, save) if validate or save else False
        return stop or step >= self.total_steps

    def _validate_and_save(self, state: dict, progress: Any, validate: bool, save: bool) -> bool:
        """Validate (True: stop early) and checkpoint a counted step, then make
        it the resume point. Validation always saves: early stopping follows it."""
        stop = self._validate(state, progress) if validate else False
        if save:
            self._save_last(state)
        self._mark_resume_point(state)
        return stop

    def _mark_resume_point(self, state: dict, validation_pending: bool = False) -> None:
        """What a Ctrl-C from now on saves: a copy of the loop state, the random
        generators as they are now (not as a half-done next step left them)
        and whether this step's validation is still to run. The weights
        match it until the next optimizer step. Several processes save only
        at a step they agreed on (``SharedStop``): nothing to keep."""
        if self._shared_stop is not None:
            return
        point = {**copy.deepcopy(state), **({"validation_pending": True} if validation_pending else {})}
        self._resume_point = (point, capture_rng())
        self._weights_ahead = False

    def _validate(self, state: dict, progress: Any) -> bool:
        """Validation metrics; keeps the best weights; True to stop early."""
        metrics = self._shared_validation()
        value = metrics[self.metric]
        better = state["best"] is None or (value < state["best"] if self.mode == "min" else value > state["best"])
        if better:
            best_state = self._adapter_state()
            if self.run_dir is not None and self.accelerator.is_main_process:
                save_weights(self._ckpt("best"), best_state, {"step": state["step"], self.metric: value})
            self.best_state = best_state
        # The loop state changes only once the best weights are on disk: a
        # Ctrl-C before it leaves the state that matches the best/ folder.
        state["history"].append({"step": state["step"], **metrics})
        self.log.write("validation", state["step"], **metrics)
        progress.note(f"step {state['step']}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        if better:
            state["best"], state["best_step"], state["bad_evals"] = value, state["step"], 0
            return False
        state["bad_evals"] += 1
        return self.settings.patience is not None and state["bad_evals"] >= self.settings.patience

    def _adapter_state(self) -> dict[str, Any]:
        state = trainable_state(self.unwrapped)
        return state if self.best_keys is None else {k: v for k, v in state.items() if k in self.best_keys}

    def _shared_validation(self) -> dict[str, float]:
        """``validate`` on the main process, its metrics shared with every
        process, so that all take the same best / early-stop decisions (ranks
        deciding on their own can disagree and wait for each other forever)."""
        if self.accelerator.num_processes == 1:
            return self.validate()
        from accelerate.utils import broadcast_object_list

        # The unwrapped model: DDP's forward would wait for the other processes.
        metrics = [self.validate(self.unwrapped) if self.accelerator.is_main_process else None]
        return broadcast_object_list(metrics)[0]

    def validate(self, model: Any = None) -> dict[str, float]:
        """Validation loss, plus the watched task metric when it is not the loss."""
        import torch

        model = self.model if model is None else model
        self.model.eval()
        total, count = torch.zeros((), device=self.accelerator.device), 0
        size = self.settings.batch_size
        with torch.no_grad():
            for start in range(0, len(self.val_examples), size):
                chunk = self.val_examples[start : start + size]
                batch = _to_device(self.task.collate(self.base, chunk), self.accelerator.device)
                with self.accelerator.autocast():
                    loss = self.task.validation_loss(self.base, model, batch)
                total += loss.detach().float() * len(chunk)
                count += len(chunk)
        metrics = {"val_loss": float(total) / max(1, count)}
        if self.metric != "val_loss":
            metrics[self.metric] = float(self._evaluate(self.val_examples)[self.metric])
        self.model.train()
        return metrics

    def _evaluate(self, examples: Sequence[Any]) -> dict[str, float]:
        """The task's metrics of the model as it trains, in the training's
        precision and without autograd (a task's ``evaluate`` need not say so)."""
        import torch

        from lorakit.evaluation import scores_of

        with torch.no_grad(), self.accelerator.autocast():
            return scores_of(self.task, self.task.evaluate(self.base, self.unwrapped, examples))

    # -- checkpoints ----------------------------------------------------------

    def _ckpt(self, name: str) -> Path:
        if self.run_dir is None:
            raise TrainingError("resuming needs a run folder (--output)")
        return self.run_dir / "checkpoints" / name

    def _save_last(self, state: dict, rng: dict | None = None) -> None:
        """Checkpoint ``last``: ``state`` with the generators ``rng`` (now's by
        default) of every process, each drawing its own dropout, and the
        gradient scaler's scale and skip counts (fp16)."""
        rngs = [rng if rng is not None else capture_rng()]
        if self.accelerator.num_processes > 1:
            from accelerate.utils import gather_object

            rngs = gather_object(rngs)
        if self.accelerator.is_main_process:
            state = {**state, "skipped_steps": self.skipped_steps, "skipped_in_a_row": self._skipped_in_a_row}
            save_checkpoint(self._ckpt("last"), self.unwrapped, self.optimizers, self.schedulers, state, rngs,
                            scaler=self.accelerator.scaler)
        self.accelerator.wait_for_everyone()
        self._saved_step = state["step"]

    def _save_at_stop(self, state: dict, rng: dict | None = None) -> None:
        """Checkpoint the step a stop ends on, unless that step was just
        checkpointed: nothing has moved since (weights, loop state, random
        generators), and a real-size save is seconds of writing. Every
        process takes the same decision: each saves (or skips) together."""
        if state["step"] != self._saved_step:
            self._save_last(state, rng)

    def _non_finite(self, step: int, what: str) -> TrainingError:
        last = self._ckpt("last") if self.run_dir is not None else None
        kept = (
            f"the last good checkpoint is kept in {last}; "
            if last is not None and last.exists() else "no checkpoint was written yet; "
        )
        return TrainingError(
            f"training stopped at step {step}: {what}. {kept}"
            "lower --train.lr, keep --train.max_grad_norm on, or check the data, then rerun (with --resume to continue)"
        )


def _to_device(batch: Any, device: Any) -> Any:
    import torch

    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch
