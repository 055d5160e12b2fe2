"""The batched closed-loop core that every environment front end adapts.

One object owns the networks, the episode bookkeeping (window counter, the
optional stimulation onset and latch), observations and rewards. The step is
pure tensor work on the device. On CUDA nothing in it waits for the host but
the input checks (``validate``, which front ends that checked may skip):
``backend="auto"`` runs the Triton kernel there, whose event-driven synapses
build their spike lists on the GPU, or, where Triton cannot run (or in
float64), the eager path with fixed-shape dense synapses. Front ends add only
what their API needs (NumPy conversion, autoreset policy, TensorDicts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import NetworkParams, RecordConfig, SimConfig, is_finite, require
from ..network import NetworkBatch
from ..rng import STREAM_EPISODE_START, uniform_words, words_to_uniform
from ..stimulus import PUBLISHED_LATCH_MV, PulseTrain
from .actions import ActionBounds, pulse_train, to_physical
from .observation import initial_observation, observe, weight_fraction
from .reward import RewardConfig, max_window_energy, reward

# The lasting-effect task (docs/lasting.md), shared by training, evaluation and the open-loop sweep: stimulation
# until the published latch (mean J_I*w < 75 mV) or this budget, then this follow-up with the stimulator off.
LASTING_BUDGET_S = 40.0
LASTING_FOLLOWUP_S = 5.0
LASTING_LATCH_MV = PUBLISHED_LATCH_MV[1.0]


@dataclass(frozen=True)
class EpisodeConfig:
    """What happens within an episode besides the agent's actions (times in ms after reset).

    An episode has up to three phases: before ``stim_onset`` the stimulator is
    off; in the stimulation phase it obeys the actions; the phase ends for good
    when the latch trips (``latch_mv``) or ``stim_budget`` has passed. With
    ``followup`` > 0 the episode then runs that long with the stimulator off
    and terminates: what stimulation leaves behind is measured (and, through
    ``RewardConfig.followup_synchrony_weight``, rewarded).
    """

    stim_onset: float = 0.0  # ms after reset before the stimulator obeys actions (off before)
    latch_mv: float | None = None  # stimulation off for good once mean J_I*w crosses this (below: desync target)
    terminate_on_latch: bool = False  # end the episode (terminated=True) when the latch trips
    stim_budget: float | None = None  # ms of stimulation phase after the onset; then off for good (None: no limit)
    followup: float = 0.0  # ms with the stimulator off after the stimulation phase ends; then terminated
    start_weight_mv: tuple[float, float] | None = None  # each episode's J_I*w drawn uniformly in [low, high] mV

    def __post_init__(self) -> None:
        require(
            is_finite(self.stim_onset) and self.stim_onset >= 0,
            "episode.stim_onset",
            "a finite number >= 0 (ms)",
            self.stim_onset,
        )
        require(
            self.latch_mv is None or (is_finite(self.latch_mv) and self.latch_mv > 0),
            "episode.latch_mv",
            "None or a finite number > 0 (mV)",
            self.latch_mv,
        )
        require(
            not self.terminate_on_latch or self.latch_mv is not None,
            "episode.terminate_on_latch",
            "False unless latch_mv is set",
            self.terminate_on_latch,
        )
        require(
            self.stim_budget is None or (is_finite(self.stim_budget) and self.stim_budget > 0),
            "episode.stim_budget",
            "None or a finite number > 0 (ms)",
            self.stim_budget,
        )
        require(
            is_finite(self.followup) and self.followup >= 0,
            "episode.followup",
            "a finite number >= 0 (ms)",
            self.followup,
        )
        require(
            self.followup == 0 or self.stim_budget is not None or self.latch_mv is not None,
            "episode.followup",
            "0 unless stim_budget or latch_mv ends the stimulation phase",
            self.followup,
        )
        require(
            self.followup == 0 or not self.terminate_on_latch,
            "episode.terminate_on_latch",
            "False when a follow-up follows the latch (followup > 0)",
            self.terminate_on_latch,
        )
        start = self.start_weight_mv
        require(
            start is None
            or (
                isinstance(start, tuple) and len(start) == 2 and all(map(is_finite, start)) and 0 < start[0] <= start[1]
            ),
            "episode.start_weight_mv",
            "None or a tuple (low, high) of mV with 0 < low <= high",
            start,
        )


@dataclass
class CoreStep:
    observation: torch.Tensor  # [B, 6] float32
    reward: torch.Tensor  # [B] float32
    terminated: torch.Tensor  # [B] bool
    truncated: torch.Tensor  # [B] bool
    info: dict[str, torch.Tensor] = field(default_factory=dict)  # [B] physical values


class DBSCore:
    """``num_envs`` closed-loop DBS episodes on batched FTSTS networks."""

    def __init__(
        self,
        num_envs: int,
        network: NetworkParams | None = None,
        sim: SimConfig | None = None,
        *,
        bounds: ActionBounds | None = None,
        reward_config: RewardConfig | None = None,
        episode: EpisodeConfig | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        record_spikes: bool = False,
        backend: str = "auto",
    ):
        self.bounds = bounds or ActionBounds()
        self.reward_config = reward_config or RewardConfig()
        self.episode = episode or EpisodeConfig()
        self.net = NetworkBatch(
            num_envs,
            network,
            sim,
            device=device,
            dtype=dtype,
            record=RecordConfig(spikes_e=record_spikes),
            backend=backend,
        )
        self.params, self.sim, self.device = self.net.params, self.net.sim, self.net.device
        self.num_envs = num_envs
        self.max_steps = self.sim.num_windows
        self.onset_windows = int(np.ceil(self.episode.stim_onset / self.sim.sample_duration - 1e-9))
        self.budget_windows = self._whole_windows("episode.stim_budget", self.episode.stim_budget)
        self.followup_windows = self._whole_windows("episode.followup", self.episode.followup)
        start = self.episode.start_weight_mv
        stdp = self.params.plasticity
        require(
            start is None or stdp.w_min_mv <= start[0] <= start[1] <= stdp.w_max_mv,
            "episode.start_weight_mv",
            f"within the weight bounds [{stdp.w_min_mv}, {stdp.w_max_mv}] mV",
            start,
        )
        self.energy_scale = self.reward_config.energy_scale_mv2ms or max_window_energy(
            self.bounds, self.sim.sample_duration
        )
        self._action_low, self._action_high = self.bounds.lows_highs(self.device)
        self.steps = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self.latched = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        # stim_end: the first window after the stimulation phase (onset + budget; after the latch, the window
        # after it tripped); without a budget, one past the episode until the latch trips
        self._stim_end_at_reset = (
            self.max_steps + 1 if self.budget_windows is None else self.onset_windows + self.budget_windows
        )
        self.stim_end = torch.full((num_envs,), self._stim_end_at_reset, dtype=torch.int64, device=self.device)
        self.observation = initial_observation(num_envs, self.params, self.device)
        self.last_recording = None
        # the last step's CoreStep.info in its own dtypes: what a controller acts on (TorchRL's info is a float32 copy)
        self.last_info: dict[str, torch.Tensor] = {}
        self.previous_weight = torch.zeros(num_envs, dtype=torch.float64, device=self.device)  # set just below
        self.reset_start_weight(torch.ones(num_envs, dtype=torch.bool, device=self.device))

    def reset(self, mask: torch.Tensor | None = None, seeds=None) -> torch.Tensor:
        """Restart the episodes where ``mask`` (default all); ``seeds`` [B] re-seed them.
        Returns the [B, 6] observation of every env (fresh where reset)."""
        if mask is None:
            mask = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        self.net.reset(mask, seeds)
        self.steps = torch.where(mask, 0, self.steps)
        self.latched = self.latched & ~mask
        self.stim_end = torch.where(mask, self._stim_end_at_reset, self.stim_end)
        fresh = initial_observation(self.num_envs, self.params, self.device)
        self.observation = torch.where(mask.unsqueeze(1), fresh, self.observation)
        self.reset_start_weight(mask)
        return self.observation.clone()  # a copy: callers may write into what they get

    def _whole_windows(self, name: str, duration_ms: float | None) -> int | None:
        if duration_ms is None:
            return None
        windows = round(duration_ms / self.sim.sample_duration)
        require(
            abs(windows * self.sim.sample_duration - duration_ms) <= 1e-9 * max(1.0, duration_ms),
            name,
            f"a whole multiple of sample_duration={self.sim.sample_duration} ms",
            duration_ms,
        )
        return windows

    def reset_start_weight(self, mask: torch.Tensor) -> None:
        """Give the networks where ``mask`` their episode's start weight: ``w_init``, or with
        ``episode.start_weight_mv`` a mean J_I*w drawn uniformly from that range, a pure function of
        (seed, episode), so an episode's start does not depend on the batch it runs in."""
        stdp = self.params.plasticity
        weight_mv = torch.full((self.num_envs,), stdp.w_init * self.params.j_i, dtype=torch.float64, device=self.device)
        start = self.episode.start_weight_mv
        if start is not None:
            state = self.net.state
            words = uniform_words(state.seed, STREAM_EPISODE_START, state.episode, torch.zeros_like(state.episode), 1)
            weight_mv = start[0] + (start[1] - start[0]) * words_to_uniform(words[:, 0], torch.float64)
            drawn = (weight_mv / self.params.j_i).to(state.weight.dtype).unsqueeze(1).expand_as(state.weight)
            state.weight = torch.where(mask.unsqueeze(1), drawn, state.weight)
            self.observation[:, 5] = torch.where(
                mask, weight_fraction(weight_mv, self.params).clamp(0.0, 1.0).to(torch.float32), self.observation[:, 5]
            )
        # the weight fraction the next window starts from (the reward's weight credit)
        self.previous_weight = torch.where(mask, weight_fraction(weight_mv, self.params), self.previous_weight)

    def check_action(self, action: torch.Tensor) -> None:
        """Raise ``ValueError`` for an action of the wrong shape or dtype or with NaN/inf (host check)."""
        expected = (self.num_envs, 3)
        require(
            isinstance(action, torch.Tensor) and tuple(action.shape) == expected,
            "action",
            f"an array of shape {expected} (amplitude, frequency, pulse width in [-1, 1])",
            tuple(action.shape) if hasattr(action, "shape") else type(action).__name__,
        )
        require(action.dtype.is_floating_point, "action", "floating point", action.dtype)
        require(
            bool(torch.isfinite(action).all()),
            "action",
            "finite (no NaN or inf; finite values outside [-1, 1] are clipped)",
            action.tolist(),
        )

    def step(self, action: torch.Tensor, *, validate: bool = True) -> CoreStep:
        """One decision window for every env. ``action`` [B, 3] in [-1, 1] (clipped).

        ``validate`` runs :meth:`check_action` first (one host read; a bad
        action raises ``ValueError`` and changes nothing); front ends that
        have already checked the action pass False.
        """
        if validate:
            self.check_action(action)
        physical = to_physical(action.to(self.device), self._action_low, self._action_high)
        return self.step_train(pulse_train(physical), validate=False)

    def step_train(self, train: PulseTrain, *, validate: bool = True) -> CoreStep:
        """One decision window for every env under a physical pulse train ([B] tensors on the device).

        The episode still gates it: amplitude 0 before ``episode.stim_onset``
        and after the latch. This is how controllers whose settings lie
        outside the agent's action box (the published FTSTS protocol) drive
        the same core. ``validate`` checks the train on the host (one sync);
        trains built from validated parameters may skip it.
        """
        if validate:
            train.validate(self.num_envs, self.device)
        followup = self.steps >= self.stim_end  # this window lies after the stimulation phase
        enabled = (self.steps >= self.onset_windows) & ~self.latched & ~followup
        train = PulseTrain(
            torch.where(enabled, train.amplitude, 0.0), train.frequency, train.pulse_width, train.polarity
        )
        result = self.net.run_window(train, validate=False)
        stats = result.stats
        self.last_recording = result.recording
        self.steps = self.steps + 1
        newly_latched = torch.zeros_like(self.latched)
        if self.episode.latch_mv is not None:
            if self.reward_config.target == "desynchronise":
                crossed = stats.weight_mv < self.episode.latch_mv
            else:
                crossed = stats.weight_mv > self.episode.latch_mv
            newly_latched = crossed & ~self.latched & (self.steps > self.onset_windows) & ~followup
            self.latched = self.latched | newly_latched
            self.stim_end = torch.where(newly_latched, self.steps, self.stim_end)
        synchrony = stats.kop if self.reward_config.synchrony == "kop" else stats.chi
        self.observation = observe(stats, synchrony, self.params)
        weight = weight_fraction(stats.weight_mv, self.params)
        rewards = reward(
            self.reward_config,
            synchrony,
            weight,
            stats.energy,
            self.energy_scale,
            previous_weight=self.previous_weight,
            followup=followup,
            latched=newly_latched,
        )
        self.previous_weight = weight
        terminated = newly_latched if self.episode.terminate_on_latch else torch.zeros_like(newly_latched)
        if self.followup_windows:
            terminated = terminated | (self.steps >= self.stim_end + self.followup_windows)
        truncated = (self.steps >= self.max_steps) & ~terminated
        info = {
            "time_s": self.net.time_ms / 1000.0,
            "kop": stats.kop,
            "chi": stats.chi,
            "v_e_mean_mv": stats.v_e_mean,
            "v_e_std_mv": stats.v_e_std,
            "v_i_mean_mv": stats.v_i_mean,
            "v_i_std_mv": stats.v_i_std,
            "weight_mv": stats.weight_mv,
            "rate_e_hz": stats.rate_e,
            "rate_i_hz": stats.rate_i,
            "energy_mv2ms": stats.energy,
            "charge_mvms": stats.charge,
            "amplitude_mv": train.amplitude,
            "frequency_hz": train.frequency,
            "pulse_width_us": train.pulse_width,
            "stimulating": train.amplitude > 0,
            "followup": followup,
        }
        self.last_info = info
        return CoreStep(self.observation.clone(), rewards, terminated, truncated, info)  # a copy, as in reset()
